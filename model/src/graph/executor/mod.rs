//! The executor: runs a [`Plan`] over shards of a batch. A [`Shard`] owns everything a run
//! writes (activation and gradient buffers, each op's workspace), the batch is only read,
//! and so are the model's weights, so several shards of one model run at once, each on its
//! own thread with its own gradient arena ([`run_sharded`]). Ops are called through one
//! trait: no kind matches, no downcasts.

mod batch;
pub(crate) mod coupled;

pub(crate) use batch::{
    fold_in_order, run_range, run_sharded, run_shards, shard_count, sum_in_order, update_state, Batch, RunArgs,
};

use super::plan::{Plan, PlanOp, Slots};
use super::profile::OpPass;
use super::reduction::{Partial, Reduction};
use crate::error::Result;
use crate::layers::{Backward, Forward, Mode, Workspace};
use crate::params::{Arena, Weights};

/// One shard's buffers: what a forward and backward pass over (part of) a batch writes.
/// Create one per concurrent run with [`crate::Model::new_shard`].
#[derive(Debug, Clone, Default)]
pub struct Shard {
    acts: Vec<Arena>,
    grads: Vec<Arena>,
    /// Per (part, op), `part · ops + op`: each op's side data for a part (one part, reused,
    /// unless the plan reduces over the batch and every part's forward precedes its
    /// backward).
    ws: Vec<Workspace>,
    /// Per input of the op being run backward: a gradient to add into a value that already
    /// holds another consumer's.
    fan: Vec<Arena>,
    /// Per (part, node), as `ws`: whether the node's gradient has been written in the
    /// current backward pass.
    written: Vec<bool>,
    /// Per part: its contribution to the reduction being run (plans that reduce over the
    /// batch).
    partials: Vec<Partial>,
    /// Per op: the batch's reduced statistics of a plan that reduces over the batch, in
    /// the first shard after a run (the moving statistics' update reads them).
    shared: Vec<Workspace>,
}

/// One-part buffers: activations, gradients, and the ops' workspaces.
type PartBuffers = (Vec<Arena>, Vec<Arena>, Vec<Workspace>);

thread_local! {
    /// The one-part activation and gradient buffers (and, to plans without reductions, the
    /// ops' workspaces) this thread lends to the shards it runs ([`Shard::with_thread_buffers`]).
    static THREAD_BUFFERS: std::cell::RefCell<PartBuffers> = const {
        std::cell::RefCell::new((Vec::new(), Vec::new(), Vec::new()))
    };
}

/// Which half of a reduction op's pass a call runs (see [`super::reduction`]): `Whole` for
/// every other op, and for a reduction op over the whole batch at once.
/// Both halves read the op's workspace for the whole batch (the reduced statistics).
pub(crate) enum Half<'h> {
    Whole,
    Partial(&'h mut Partial, &'h Workspace),
    Finish(&'h Workspace),
}

/// Where a call runs: rows `lo..lo + m` (samples) of the shard's buffers, with `x` the
/// model's input for those samples, and `part` the index of the part's workspaces.
#[derive(Clone, Copy)]
pub(crate) struct Rows<'x> {
    pub x: &'x [f32],
    pub lo: usize,
    pub m: usize,
    pub part: usize,
}

impl Shard {
    /// Sizes the buffers for runs of up to `n` samples (no allocation once the largest has
    /// been seen).
    pub(crate) fn size(&mut self, plan: &Plan, n: usize) {
        // Buffers for one part, or for all of them where the plan reduces over the batch.
        let rows = if plan.parts && !plan.coupled { n.min(plan.part) } else { n };
        let parts = if plan.coupled { n.div_ceil(plan.part).max(1) } else { 1 };
        let size = |bufs: &mut Vec<Arena>, slots: &Slots| {
            bufs.resize_with(slots.len.len(), Arena::default);
            for ((b, &l), &part) in bufs.iter_mut().zip(&slots.len).zip(&slots.part) {
                b.resize(if part { rows.min(plan.part) } else { rows } * l);
            }
        };
        size(&mut self.acts, &plan.acts);
        size(&mut self.grads, &plan.grads);
        self.ws.resize_with(parts * plan.ops.len(), Workspace::default);
        self.written.resize(parts * plan.len.len(), false);
        self.partials.resize_with(parts, Partial::default);
        let widest = plan.ops.iter().map(|o| o.inputs.len()).max().unwrap_or(0);
        self.fan.resize_with(widest, Arena::default);
    }

    /// Runs `f` on the shard with this thread's one-part buffers in its one-part slots
    /// ([`crate::graph::segments`]): parts of every shard a thread runs then reuse one set
    /// of buffers, which stays in cache. The shard's own are lent to the thread meanwhile
    /// (a shard that another shard's run nests in, where the thread steals work while it
    /// waits, gets those: the swaps nest, and no two shards ever share a buffer).
    ///
    /// A plan that runs part by part without reductions (not `coupled`) holds only one
    /// part's values in every buffer, and nothing reads them or the ops' workspaces after
    /// the shard's run: all of them are lent. On one thread, the shards of a batch then run
    /// in one set of buffers, warm in L2, instead of one set each (with parts of 8, the
    /// reference CNN's four shards: its step about 8% shorter; lending the workspaces too,
    /// with parts of 16, another 4-5%).
    pub(crate) fn with_thread_buffers<R>(&mut self, plan: &Plan, f: impl FnOnce(&mut Shard) -> R) -> R {
        let all = plan.parts && !plan.coupled;
        if !all && !plan.acts.part.iter().chain(&plan.grads.part).any(|&p| p) {
            return f(self);
        }
        self.swap_thread_buffers(plan, all);
        let r = f(self);
        self.swap_thread_buffers(plan, all);
        r
    }

    /// Swaps the shard's one-part buffers (with `all`, every buffer and the workspaces)
    /// with this thread's, sized as the shard's were.
    fn swap_thread_buffers(&mut self, plan: &Plan, all: bool) {
        THREAD_BUFFERS.with_borrow_mut(|(acts, grads, ws)| {
            if all {
                // The ops' side data (argmax, dropout masks) too: no op of such a plan keeps
                // state past the run (only batch normalization does, and it couples the plan).
                let len = self.ws.len();
                std::mem::swap(&mut self.ws, ws);
                self.ws.resize_with(len, Workspace::default);
            }
            for (bufs, slots, pool) in [(&mut self.acts, &plan.acts, acts), (&mut self.grads, &plan.grads, grads)] {
                for (i, (b, _)) in bufs.iter_mut().zip(&slots.part).filter(|(_, &p)| p || all).enumerate() {
                    if pool.len() == i {
                        pool.push(Arena::default());
                    }
                    let len = b.len();
                    std::mem::swap(b, &mut pool[i]);
                    b.resize(len);
                }
            }
        });
    }

    /// The value of `node` for the `m` samples of the last forward pass; `x` is their input.
    fn act<'s>(&'s self, plan: &Plan, node: usize, x: &'s [f32], m: usize) -> &'s [f32] {
        self.act_rows(plan, node, Rows { x, lo: 0, m, part: 0 })
    }

    /// The value of `node` for the samples `rows` of the last forward pass.
    fn act_rows<'s>(&'s self, plan: &Plan, node: usize, rows: Rows<'s>) -> &'s [f32] {
        let l = plan.len[node];
        match plan.acts.of[node] {
            Some(s) => &self.acts[s][plan.acts.range(s, rows.lo, rows.m, l)],
            None => rows.x,
        }
    }

    /// Starts a backward pass of part `part`: no gradient written but the output's.
    pub(crate) fn start_backward(&mut self, plan: &Plan, part: usize) {
        let nodes = plan.len.len();
        let w = &mut self.written[part * nodes..(part + 1) * nodes];
        w.fill(false);
        w[plan.output] = true;
    }

    /// The model's output for the last forward pass over `m` samples.
    pub(crate) fn output(&self, plan: &Plan, m: usize) -> &[f32] {
        self.act(plan, plan.output, &[], m)
    }

    /// The gradient of `node` after the last backward pass over `m` samples (a node the
    /// plan was asked to differentiate with respect to).
    pub(crate) fn gradient(&self, plan: &Plan, node: usize, m: usize) -> Option<&[f32]> {
        let root = plan.root[node];
        plan.grads.of[root].map(|s| &self.grads[s][..m * plan.len[root]])
    }

    /// The gradient buffer of the model's output for `m` samples (where a backward pass
    /// starts), if the output needs one.
    pub(crate) fn output_gradient_mut(&mut self, plan: &Plan, m: usize) -> Option<&mut [f32]> {
        plan.grads.of[plan.output].map(|s| &mut self.grads[s][..m * plan.len[plan.output]])
    }

    /// The value of `node` after the last forward pass over `m` samples (a node the plan
    /// was asked to keep).
    pub(crate) fn value(&self, plan: &Plan, node: usize, m: usize) -> &[f32] {
        self.act(plan, plan.root[node], &[], m)
    }
}

/// Forward pass of the `m` samples `x` (the model's input), the first of which is sample
/// `mode.first_sample` of its batch.
pub(crate) fn forward(
    plan: &Plan,
    weights: Weights<'_>,
    shard: &mut Shard,
    x: &[f32],
    m: usize,
    mode: Mode,
) -> Result<()> {
    let rows = Rows { x, lo: 0, m, part: 0 };
    (0..plan.ops.len()).try_for_each(|k| forward_op(plan, weights, shard, k, rows, mode, Half::Whole))
}

/// The reduction halves of op `op` (which has them: the plan put it at a boundary).
fn reduction(op: &PlanOp) -> &dyn Reduction {
    op.op.reduction().expect("ops run in halves reduce over the batch")
}

/// Op `k`'s forward pass (or `half` of it) over `rows`, timed where the plan profiles.
pub(crate) fn forward_op(
    plan: &Plan,
    weights: Weights<'_>,
    shard: &mut Shard,
    k: usize,
    rows: Rows<'_>,
    mode: Mode,
    half: Half<'_>,
) -> Result<()> {
    let _timer = plan.clock.as_ref().map(|c| c.start(k, OpPass::Forward));
    let op = &plan.ops[k];
    let slot = plan.acts.of[op.output].expect("op outputs have buffers");
    let l = plan.len[op.output];
    let wi = rows.part * plan.ops.len() + k;
    let mut out = std::mem::take(&mut shard.acts[slot]);
    let mut ws = std::mem::take(&mut shard.ws[wi]);
    let r = {
        let xs: Vec<&[f32]> = op.inputs.iter().map(|&j| shard.act_rows(plan, j, rows)).collect();
        let mode = Mode { logits: op.logits, ..mode };
        let y = &mut out[plan.acts.range(slot, rows.lo, rows.m, l)];
        let f = Forward { weights, x: &xs, y, n: rows.m, ws: &mut ws, mode };
        match half {
            Half::Whole => op.op.forward(f),
            Half::Partial(p, _) => reduction(op).forward_partial(f, p),
            Half::Finish(shared) => reduction(op).forward_finish(f, shared),
        }
    };
    shard.acts[slot] = out;
    shard.ws[wi] = ws;
    r
}

/// Backward pass of the `m` samples `x` after their forward pass and loss; parameter
/// gradients go to `grads` (added with `accumulate`).
pub(crate) fn backward(
    plan: &Plan,
    weights: Weights<'_>,
    grads: &mut [f32],
    shard: &mut Shard,
    (x, m): (&[f32], usize),
    accumulate: bool,
    mode: Mode,
) -> Result<()> {
    let rows = Rows { x, lo: 0, m, part: 0 };
    shard.start_backward(plan, 0);
    for k in (0..plan.ops.len()).rev().filter(|&k| plan.ops[k].backward) {
        backward_op(plan, weights, grads, shard, k, rows, (accumulate, mode), Half::Whole)?;
    }
    Ok(())
}

/// Op `k`'s backward pass (or `half` of it) over `rows`, after the backward passes of the
/// ops downstream of it over the same rows; parameter gradients go to `grads` (added with
/// `accumulate`). An input's gradient is written directly where this is its first
/// consumer to run backward; else the op adds it in place where it can
/// ([`super::plan::Op::adds_input_gradient`]), or it is computed apart and added.
/// Timed where the plan profiles.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_op(
    plan: &Plan,
    weights: Weights<'_>,
    grads: &mut [f32],
    shard: &mut Shard,
    k: usize,
    rows: Rows<'_>,
    (accumulate, mode): (bool, Mode),
    half: Half<'_>,
) -> Result<()> {
    let _timer = plan.clock.as_ref().map(|c| c.start(k, OpPass::Backward));
    let op = &plan.ops[k];
    let m = rows.m;
    // Where the part's gradient of node `j` lies in its slot.
    let at = |j: usize| plan.grads.range(plan.grads.of[j].expect("gradients have slots"), rows.lo, m, plan.len[j]);
    let written = rows.part * plan.len.len();
    // The inputs whose gradients this call writes.
    let wants: Vec<bool> = (0..op.inputs.len())
        .map(|q| {
            op.needs_dx[q]
                && match half {
                    Half::Whole => true,
                    Half::Partial(..) => !reduction(op).dx_in_finish(q),
                    Half::Finish(_) => reduction(op).dx_in_finish(q),
                }
        })
        .collect();
    let gslot = plan.grads.of[op.output].expect("ops that run backward have an output gradient");
    let mut dy = std::mem::take(&mut shard.grads[gslot]);
    let mut ws = std::mem::take(&mut shard.ws[rows.part * plan.ops.len() + k]);
    // Per input: its gradient buffer taken out to write directly, or the fan buffer.
    let mut direct: Vec<Option<Arena>> = vec![None; op.inputs.len()];
    let mut fans = std::mem::take(&mut shard.fan);
    let mut add_to_dx = vec![false; op.inputs.len()];
    for (q, &j) in op.inputs.iter().enumerate() {
        // A gradient the second half reads back (once, where the op reads the value once).
        let reads = matches!(half, Half::Finish(_))
            && op.needs_dx[q]
            && reduction(op).finish_reads_dx(q)
            && !op.inputs[..q].contains(&j);
        if reads {
            let s = plan.grads.of[j].expect("values that need a gradient have a buffer");
            direct[q] = Some(std::mem::take(&mut shard.grads[s]));
            continue;
        }
        let holds = shard.written[written + j];
        // An input the op reads twice shares one buffer: the second takes a fan.
        let taken = op.inputs[..q].iter().zip(&direct).any(|(&i, d)| i == j && d.is_some());
        let adds = holds && !taken && op.op.adds_input_gradient();
        if wants[q] && (!holds || adds) {
            let s = plan.grads.of[j].expect("values that need a gradient have a buffer");
            direct[q] = Some(std::mem::take(&mut shard.grads[s]));
            shard.written[written + j] = true;
            add_to_dx[q] = adds;
        } else if wants[q] {
            fans[q].resize(m * plan.len[j]);
        }
    }
    let r = {
        let mut dx: Vec<Option<&mut [f32]>> = Vec::with_capacity(op.inputs.len());
        for (q, (d, fan)) in direct.iter_mut().zip(fans.iter_mut()).enumerate() {
            let j = op.inputs[q];
            let l = plan.len[j];
            dx.push(match d {
                Some(v) => Some(&mut v[at(j)]),
                None if wants[q] => Some(&mut fan[..m * l]),
                None => None,
            });
        }
        let xs: Vec<&[f32]> = op.inputs.iter().map(|&j| shard.act_rows(plan, j, rows)).collect();
        let y = shard.act_rows(plan, op.output, rows);
        let mode = Mode { logits: op.logits, ..mode };
        let dy = &mut dy[at(op.output)];
        let weight_grads = plan.weight_grads;
        let ws = &mut ws;
        let add_to_dx = &add_to_dx[..];
        let b = Backward {
            weights,
            grads,
            accumulate,
            weight_grads,
            x: &xs,
            y,
            dy,
            dx: &mut dx,
            add_to_dx,
            n: m,
            ws,
            mode,
        };
        match half {
            Half::Whole => op.op.backward(b),
            Half::Partial(p, shared) => reduction(op).backward_partial(b, shared, p),
            Half::Finish(shared) => reduction(op).backward_finish(b, shared),
        }
    };
    let mut summed = Ok(());
    for (q, d) in direct.into_iter().enumerate() {
        let j = op.inputs[q];
        let s = plan.grads.of[j];
        match (d, s) {
            (Some(v), Some(s)) => shard.grads[s] = v,
            (None, Some(s)) if wants[q] => {
                let l = plan.len[j];
                let ctx = ember_kernels::Ctx::new();
                summed = summed.and(ember_kernels::elementwise::accumulate(
                    &ctx,
                    &mut shard.grads[s][at(j)],
                    &fans[q][..m * l],
                ));
            }
            _ => {}
        }
    }
    shard.fan = fans;
    shard.grads[gslot] = dy;
    shard.ws[rows.part * plan.ops.len() + k] = ws;
    r?;
    Ok(summed?)
}

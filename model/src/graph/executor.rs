//! The executor: runs a [`Plan`] over shards of a batch. A [`Shard`] owns everything a run
//! writes (activation and gradient buffers, each op's workspace), the batch is only read,
//! and so are the model's weights, so several shards of one model run at once, each on its
//! own thread with its own gradient arena ([`run_sharded`]). Ops are called through one
//! trait: no kind matches, no downcasts.

use super::plan::{Plan, PlanOp, PART};
use super::reduction::{Partial, Reduction};
use crate::error::{Error, Result};
use crate::layers::{Backward, Forward, Mode, Workspace};
use crate::losses::{Counts, Loss};
use crate::params::Weights;
use crate::targets::Targets;

/// One shard's buffers: what a forward and backward pass over (part of) a batch writes.
/// Create one per concurrent run with [`crate::Model::new_shard`].
#[derive(Debug, Clone, Default)]
pub struct Shard {
    pub(super) acts: Vec<Vec<f32>>,
    pub(super) grads: Vec<Vec<f32>>,
    /// Per (part, op), `part · ops + op`: each op's side data for a part (one part, reused,
    /// unless the plan reduces over the batch and every part's forward precedes its
    /// backward).
    ws: Vec<Workspace>,
    /// Per input of the op being run backward: a gradient to add into a value that already
    /// holds another consumer's.
    fan: Vec<Vec<f32>>,
    /// Per (part, node), as `ws`: whether the node's gradient has been written in the
    /// current backward pass.
    written: Vec<bool>,
    /// Per part: its contribution to the reduction being run (plans that reduce over the
    /// batch).
    pub(super) partials: Vec<Partial>,
    /// Per op: the batch's reduced statistics of a plan that reduces over the batch, in
    /// the first shard after a run (the moving statistics' update reads them).
    pub(super) shared: Vec<Workspace>,
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

/// A batch: `n` samples of the model's input and their targets.
#[derive(Debug, Clone, Default)]
pub(crate) struct Batch {
    pub input: Vec<f32>,
    pub targets: crate::targets::TargetBuf,
}

/// Most shards a batch is split into: each shard has a gradient arena of its own.
pub const MAX_SHARDS: usize = 8;

/// The extra gradient arenas (beyond the store's own) of all shards together stay under this
/// many floats (16M: 64 MiB), so a big model splits a batch into fewer shards.
const SHARD_GRAD_BUDGET: usize = 16 << 20;

/// How many shards a batch of `n` runs in: one per part of [`PART`] samples, at most
/// [`MAX_SHARDS`] and within the gradient budget for `params` trainable floats; one when the
/// plan cannot split a batch. A function of the batch and the model only, never of the
/// thread count, so the gradients' sum (in shard order) is the same on any number of threads.
pub(crate) fn shard_count(plan: &Plan, n: usize, params: usize) -> usize {
    if !plan.parts {
        return 1;
    }
    let by_budget = 1 + SHARD_GRAD_BUDGET / params.max(1);
    n.div_ceil(PART).clamp(1, MAX_SHARDS.min(by_budget))
}

/// What a batch run needs besides the plan and the shard.
pub(crate) struct RunArgs<'a> {
    pub weights: Weights<'a>,
    /// Training or inference, and the step's seed.
    pub mode: Mode,
    pub loss: Loss,
    pub classes: usize,
    /// The size of the global batch the loss is a mean over (this shard may hold part).
    pub global_batch: usize,
    /// The `k` of a top-k accuracy metric, if one was asked for.
    pub top_k: Option<usize>,
}

impl Shard {
    /// Sizes the buffers for runs of up to `n` samples (no allocation once the largest has
    /// been seen).
    pub(crate) fn size(&mut self, plan: &Plan, n: usize) {
        // Buffers for one part, or for all of them where the plan reduces over the batch.
        let rows = if plan.parts && !plan.coupled { n.min(PART) } else { n };
        let parts = if plan.coupled { n.div_ceil(PART).max(1) } else { 1 };
        let size = |bufs: &mut Vec<Vec<f32>>, lens: &[usize]| {
            bufs.resize_with(lens.len(), Vec::new);
            bufs.iter_mut().zip(lens).for_each(|(b, &l)| b.resize(rows * l, 0.0));
        };
        size(&mut self.acts, &plan.acts.len);
        size(&mut self.grads, &plan.grads.len);
        self.ws.resize_with(parts * plan.ops.len(), Workspace::default);
        self.written.resize(parts * plan.len.len(), false);
        self.partials.resize_with(parts, Partial::default);
        let widest = plan.ops.iter().map(|o| o.inputs.len()).max().unwrap_or(0);
        self.fan.resize_with(widest, Vec::new);
    }

    /// The value of `node` for the `m` samples of the last forward pass; `x` is their input.
    fn act<'s>(&'s self, plan: &Plan, node: usize, x: &'s [f32], m: usize) -> &'s [f32] {
        self.act_rows(plan, node, Rows { x, lo: 0, m, part: 0 })
    }

    /// The value of `node` for the samples `rows` of the last forward pass.
    fn act_rows<'s>(&'s self, plan: &Plan, node: usize, rows: Rows<'s>) -> &'s [f32] {
        let l = plan.len[node];
        match plan.acts.of[node] {
            Some(s) => &self.acts[s][rows.lo * l..(rows.lo + rows.m) * l],
            None => rows.x,
        }
    }

    /// Starts a backward pass of part `part`: no gradient written but the output's.
    pub(super) fn start_backward(&mut self, plan: &Plan, part: usize) {
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

/// Op `k`'s forward pass (or `half` of it) over `rows`.
pub(super) fn forward_op(
    plan: &Plan,
    weights: Weights<'_>,
    shard: &mut Shard,
    k: usize,
    rows: Rows<'_>,
    mode: Mode,
    half: Half<'_>,
) -> Result<()> {
    let op = &plan.ops[k];
    let slot = plan.acts.of[op.output].expect("op outputs have buffers");
    let l = plan.len[op.output];
    let wi = rows.part * plan.ops.len() + k;
    let mut out = std::mem::take(&mut shard.acts[slot]);
    let mut ws = std::mem::take(&mut shard.ws[wi]);
    let r = {
        let xs: Vec<&[f32]> = op.inputs.iter().map(|&j| shard.act_rows(plan, j, rows)).collect();
        let mode = Mode { logits: op.logits, ..mode };
        let y = &mut out[rows.lo * l..(rows.lo + rows.m) * l];
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
/// consumer to run backward, else computed apart and added.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward_op(
    plan: &Plan,
    weights: Weights<'_>,
    grads: &mut [f32],
    shard: &mut Shard,
    k: usize,
    rows: Rows<'_>,
    (accumulate, mode): (bool, Mode),
    half: Half<'_>,
) -> Result<()> {
    let op = &plan.ops[k];
    let (lo, m) = (rows.lo, rows.m);
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
    let mut direct: Vec<Option<Vec<f32>>> = vec![None; op.inputs.len()];
    let mut fans = std::mem::take(&mut shard.fan);
    for (q, &j) in op.inputs.iter().enumerate() {
        if wants[q] && !shard.written[written + j] {
            let s = plan.grads.of[j].expect("values that need a gradient have a buffer");
            direct[q] = Some(std::mem::take(&mut shard.grads[s]));
            shard.written[written + j] = true;
        } else if wants[q] {
            fans[q].resize(m * plan.len[j], 0.0);
        }
    }
    let r = {
        let mut dx: Vec<Option<&mut [f32]>> = Vec::with_capacity(op.inputs.len());
        for (q, (d, fan)) in direct.iter_mut().zip(fans.iter_mut()).enumerate() {
            let l = plan.len[op.inputs[q]];
            dx.push(match d {
                Some(v) => Some(&mut v[lo * l..(lo + m) * l]),
                None if wants[q] => Some(&mut fan[..m * l]),
                None => None,
            });
        }
        let xs: Vec<&[f32]> = op.inputs.iter().map(|&j| shard.act_rows(plan, j, rows)).collect();
        let y = shard.act_rows(plan, op.output, rows);
        let mode = Mode { logits: op.logits, ..mode };
        let l = plan.len[op.output];
        let dy = &mut dy[lo * l..(lo + m) * l];
        let weight_grads = plan.weight_grads;
        let ws = &mut ws;
        let b = Backward { weights, grads, accumulate, weight_grads, x: &xs, y, dy, dx: &mut dx, n: m, ws, mode };
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
                    &mut shard.grads[s][lo * l..(lo + m) * l],
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

/// Forward, loss and (when `grads` is given) backward over the samples `x` with `targets`,
/// the first of which is sample `first_sample` of its batch, part by part: each part's
/// activations stay in cache and its parameter gradients add up in `grads`. Returns the
/// summed loss and the metrics' counts.
pub(crate) fn run_range(
    plan: &Plan,
    a: &RunArgs<'_>,
    mut grads: Option<&mut [f32]>,
    shard: &mut Shard,
    (x, targets): (&[f32], Targets<'_>),
    first_sample: usize,
) -> Result<(f64, Counts)> {
    let n = targets.len();
    let in_len = plan.len[0];
    if x.len() != n * in_len {
        return Err(Error::Data(format!("{} input values for {n} samples", x.len())));
    }
    if plan.coupled {
        let mut g: Vec<&mut [f32]> = grads.into_iter().collect();
        let g = if g.is_empty() { None } else { Some(&mut g[..]) };
        let r = super::coupled::run(plan, a, g, std::slice::from_mut(shard), (x, targets), first_sample)?;
        return Ok(r[0]);
    }
    shard.size(plan, n);
    let part = if plan.parts { PART } else { n.max(1) };
    let (mut loss, mut counts) = (0f64, Counts::default());
    for (k, lo) in (0..n).step_by(part).enumerate() {
        let m = part.min(n - lo);
        let xp = &x[lo * in_len..(lo + m) * in_len];
        let mode = Mode { first_sample: first_sample + lo, ..a.mode };
        forward(plan, a.weights, shard, xp, m, mode)?;
        let (l, c) = part_loss(plan, a, shard, (0, m), targets.slice(lo..lo + m))?;
        loss += l;
        counts = counts + c;
        if let Some(g) = grads.as_deref_mut() {
            backward(plan, a.weights, g, shard, (xp, m), k > 0, mode)?;
        }
    }
    Ok((loss, counts))
}

/// The loss (summed, each sample's scaled as a mean over the global batch) and the
/// metrics' counts of the `m` samples at rows `lo..lo + m` of the shard's output, after
/// their forward pass; their gradient written to the output's gradient rows (where the
/// plan has one).
pub(super) fn part_loss(
    plan: &Plan,
    a: &RunArgs<'_>,
    shard: &mut Shard,
    (lo, m): (usize, usize),
    targets: Targets<'_>,
) -> Result<(f64, Counts)> {
    let scale = 1.0 / a.global_batch as f32;
    let rows = lo * a.classes..(lo + m) * a.classes;
    let out_slot = plan.acts.of[plan.output].expect("the output has a buffer");
    let out = &shard.acts[out_slot][rows.clone()];
    let mut scratch = Vec::new();
    let dout = match plan.grads.of[plan.output] {
        Some(s) => &mut shard.grads[s][rows],
        None => {
            scratch.resize(m * a.classes, 0.0);
            &mut scratch[..]
        }
    };
    let logits = plan.absorbed.is_some();
    let loss = a.loss.sum_and_grad(out, targets, a.classes, scale, dout, logits)?;
    let mut counts = a.loss.correct(out, targets, a.classes, logits)?;
    if let Some(k) = a.top_k {
        counts.top_k += crate::losses::in_top_k(out, &targets.class_labels(), a.classes, k)?;
    }
    Ok((loss, counts))
}

/// [`run_range`] over a whole batch split into `shards.len()` shards of whole parts, run
/// in parallel in the current rayon pool: shard `k` writes its parameter gradients into
/// `grads[k]` (overwriting), and the shards' gradients are then summed into `grads[0]` in
/// shard order, as are the losses and counts. Nothing depends on which thread ran which
/// shard.
pub(crate) fn run_sharded(
    plan: &Plan,
    a: &RunArgs<'_>,
    grads: Option<&mut [&mut [f32]]>,
    shards: &mut [Shard],
    batch: &Batch,
) -> Result<(f64, Counts)> {
    let s = shards.len().max(1);
    let per_shard = run_shards(plan, a, grads, shards, batch, (0, s, true))?;
    Ok(fold_in_order((0.0, Counts::default()), &per_shard))
}

/// The losses and counts of shards added to `start` in shard order.
pub(crate) fn fold_in_order(start: (f64, Counts), per_shard: &[(f64, Counts)]) -> (f64, Counts) {
    per_shard.iter().fold(start, |(l, c), &(l2, c2)| (l + l2, c + c2))
}

/// Shards `first..first + shards.len()` of a batch split into `total` shards (the split
/// [`run_sharded`] makes), in parallel: shard `first + k` runs in `shards[k]` with its
/// gradients in `grads[k]`; with `sum`, `grads[1..]` are then added to `grads[0]` in order.
/// Returns each shard's (summed loss, counts). A rank of a data-parallel run calls
/// this for its slice of the shards.
pub(crate) fn run_shards(
    plan: &Plan,
    a: &RunArgs<'_>,
    grads: Option<&mut [&mut [f32]]>,
    shards: &mut [Shard],
    batch: &Batch,
    (first, total, sum): (usize, usize, bool),
) -> Result<Vec<(f64, Counts)>> {
    use rayon::prelude::*;
    let n = batch.targets.len();
    let s = shards.len();
    if plan.coupled {
        // The reductions join every part of the batch: its shards run in this process.
        if first != 0 || total != s {
            return Err(Error::Config(
                "a model with a layer that reduces over the batch (BatchNormalization) runs a batch's shards in one process"
                    .into(),
            ));
        }
        let mut grads = grads;
        let x = (&batch.input[..], batch.targets.as_targets());
        let r = super::coupled::run(plan, a, grads.as_deref_mut(), shards, x, 0)?;
        if let (Some(g), true) = (grads, sum) {
            sum_in_order(&mut g[..s])?;
        }
        return Ok(r);
    }
    let parts = n.div_ceil(PART).max(1);
    let per = parts.div_ceil(total.max(1)) * PART;
    let in_len = plan.len[0];
    let run = |k: usize, shard: &mut Shard, g: Option<&mut [f32]>| {
        let lo = ((first + k) * per).min(n);
        let hi = ((first + k + 1) * per).min(n);
        if lo == hi {
            if let Some(g) = g {
                g.fill(0.0);
            }
            return Ok((0.0, Counts::default()));
        }
        let range = (&batch.input[lo * in_len..hi * in_len], batch.targets.as_targets().slice(lo..hi));
        run_range(plan, a, g, shard, range, lo)
    };
    let results: Vec<Result<(f64, Counts)>> = match grads {
        Some(g) => {
            let g = &mut g[..s];
            let r = shards
                .par_iter_mut()
                .zip(g.par_iter_mut())
                .enumerate()
                .map(|(k, (sh, g))| run(k, sh, Some(&mut **g)))
                .collect();
            if sum {
                sum_in_order(g)?;
            }
            r
        }
        None => shards.par_iter_mut().enumerate().map(|(k, sh)| run(k, sh, None)).collect(),
    };
    results.into_iter().collect()
}

/// After a training step, every op updates its layers' state from the batch's statistics
/// in shard 0: the reduced ones where the plan reduces over the batch in parts, else its
/// workspace (a stateful layer that couples the batch then ran it whole, in one shard).
pub(crate) fn update_state(plan: &Plan, shard: &Shard, store: &mut crate::params::ParamStore) -> Result<()> {
    let state = if plan.coupled { &shard.shared } else { &shard.ws };
    for (op, ws) in plan.ops.iter().zip(state) {
        op.op.update_state(ws, store)?;
    }
    Ok(())
}

/// `g[0] += g[1]; g[0] += g[2]; ...` in that order, elementwise (each sum in chunks across
/// the pool).
pub(crate) fn sum_in_order(g: &mut [&mut [f32]]) -> Result<()> {
    let Some((first, rest)) = g.split_first_mut() else { return Ok(()) };
    let ctx = ember_kernels::Ctx::new();
    for other in rest.iter() {
        ember_kernels::elementwise::accumulate(&ctx, first, other)?;
    }
    Ok(())
}

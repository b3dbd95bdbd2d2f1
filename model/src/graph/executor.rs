//! The executor: runs a [`Plan`] over shards of a batch. A [`Shard`] owns everything a run
//! writes (activation and gradient buffers, each op's workspace), the batch is only read,
//! and so are the model's weights, so several shards of one model run at once, each on its
//! own thread with its own gradient arena ([`run_sharded`]). Ops are called through one
//! trait: no kind matches, no downcasts.

use super::plan::{Plan, PART};
use crate::error::{Error, Result};
use crate::layers::{Backward, Forward, Mode, Workspace};
use crate::losses::{Counts, Loss};
use crate::params::Weights;
use crate::targets::Targets;

/// One shard's buffers: what a forward and backward pass over (part of) a batch writes.
/// Create one per concurrent run with [`crate::Model::new_shard`].
#[derive(Debug, Clone, Default)]
pub struct Shard {
    acts: Vec<Vec<f32>>,
    grads: Vec<Vec<f32>>,
    ws: Vec<Workspace>,
    /// Per input of the op being run backward: a gradient to add into a value that already
    /// holds another consumer's.
    fan: Vec<Vec<f32>>,
    written: Vec<bool>,
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
        let part = if plan.parts { n.min(PART) } else { n };
        let size = |bufs: &mut Vec<Vec<f32>>, lens: &[usize]| {
            bufs.resize_with(lens.len(), Vec::new);
            bufs.iter_mut().zip(lens).for_each(|(b, &l)| b.resize(part * l, 0.0));
        };
        size(&mut self.acts, &plan.acts.len);
        size(&mut self.grads, &plan.grads.len);
        self.ws.resize_with(plan.ops.len(), Workspace::default);
        let widest = plan.ops.iter().map(|o| o.inputs.len()).max().unwrap_or(0);
        self.fan.resize_with(widest, Vec::new);
    }

    /// The value of `node` for the `m` samples of the last forward pass; `x` is their input.
    fn act<'s>(&'s self, plan: &Plan, node: usize, x: &'s [f32], m: usize) -> &'s [f32] {
        match plan.acts.of[node] {
            Some(s) => &self.acts[s][..m * plan.len[node]],
            None => x,
        }
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
    for (k, op) in plan.ops.iter().enumerate() {
        let slot = plan.acts.of[op.output].expect("op outputs have buffers");
        let mut out = std::mem::take(&mut shard.acts[slot]);
        let mut ws = std::mem::take(&mut shard.ws[k]);
        let r = {
            let xs: Vec<&[f32]> = op.inputs.iter().map(|&j| shard.act(plan, j, x, m)).collect();
            let mode = Mode { logits: op.logits, ..mode };
            op.op.forward(Forward { weights, x: &xs, y: &mut out[..m * plan.len[op.output]], n: m, ws: &mut ws, mode })
        };
        shard.acts[slot] = out;
        shard.ws[k] = ws;
        r?;
    }
    Ok(())
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
    shard.written.clear();
    shard.written.resize(plan.len.len(), false);
    shard.written[plan.output] = true;
    for (k, op) in plan.ops.iter().enumerate().rev() {
        if !op.backward {
            continue;
        }
        let gslot = plan.grads.of[op.output].expect("ops that run backward have an output gradient");
        let mut dy = std::mem::take(&mut shard.grads[gslot]);
        let mut ws = std::mem::take(&mut shard.ws[k]);
        // Per input: its gradient buffer taken out to write directly, or the fan buffer.
        let mut direct: Vec<Option<Vec<f32>>> = vec![None; op.inputs.len()];
        let mut fans = std::mem::take(&mut shard.fan);
        for (q, (&j, &need)) in op.inputs.iter().zip(&op.needs_dx).enumerate() {
            if need && !shard.written[j] {
                let s = plan.grads.of[j].expect("values that need a gradient have a buffer");
                direct[q] = Some(std::mem::take(&mut shard.grads[s]));
                shard.written[j] = true;
            } else if need {
                fans[q].resize(m * plan.len[j], 0.0);
            }
        }
        let r = {
            let mut dx: Vec<Option<&mut [f32]>> = Vec::with_capacity(op.inputs.len());
            for (q, (d, fan)) in direct.iter_mut().zip(fans.iter_mut()).enumerate() {
                let l = m * plan.len[op.inputs[q]];
                dx.push(match d {
                    Some(v) => Some(&mut v[..l]),
                    None if op.needs_dx[q] => Some(&mut fan[..l]),
                    None => None,
                });
            }
            let xs: Vec<&[f32]> = op.inputs.iter().map(|&j| shard.act(plan, j, x, m)).collect();
            let y = shard.act(plan, op.output, x, m);
            let mode = Mode { logits: op.logits, ..mode };
            let dy = &mut dy[..m * plan.len[op.output]];
            let weight_grads = plan.weight_grads;
            op.op.backward(Backward {
                weights,
                grads,
                accumulate,
                weight_grads,
                x: &xs,
                y,
                dy,
                dx: &mut dx,
                n: m,
                ws: &mut ws,
                mode,
            })
        };
        let mut summed = Ok(());
        for (q, d) in direct.into_iter().enumerate() {
            let j = op.inputs[q];
            let s = plan.grads.of[j];
            match (d, s) {
                (Some(v), Some(s)) => shard.grads[s] = v,
                (None, Some(s)) if op.needs_dx[q] => {
                    let l = m * plan.len[j];
                    let ctx = ember_kernels::Ctx::new();
                    summed = summed.and(ember_kernels::elementwise::accumulate(
                        &ctx,
                        &mut shard.grads[s][..l],
                        &fans[q][..l],
                    ));
                }
                _ => {}
            }
        }
        shard.fan = fans;
        shard.grads[gslot] = dy;
        shard.ws[k] = ws;
        r?;
        summed?;
    }
    Ok(())
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
    shard.size(plan, n);
    let part = if plan.parts { PART } else { n.max(1) };
    let (mut loss, mut counts) = (0f64, Counts::default());
    let scale = 1.0 / a.global_batch as f32;
    for (k, lo) in (0..n).step_by(part).enumerate() {
        let m = part.min(n - lo);
        let xp = &x[lo * in_len..(lo + m) * in_len];
        let mode = Mode { first_sample: first_sample + lo, ..a.mode };
        forward(plan, a.weights, shard, xp, m, mode)?;
        let gslot = plan.grads.of[plan.output];
        let out_slot = plan.acts.of[plan.output].expect("the output has a buffer");
        let out = &shard.acts[out_slot][..m * a.classes];
        let targets = targets.slice(lo..lo + m);
        let mut scratch = Vec::new();
        let dout = match gslot {
            Some(s) => &mut shard.grads[s][..m * a.classes],
            None => {
                scratch.resize(m * a.classes, 0.0);
                &mut scratch[..]
            }
        };
        loss += a.loss.sum_and_grad(out, targets, a.classes, scale, dout, plan.absorbed.is_some())?;
        counts = counts + a.loss.correct(out, targets, a.classes, plan.absorbed.is_some())?;
        if let Some(k) = a.top_k {
            counts.top_k += crate::losses::in_top_k(out, &targets.class_labels(), a.classes, k)?;
        }
        if let Some(g) = grads.as_deref_mut() {
            backward(plan, a.weights, g, shard, (xp, m), k > 0, mode)?;
        }
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

/// After a training step, every op updates its layers' state from its workspace in shard 0
/// (stateful layers couple the batch: they run in one shard, which saw all of it).
pub(crate) fn update_state(plan: &Plan, shard: &Shard, store: &mut crate::params::ParamStore) -> Result<()> {
    for (op, ws) in plan.ops.iter().zip(&shard.ws) {
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

//! Runs of a batch: in parts (each part's forward, loss and backward while its activations
//! are in cache) and shards of whole parts (each on a thread, with its own gradient
//! arena), summed in shard order; plans that reduce over the batch run in [`super::coupled`].

use super::{backward, forward, Shard};
use crate::error::{Error, Result};
use crate::graph::plan::Plan;
use crate::layers::Mode;
use crate::losses::{Counts, Loss};
use crate::params::Weights;
use crate::targets::Targets;

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

/// How many shards a batch of `n` runs in: one per part ([`Plan::part`] samples), at most
/// [`MAX_SHARDS`] and within the gradient budget for `params` trainable floats; one when the
/// plan cannot split a batch. A function of the batch and the model only, never of the
/// thread count, so the gradients' sum (in shard order) is the same on any number of threads.
pub(crate) fn shard_count(plan: &Plan, n: usize, params: usize) -> usize {
    if !plan.parts {
        return 1;
    }
    let by_budget = 1 + SHARD_GRAD_BUDGET / params.max(1);
    n.div_ceil(plan.part).clamp(1, MAX_SHARDS.min(by_budget))
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
        let r = super::coupled::run(plan, a, g, std::slice::from_mut(shard), (x, targets), first_sample, None)?;
        return Ok(r[0]);
    }
    shard.size(plan, n);
    let part = if plan.parts { plan.part } else { n.max(1) };
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
    let out_slot = plan.acts.of[plan.output].expect("the output has a buffer");
    let out = &shard.acts[out_slot][plan.acts.range(out_slot, lo, m, a.classes)];
    let mut scratch = Vec::new();
    let dout = match plan.grads.of[plan.output] {
        Some(s) => &mut shard.grads[s][plan.grads.range(s, lo, m, a.classes)],
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

/// [`run_range`] over a whole batch (its samples' input and their targets) split into
/// `shards.len()` shards of whole parts, run in parallel in the current rayon pool: shard
/// `k` writes its parameter gradients into `grads[k]` (overwriting), and with `sum` the
/// shards' gradients are then summed into `grads[0]` in shard order (without, the caller
/// sums them, in that order); the losses and counts are summed in shard order. Nothing
/// depends on which thread ran which shard.
pub(crate) fn run_sharded(
    plan: &Plan,
    a: &RunArgs<'_>,
    grads: Option<&mut [&mut [f32]]>,
    shards: &mut [Shard],
    batch: (&[f32], Targets<'_>),
    sum: bool,
) -> Result<(f64, Counts)> {
    let s = shards.len().max(1);
    let per_shard = run_shards(plan, a, grads, shards, batch, (0, s, sum))?;
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
    (input, targets): (&[f32], Targets<'_>),
    (first, total, sum): (usize, usize, bool),
) -> Result<Vec<(f64, Counts)>> {
    use rayon::prelude::*;
    let n = targets.len();
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
        let r = super::coupled::run(plan, a, grads.as_deref_mut(), shards, (input, targets), 0, None)?;
        if let (Some(g), true) = (grads, sum) {
            sum_in_order(&mut g[..s])?;
        }
        return Ok(r);
    }
    let parts = n.div_ceil(plan.part).max(1);
    let per = parts.div_ceil(total.max(1)) * plan.part;
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
        let range = (&input[lo * in_len..hi * in_len], targets.slice(lo..hi));
        shard.with_thread_buffers(plan, |shard| run_range(plan, a, g, shard, range, lo))
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

/// `g[0] += g[1]; g[0] += g[2]; ...` in that order, elementwise (in one pass over `g[0]`, in
/// chunks across the pool).
pub(crate) fn sum_in_order(g: &mut [&mut [f32]]) -> Result<()> {
    let Some((first, rest)) = g.split_first_mut() else { return Ok(()) };
    let rest: Vec<&[f32]> = rest.iter().map(|x| &**x).collect();
    ember_kernels::elementwise::accumulate_in_order(&ember_kernels::Ctx::new(), first, &rest)?;
    Ok(())
}

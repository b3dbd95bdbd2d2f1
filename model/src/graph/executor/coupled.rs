//! The run of a plan whose ops reduce over the batch (batch normalization in training):
//! the batch still runs in parts of [`COUPLED_PART`] samples, in shards of whole parts that threads
//! run in parallel, but op by op between the reductions instead of all ops per part.
//!
//! Forward, segment by segment: a segment runs, for every part, the second half of the
//! reduction before it (normalizing with the batch's statistics), the ops up to the next
//! reduction, and that reduction's first half (the part's moments); shards in parallel,
//! each its parts in order; then the reduction joins all parts' moments in part order. The
//! last segment runs on into the loss and the backward pass of the ops after the last
//! reduction, part by part, while the part is in cache. The backward pass then runs the
//! same way in reverse (each reduction's first half: the part's sums; joined; its second
//! half: the part's input gradient). Every part's activations, gradients and workspaces
//! live from its forward to its backward: a shard holds buffers for all of its parts,
//! except for the values that live within one part's run through one segment, which share
//! one part's buffer ([`crate::graph::segments`]; a backward segment first recomputes the
//! reduction output among them that it reads).
//!
//! What is reduced, and how, depends only on the batch's parts (fixed by the batch size),
//! never on which thread ran which shard: the results are the same for any thread count.
//! A rank of a data-parallel run ([`Ranked`]) runs its share of the shards and joins every
//! rank's partials at each reduction, exchanged in part order: the same for any rank count.
//! Parameter gradients add up over a shard's parts in its arena, and the arenas are summed
//! in shard order by the caller, as for plans without reductions.

use super::batch::part_loss;
use super::{backward_op, forward_op, Half, Rows, RunArgs, Shard};
use crate::error::{Error, Result};
use crate::graph::plan::Plan;
#[cfg(doc)]
use crate::graph::plan::COUPLED_PART;
use crate::graph::reduction::Partial;
use crate::layers::{Mode, Workspace};
use crate::losses::Counts;
use crate::targets::Targets;
use rayon::prelude::*;

/// Where a shard's samples lie in the batch.
#[derive(Clone, Copy)]
struct Span {
    lo: usize,
    n: usize,
    /// Samples per part ([`Plan::part`]).
    part: usize,
}

impl Span {
    fn parts(self) -> usize {
        self.n.div_ceil(self.part)
    }
}

/// The exchange between the ranks of a data-parallel run (which hold contiguous shards):
/// given this process's partials of a reduction (`None` where its segment failed), every
/// rank's, in the batch's part order; an error on every rank when one failed.
pub(crate) type Exchange<'e> = dyn FnMut(Option<&[&Partial]>) -> Result<Vec<Partial>> + 'e;

/// This process's share of a batch that other processes share: shards `first..first +
/// shards.len()` of `total`, the parts run on `pool` (this call stays outside it, where the
/// exchange is), the reductions over every rank's partials.
pub(crate) struct Ranked<'e> {
    pub first: usize,
    pub total: usize,
    pub pool: &'e rayon::ThreadPool,
    pub exchange: &'e mut Exchange<'e>,
}

/// Forward, loss and (when `grads` is given, one arena per shard) backward over the `n`
/// samples `x` with `targets`, the first of which is sample `first_sample` of its batch,
/// split into `shards.len()` shards of whole parts (with `ranked`, the shards of this
/// process's share of the split). Shard `k` writes its parameter gradients into `grads[k]`
/// (overwriting; the caller sums them in shard order). Returns each shard's summed loss
/// and counts. The reduced statistics are left in the first shard.
pub(crate) fn run(
    plan: &Plan,
    a: &RunArgs<'_>,
    grads: Option<&mut [&mut [f32]]>,
    shards: &mut [Shard],
    (x, targets): (&[f32], Targets<'_>),
    first_sample: usize,
    ranked: Option<Ranked<'_>>,
) -> Result<Vec<(f64, Counts)>> {
    let n = targets.len();
    let in_len = plan.len[0];
    if x.len() != n * in_len || shards.is_empty() {
        return Err(Error::Data(format!("{} input values for {n} samples", x.len())));
    }
    let s = shards.len();
    let (first, total) = ranked.as_ref().map_or((0, s), |r| (r.first, r.total));
    // The split every process makes of the batch: whole parts, `per` samples a shard.
    let part = plan.part;
    let per = n.div_ceil(part).div_ceil(total.max(1)) * part;
    let spans: Vec<Span> =
        (first..first + s).map(|k| (k * per).min(n)).map(|lo| Span { lo, n: per.min(n - lo), part }).collect();
    for (shard, span) in shards.iter_mut().zip(&spans) {
        shard.size(plan, span.n);
    }
    let mut arenas: Vec<Option<&mut [f32]>> = match grads {
        Some(g) => g.iter_mut().take(s).map(|g| Some(&mut **g)).collect(),
        None => (0..s).map(|_| None).collect(),
    };
    for (g, span) in arenas.iter_mut().zip(&spans) {
        if let (Some(g), 0) = (g, span.n) {
            g.fill(0.0);
        }
    }
    let with_grads = arenas[0].is_some();
    let mut shared = std::mem::take(&mut shards[0].shared);
    shared.resize_with(plan.ops.len(), Workspace::default);
    let (pool, exchange) = match ranked {
        Some(r) => (Some(r.pool), Some(r.exchange)),
        None => (None, None),
    };
    let run = Run { plan, a, x, targets, first_sample, spans: &spans, pool };
    let r = run.go(shards, &mut arenas, &mut shared, with_grads, exchange);
    shards[0].shared = shared;
    r
}

/// One run's fixed arguments.
struct Run<'r, 'a> {
    plan: &'r Plan,
    a: &'r RunArgs<'a>,
    x: &'r [f32],
    targets: Targets<'r>,
    first_sample: usize,
    spans: &'r [Span],
    /// Where the parts run when this call is outside the pool (a rank of a data-parallel
    /// run); `None`: in the current pool.
    pool: Option<&'r rayon::ThreadPool>,
}

/// What a segment does with one part: the rows, the part's index in its shard, and its
/// shard's gradient arena.
type PartFn<'f> = dyn Fn(&mut Shard, Option<&mut [f32]>, Rows<'_>, Mode) -> Result<(f64, Counts)> + Sync + 'f;

impl Run<'_, '_> {
    fn go(
        &self,
        shards: &mut [Shard],
        arenas: &mut [Option<&mut [f32]>],
        shared: &mut [Workspace],
        with_grads: bool,
        mut exchange: Option<&mut Exchange<'_>>,
    ) -> Result<Vec<(f64, Counts)>> {
        let plan = self.plan;
        let w = self.a.weights;
        let k_end = plan.ops.len();
        let reductions: Vec<usize> = (0..k_end).filter(|&k| plan.ops[k].op.reduction().is_some()).collect();
        // Forward segments up to the last reduction.
        let mut start = 0;
        let mut before: Option<usize> = None;
        for &r in &reductions {
            let done = {
                let shared = &*shared;
                self.each_part(shards, arenas, &|shard, _, rows, mode| {
                    self.forward_segment(shard, rows, mode, shared, (before, start..r, Some(r)))?;
                    Ok(Default::default())
                })
            };
            let red = plan.ops[r].op.reduction().expect("listed as a reduction");
            self.over_parts(shards, done.map(drop), exchange.as_deref_mut(), |parts| {
                red.forward_reduce(w, self.a.mode.training, parts, &mut shared[r])
            })?;
            before = Some(r);
            start = r + 1;
        }
        // The reductions the backward pass runs, last first.
        let back: Vec<usize> = reductions.iter().rev().copied().filter(|&r| plan.ops[r].backward).collect();
        // The last forward segment, the loss, and the backward pass down to the last
        // reduction's first half.
        let per_shard = {
            let shared = &*shared;
            self.each_part(shards, arenas, &|shard, g, rows, mode| {
                self.forward_segment(shard, rows, mode, shared, (before, start..k_end, None))?;
                let at = mode.first_sample - self.first_sample;
                let t = self.targets.slice(at..at + rows.m);
                let result = part_loss(plan, self.a, shard, (rows.lo, rows.m), t)?;
                let Some(g) = g else { return Ok(result) };
                shard.start_backward(plan, rows.part);
                self.backward_segment(shard, g, rows, mode, shared, (k_end, back.first().copied()))?;
                Ok(result)
            })
        };
        if !with_grads {
            return per_shard;
        }
        let (mut done, per_shard) = match per_shard {
            Ok(v) => (Ok(()), v),
            Err(e) => (Err(e), Vec::new()),
        };
        // Backward segments: each reduction joined, then its second half, the ops down to
        // the next reduction, and that one's first half.
        for (i, &r) in back.iter().enumerate() {
            let red = plan.ops[r].op.reduction().expect("listed as a reduction");
            self.over_parts(shards, done, exchange.as_deref_mut(), |parts| red.backward_reduce(parts, &mut shared[r]))?;
            let next = back.get(i + 1).copied();
            let shared = &*shared;
            done = self
                .each_part(shards, arenas, &|shard, g, rows, mode| {
                    let g = g.expect("a training run has arenas");
                    let half = Half::Finish(&shared[r]);
                    backward_op(plan, w, g, shard, r, rows, (rows.part > 0, mode), half)?;
                    // The segment's ops read the output of the reduction below them, which
                    // other parts have overwritten where it has one part's buffer.
                    if let Some(q) = next.filter(|&q| plan.recompute[q]) {
                        forward_op(plan, w, shard, q, rows, mode, Half::Finish(&shared[q]))?;
                    }
                    self.backward_segment(shard, g, rows, mode, shared, (r, next))?;
                    Ok(Default::default())
                })
                .map(drop);
        }
        done?;
        Ok(per_shard)
    }

    /// `reduce` over every part's partial in part order, once the segment before it is
    /// `done`: this process's parts, or with an `exchange` every rank's (each rank also
    /// learns whether the others' segments ran; the segment's own error comes first).
    fn over_parts(
        &self,
        shards: &[Shard],
        done: Result<()>,
        exchange: Option<&mut Exchange<'_>>,
        reduce: impl FnOnce(&[&Partial]) -> Result<()>,
    ) -> Result<()> {
        let mine = Self::partials(shards, self.spans);
        let Some(exchange) = exchange else {
            done?;
            return reduce(&mine);
        };
        let all = exchange(done.as_ref().ok().map(|_| &mine[..]));
        done?;
        let all = all?;
        reduce(&all.iter().collect::<Vec<_>>())
    }

    /// One part's forward pass through a segment `(before, ops, next)`: reduction
    /// `before`'s second half, the ops in `ops`, reduction `next`'s first half.
    fn forward_segment(
        &self,
        shard: &mut Shard,
        rows: Rows<'_>,
        mode: Mode,
        shared: &[Workspace],
        (before, ops, next): (Option<usize>, std::ops::Range<usize>, Option<usize>),
    ) -> Result<()> {
        let (plan, w) = (self.plan, self.a.weights);
        if let Some(f) = before {
            forward_op(plan, w, shard, f, rows, mode, Half::Finish(&shared[f]))?;
        }
        for k in ops {
            forward_op(plan, w, shard, k, rows, mode, Half::Whole)?;
        }
        match next {
            Some(r) => with_partial(shard, rows.part, |shard, p| {
                forward_op(plan, w, shard, r, rows, mode, Half::Partial(p, &shared[r]))
            }),
            None => Ok(()),
        }
    }

    /// One part's backward pass from op `top - 1` down to reduction `next` (exclusive; to
    /// the first op without one), then `next`'s first half; parameter gradients into `g`
    /// (added after the shard's first part).
    fn backward_segment(
        &self,
        shard: &mut Shard,
        g: &mut [f32],
        rows: Rows<'_>,
        mode: Mode,
        shared: &[Workspace],
        (top, next): (usize, Option<usize>),
    ) -> Result<()> {
        let (plan, w) = (self.plan, self.a.weights);
        let accumulate = (rows.part > 0, mode);
        let stop = next.map_or(0, |q| q + 1);
        for k in (stop..top).rev().filter(|&k| plan.ops[k].backward) {
            backward_op(plan, w, g, shard, k, rows, accumulate, Half::Whole)?;
        }
        match next {
            Some(q) => with_partial(shard, rows.part, |shard, p| {
                backward_op(plan, w, g, shard, q, rows, accumulate, Half::Partial(p, &shared[q]))
            }),
            None => Ok(()),
        }
    }

    /// Runs `f` on every part: shards in parallel, each its parts in order. Returns each
    /// shard's results added in part order.
    fn each_part(
        &self,
        shards: &mut [Shard],
        arenas: &mut [Option<&mut [f32]>],
        f: &PartFn<'_>,
    ) -> Result<Vec<(f64, Counts)>> {
        match self.pool {
            Some(pool) => pool.install(|| self.each_part_here(shards, arenas, f)),
            None => self.each_part_here(shards, arenas, f),
        }
    }

    /// [`Run::each_part`] in the current pool.
    fn each_part_here(
        &self,
        shards: &mut [Shard],
        arenas: &mut [Option<&mut [f32]>],
        f: &PartFn<'_>,
    ) -> Result<Vec<(f64, Counts)>> {
        let in_len = self.plan.len[0];
        let results: Vec<Result<(f64, Counts)>> = shards
            .par_iter_mut()
            .zip(arenas.par_iter_mut())
            .zip(self.spans.par_iter())
            .map(|((shard, g), span)| {
                shard.with_thread_buffers(self.plan, |shard| {
                    let (mut loss, mut counts) = (0f64, Counts::default());
                    for p in 0..span.parts() {
                        let lo = p * span.part;
                        let m = span.part.min(span.n - lo);
                        let at = span.lo + lo;
                        let rows = Rows { x: &self.x[at * in_len..(at + m) * in_len], lo, m, part: p };
                        let mode = Mode { first_sample: self.first_sample + at, ..self.a.mode };
                        let (l, c) = f(shard, g.as_deref_mut(), rows, mode)?;
                        loss += l;
                        counts = counts + c;
                    }
                    Ok((loss, counts))
                })
            })
            .collect();
        results.into_iter().collect()
    }

    /// Every part's partial, in part order (shards in order, each its parts in order).
    fn partials<'s>(shards: &'s [Shard], spans: &[Span]) -> Vec<&'s Partial> {
        shards.iter().zip(spans).flat_map(|(shard, span)| shard.partials[..span.parts()].iter()).collect()
    }
}

/// Runs `f` with part `part`'s partial taken out of the shard (so that `f` can run an op
/// on the shard that writes it).
fn with_partial(shard: &mut Shard, part: usize, f: impl FnOnce(&mut Shard, &mut Partial) -> Result<()>) -> Result<()> {
    let mut partial = std::mem::take(&mut shard.partials[part]);
    let r = f(shard, &mut partial);
    shard.partials[part] = partial;
    r
}

//! The values of a coupled plan that live within one part's run through one segment, which
//! get buffers of one part instead of the whole shard's batch.
//!
//! A plan whose ops reduce over the batch runs in segments between its reductions
//! ([`super::executor::coupled`]): every part through a segment, the reduction, every part
//! through the next. So its buffers hold all of a shard's parts, and a value written in one
//! segment and read in the next waits in memory. But many values never leave one part's run
//! through one segment: a convolution's output gradient, written by the normalization after
//! it and read by the convolution's backward pass right after; a normalization's output
//! that only the convolution after it reads. Each of those gets one part's buffer that
//! every part reuses, so it stays in cache; a batch-sized buffer would send each part's
//! copy out to memory (after reading its lines in to write them) for nothing.
//!
//! A reduction's output that the segment's backward pass reads again (a convolution's
//! filter gradient reads its input) is recomputed there, part by part, from the op's inputs
//! and the batch's statistics ([`Reduction::recomputable`]): one pass over a part in cache
//! instead of the batch's values written to memory and read back.
//!
//! Segments: with the plan's reductions `r_0 < r_1 < ...`, an op `k` that is not one runs
//! in segment `s(k)`, the number of reductions before it, forward and backward. A reduction
//! `r_i`'s forward first half runs at the end of segment `i` and its second half at the start
//! of segment `i + 1`; backward, its first half at the end of segment `i + 1` and its second
//! at the start of segment `i`. The last segment runs each part's forward, loss and backward
//! back to back.

use super::plan::PlanOp;
use super::reduction::Reduction;

/// Which values and gradients have one-part buffers, and which reductions recompute their
/// output.
#[derive(Debug, Clone, Default)]
pub(crate) struct PartLocal {
    /// Per node (a buffer's root): the segment within one part's run of which its value
    /// lives, if it does.
    pub acts: Vec<Option<usize>>,
    /// Per node: the same for its gradient.
    pub grads: Vec<Option<usize>>,
    /// Per op: a reduction whose output (one part's buffer) its backward segment reads, so
    /// that each part's backward pass through the segment first recomputes it.
    pub recompute: Vec<bool>,
}

/// The part-local values of a coupled plan's `ops` over `n` nodes; never the `output` or a
/// value or gradient in `asked` (read after the run). Nothing is part-local where a
/// reduction does not run backward (its segments would not mirror the forward's).
pub(crate) fn part_local(ops: &[PlanOp], n: usize, output: usize, asked: &[usize]) -> PartLocal {
    let mut local = PartLocal { acts: vec![None; n], grads: vec![None; n], recompute: vec![false; ops.len()] };
    let red: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].op.reduction().is_some()).collect();
    if red.is_empty() || red.iter().any(|&r| !ops[r].backward) {
        return local;
    }
    let last = red.len();
    let before = |k: usize| red.partition_point(|&r| r < k);
    let reduction = |k: usize| -> Option<(usize, &dyn Reduction)> {
        let i = red.binary_search(&k).ok()?;
        Some((i, ops[k].op.reduction()?))
    };
    let mut producer = vec![None; n];
    let mut consumers: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for (k, op) in ops.iter().enumerate() {
        producer[op.output] = Some(k);
        for (q, &j) in op.inputs.iter().enumerate() {
            consumers[j].push((k, q));
        }
    }
    for v in 0..n {
        let Some(p) = producer[v] else { continue };
        if v == output || asked.contains(&v) || consumers[v].is_empty() {
            continue;
        }
        // The value: read only by ops (not reductions) of the segment that writes it. A
        // reduction's output is recomputed for the segment's backward pass (unless that
        // pass follows each part's forward: the last segment); another op's would have to
        // be, so only the last segment's qualify.
        let written = reduction(p).map_or(before(p), |(i, _)| i + 1);
        let read_there = consumers[v].iter().all(|&(k, _)| reduction(k).is_none() && before(k) == written);
        let rewritable = match reduction(p) {
            Some((_, r)) => r.recomputable(),
            None => written == last,
        };
        if read_there && rewritable {
            local.acts[v] = Some(written);
            local.recompute[p] = reduction(p).is_some() && written != last;
        }
        // The gradient: written by the consumers' backward passes (a reduction writes an
        // input's in its second half or its first, by `dx_in_finish`) and read by the
        // producer's, which must not be a reduction (that reads it in both halves).
        if reduction(p).is_some() {
            continue;
        }
        let segment = before(p);
        let writes_there = consumers[v].iter().filter(|&&(k, q)| ops[k].backward && ops[k].needs_dx[q]).all(
            |&(k, q)| match reduction(k) {
                Some((j, r)) => segment == if r.dx_in_finish(q) { j } else { j + 1 },
                None => segment == before(k),
            },
        );
        local.grads[v] = writes_there.then_some(segment);
    }
    local
}

#[cfg(test)]
mod tests {
    use crate::graph::plan::{Plan, PlanOptions};
    use crate::layers::{Activation, ActivationLayer, Add, BatchNormalization, Conv2D, Dense, GlobalAveragePooling2D};
    use crate::losses::Loss;
    use crate::optimizers::Sgd;
    use crate::{Apply, Input, Model, Node};

    /// A residual network as the mnist example's, small: normalizations with and without a
    /// ReLU after them, identity and projection joins.
    fn residual(part_buffers: bool, threads: usize) -> Model {
        let conv = |f: usize, s: usize| Conv2D::new(f, (3, 3)).strides((s, s)).padding("same").use_bias(false);
        let bn = |x: &Node| BatchNormalization::new().apply(x);
        let relu = |x: &Node| ActivationLayer::new(Activation::Relu).apply(x);
        let x = Input::new(&[6, 6, 2]);
        let h = relu(&bn(&conv(3, 1).apply(&x)));
        let r = bn(&conv(3, 1).apply(&relu(&bn(&conv(3, 1).apply(&h)))));
        let h = relu(&Add::new().apply_to(&[&h, &r]));
        let r = bn(&conv(4, 1).apply(&relu(&bn(&conv(4, 2).apply(&h)))));
        let h = relu(&Add::new().apply_to(&[&r, &bn(&conv(4, 2).apply(&h))]));
        let y = Dense::new(3).apply(&GlobalAveragePooling2D::new().apply(&h));
        let mut m = Model::new(&x, &y).unwrap();
        m.seed(5).set_threads(threads).unwrap();
        m.compile(Sgd::new(), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[]).unwrap();
        let absorb = Loss::SparseCategoricalCrossentropy { from_logits: true }.absorbs();
        m.plan =
            Some(Plan::new(&m.graph, PlanOptions { part_buffers, ..PlanOptions::training(true, absorb) }).unwrap());
        m
    }

    /// One-part buffers (and the recomputed normalization outputs) change where values
    /// wait, never what is computed: three steps over a batch of nine parts give the same
    /// weights, moving statistics and losses, bit for bit, as batch-sized buffers.
    #[test]
    fn part_buffers_change_no_bit() {
        // 67 samples: 9 parts, in 8 shards (one of two parts).
        let n = 67;
        let x: Vec<f32> = (0..n * 72).map(|i| ((i * 37 % 101) as f32 - 50.0) / 40.0).collect();
        let labels: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
        for threads in [1, 2] {
            let mut runs = Vec::new();
            for part_buffers in [false, true] {
                let mut m = residual(part_buffers, threads);
                let plan = m.plan.as_ref().unwrap();
                let local = plan.acts.part.iter().chain(&plan.grads.part).filter(|&&p| p).count();
                assert_eq!(local > 0, part_buffers, "one-part buffers planned: {local}");
                assert_eq!(plan.recompute.iter().any(|&r| r), part_buffers, "a recomputed output");
                let losses: Vec<u32> = (0..3).map(|_| m.train_on_batch(&x, &labels).unwrap().loss.to_bits()).collect();
                let values: Vec<u32> = m.params().values().iter().map(|v| v.to_bits()).collect();
                runs.push((losses, values));
            }
            assert_eq!(runs[0].0, runs[1].0, "losses, {threads} threads");
            let differ = runs[0].1.iter().zip(&runs[1].1).filter(|(a, b)| a != b).count();
            assert_eq!(differ, 0, "weights that differ, {threads} threads");
        }
    }
}

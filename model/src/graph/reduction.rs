//! Ops whose passes reduce over the whole batch: batch normalization in training (the
//! batch's moments forward, the two sums of its backward pass). Such an op splits each pass
//! in two halves around its reduction, so that a batch still runs in parts of
//! [`super::plan::COUPLED_PART`] samples, each part's activations in cache between ops: the first
//! half runs on every part (each writing its own [`Partial`]), the reduction once over all
//! the parts' partials in part order, then the second half on every part
//! ([`super::executor::coupled`] runs them). The parts are fixed by the batch size, and so is the
//! order of every sum: results do not depend on the thread count.

use crate::error::Result;
use crate::layers::{Backward, Forward, Workspace};
use crate::params::Weights;
use ember_kernels::batchnorm::PartMoments;

/// One part's contribution to a reduction.
#[derive(Debug, Clone, Default)]
pub(crate) struct Partial {
    /// The part's rows (samples × positions).
    pub rows: usize,
    /// Forward: per normalization inside the op, the part's moments.
    pub moments: Vec<PartMoments>,
    /// Backward: per normalization inside the op, the part's `[Σ d | Σ d x̂]`.
    pub sums: Vec<Vec<f64>>,
}

impl Partial {
    /// Appends this partial's values to `out`, for another process's reduction: `[rows,
    /// moments, (rows, c, shift[c], sums[2c]) per moments, sums, (len, values) per sums]`
    /// (counts are exact in f64, shifts widen exactly).
    pub(crate) fn encode(&self, out: &mut Vec<f64>) {
        out.extend([self.rows as f64, self.moments.len() as f64]);
        for m in &self.moments {
            out.extend([m.rows() as f64, m.channels() as f64]);
            out.extend(m.shift().iter().map(|&v| f64::from(v)));
            out.extend_from_slice(m.sums());
        }
        out.push(self.sums.len() as f64);
        for s in &self.sums {
            out.push(s.len() as f64);
            out.extend_from_slice(s);
        }
    }

    /// The partial at the front of `values` (as [`Partial::encode`] wrote it) and what
    /// follows it; `None` where the values are not one.
    pub(crate) fn decode(values: &[f64]) -> Option<(Partial, &[f64])> {
        fn count(v: &mut &[f64]) -> Option<usize> {
            let (&first, rest) = v.split_first()?;
            *v = rest;
            // Whole and below 2^53, where f64 counts are exact.
            (first >= 0.0 && first.fract() == 0.0 && first < 9.0e15).then_some(first as usize)
        }
        fn take<'v>(v: &mut &'v [f64], n: usize) -> Option<&'v [f64]> {
            let (head, rest) = (v.get(..n)?, v.get(n..)?);
            *v = rest;
            Some(head)
        }
        let mut v = values;
        let rows = count(&mut v)?;
        let mut moments = Vec::new();
        for _ in 0..count(&mut v)? {
            let (part_rows, c) = (count(&mut v)?, count(&mut v)?);
            let shift = take(&mut v, c)?.iter().map(|&x| x as f32).collect();
            let sums = take(&mut v, 2 * c)?.to_vec();
            moments.push(PartMoments::from_values(part_rows, shift, sums).ok()?);
        }
        let mut sums = Vec::new();
        for _ in 0..count(&mut v)? {
            let n = count(&mut v)?;
            sums.push(take(&mut v, n)?.to_vec());
        }
        Some((Partial { rows, moments, sums }, v))
    }
}

/// The halves of an op's passes around its batch reductions. `shared` is the op's
/// workspace for the whole batch (the reduced statistics, read by every part's second half,
/// and by the moving statistics' update); each half's own `ws` is the part's.
pub(crate) trait Reduction: Send + Sync {
    /// Forward, first half, on one part: its partial statistics.
    fn forward_partial(&self, f: Forward<'_>, partial: &mut Partial) -> Result<()>;
    /// Forward, the reduction: the batch's statistics from all `parts`, in part order.
    fn forward_reduce(
        &self,
        weights: Weights<'_>,
        training: bool,
        parts: &[&Partial],
        shared: &mut Workspace,
    ) -> Result<()>;
    /// Forward, second half, on one part: its output.
    fn forward_finish(&self, f: Forward<'_>, shared: &Workspace) -> Result<()>;
    /// Backward, first half, on one part: its partial sums, its share of the parameters'
    /// gradients, and the gradients of the inputs for which [`Reduction::dx_in_finish`] is
    /// false.
    fn backward_partial(&self, b: Backward<'_, '_>, shared: &Workspace, partial: &mut Partial) -> Result<()>;
    /// Backward, the reduction: the batch's sums from all `parts`, in part order.
    fn backward_reduce(&self, parts: &[&Partial], shared: &mut Workspace) -> Result<()>;
    /// Backward, second half, on one part: the gradients of the inputs for which
    /// [`Reduction::dx_in_finish`] is true.
    fn backward_finish(&self, b: Backward<'_, '_>, shared: &Workspace) -> Result<()>;
    /// Whether input `q`'s gradient is written by the second half of the backward pass
    /// (else by the first).
    fn dx_in_finish(&self, q: usize) -> bool;
    /// Whether the second half of the backward pass is handed input `q`'s gradient to read
    /// (as the first half left it: nothing writes it in between), where the first half
    /// kept something there.
    fn finish_reads_dx(&self, _q: usize) -> bool {
        false
    }
    /// Whether the executor may run [`Reduction::forward_finish`] on a part again to
    /// rewrite the op's output (it computes from the op's inputs and `shared` alone), and
    /// [`Reduction::backward_finish`] never reads the output: then the output can live in
    /// one part's buffer ([`super::segments`]).
    fn recomputable(&self) -> bool {
        false
    }
}

//! Rule: an `Add` whose only consumer is a ReLU `Activation` layer, with inputs that come
//! straight out of `BatchNormalization` layers read by nothing else (a residual block's
//! join: `relu(bn(conv(r)) + h)`, or both sides normalized where the shortcut is a
//! projection), runs as one op. The forward computes each normalization's statistics, then
//! writes `max(Σ (x s + t or x), 0)` in one pass (`ember_kernels::batchnorm::batch_norm_add`):
//! the normalized values are never written or read back. The backward writes the join's
//! gradient once, straight into a plain input's gradient where there is one, and runs each
//! normalization's backward pass on it: the copy for the other input disappears. In a batch
//! run in parts, that gradient also carries the join's gradient from the backward pass's
//! first half to its second ([`Reduction::finish_reads_dx`]), instead of a copy of its own.
//!
//! Per identity block of the residual network that is four passes over the activation of
//! the twenty-odd that the block's forward and backward make. The arithmetic is the unfused
//! ops', so fused and unfused models compute the same values (the tests check).
//!
//! The normalizations come before the `Add` in the graph, so the planner asks
//! [`absorbed`] first and skips them; the op runs where the `Add` stands, when all of its
//! inputs exist. Not in plans that fold batch normalization into convolutions (inference),
//! where the fold does better.

use crate::error::{Error, Result};
use crate::graph::plan::{Op, Planned};
use crate::graph::reduction::{Partial, Reduction};
use crate::graph::Graph;
use crate::layers::{copy, Add, Backward, BatchNormalization, Forward, Layer, Workspace};
use crate::params::{ParamStore, Weights};
use ember_kernels::activation::{act_backward_to, Act};
use ember_kernels::batchnorm::{batch_norm_add, AddTerm};
use ember_kernels::elementwise::accumulate;
use ember_kernels::Ctx;
use std::sync::Arc;

/// The inputs of the `Add` at node `i` that the rule would take into it: batch
/// normalizations whose only consumer is the `Add`, when the `Add`'s only consumer is a
/// ReLU. Empty where the rule does not fire.
pub(crate) fn absorbed(g: &Graph, consumers: &[Vec<usize>], i: usize) -> Vec<usize> {
    let is_add = g.layer(i).is_some_and(|l| l.as_any().downcast_ref::<Add>().is_some());
    if !is_add || super::relu_consumer(g, consumers, i).is_none() {
        return Vec::new();
    }
    g.nodes[i]
        .inputs
        .iter()
        .copied()
        .filter(|&j| {
            consumers[j] == [i] && g.layer(j).is_some_and(|l| l.as_any().downcast_ref::<BatchNormalization>().is_some())
        })
        .collect()
}

/// The fused op for the `Add` at node `i`, taking in the normalizations marked in
/// `deferred` (by the planner, from [`absorbed`]); `None` where none of its inputs is.
pub(crate) fn rule(g: &Graph, consumers: &[Vec<usize>], i: usize, deferred: &[bool]) -> Option<Planned> {
    let add = g.layer(i)?.as_any().downcast_ref::<Add>()?;
    let (r, relu) = super::relu_consumer(g, consumers, i)?;
    let taken = |j: usize| deferred[j].then(|| g.layer(j)?.as_any().downcast_ref::<BatchNormalization>()).flatten();
    let norms: Vec<Option<BatchNormalization>> = g.nodes[i].inputs.iter().map(|&j| taken(j).cloned()).collect();
    if norms.iter().all(Option::is_none) {
        return None;
    }
    let inputs = g.nodes[i].inputs.iter().map(|&j| if taken(j).is_some() { g.nodes[j].inputs[0] } else { j }).collect();
    let mut covers: Vec<usize> = g.nodes[i].inputs.iter().copied().filter(|&j| taken(j).is_some()).collect();
    covers.extend([i, r]);
    let has_params = norms.iter().flatten().any(|bn| !bn.params().is_empty());
    let op = BnAddReluOp { add: add.clone(), relu, norms };
    Some(Planned { op: Arc::new(op), inputs, covers, has_params })
}

/// `y = relu(Σ_q (bn_q(x_q) or x_q))`.
struct BnAddReluOp {
    add: Add,
    relu: String,
    /// Per input of the sum: the normalization it passes through first, if any.
    norms: Vec<Option<BatchNormalization>>,
}

impl BnAddReluOp {
    /// The normalizations, each with its index among them (its workspace in `ws.inner`).
    fn indexed(&self) -> impl Iterator<Item = (usize, usize, &BatchNormalization)> {
        self.norms
            .iter()
            .enumerate()
            .filter_map(|(q, bn)| bn.as_ref().map(|bn| (q, bn)))
            .enumerate()
            .map(|(k, (q, bn))| (k, q, bn))
    }

    /// `y = relu(Σ terms)`: the inputs `x`, each normalized with the map its
    /// normalization's statistics left in `stats[k].kept` (`k` its index among them).
    fn join(&self, x: &[&[f32]], stats: &[Workspace], y: &mut [f32]) -> Result<()> {
        let mut terms: Vec<AddTerm<'_>> = x.iter().map(|&x| AddTerm { x, affine: None }).collect();
        let mut channels = 0;
        for (k, q, bn) in self.indexed() {
            terms[q].affine = Some(bn.scale_shift(&stats[k].kept));
            channels = bn.channels();
        }
        batch_norm_add(&Ctx::new(), &terms, channels, true, y)?;
        Ok(())
    }

    /// The plain input whose gradient holds the join's gradient itself: the first one asked
    /// for that no other consumer has written (`b.add_to_dx` false) and that is no other
    /// input too (its buffer would take that input's share as well).
    fn home(&self, b: &Backward<'_, '_>) -> Option<usize> {
        let adds = |q: usize| b.add_to_dx.get(q).copied().unwrap_or(false);
        let same = |q: usize, r: usize| std::ptr::eq(b.x[q], b.x[r]);
        (0..b.dx.len()).find(|&q| {
            self.norms[q].is_none() && b.dx[q].is_some() && !adds(q) && !(0..b.x.len()).any(|r| r != q && same(q, r))
        })
    }

    /// The join's gradient `d = dy · [y > 0]` (exactly where the sum was positive) into
    /// `d`, copied into every other plain input's gradient in `outs` that is asked for, or
    /// added where it holds another consumer's (`adds`).
    fn join_gradient(
        &self,
        (y, dy): (&[f32], &[f32]),
        d: &mut [f32],
        outs: &mut [Option<&mut [f32]>],
        adds: &[bool],
    ) -> Result<()> {
        let ctx = Ctx::new();
        act_backward_to(&ctx, Act::Relu, y, y, dy, d)?;
        for (q, out) in outs.iter_mut().enumerate() {
            if let (None, Some(out)) = (&self.norms[q], out) {
                if adds.get(q).copied().unwrap_or(false) {
                    accumulate(&ctx, out, d)?;
                } else {
                    copy(d, out);
                }
            }
        }
        Ok(())
    }

    /// Runs `f` on each normalization (its index among them, the layer) with the arguments
    /// of its own backward pass inside the join `b`: its input `x[q]`, the join's gradient
    /// `d` as its output's, its input's gradient (taken from `b.dx[q]` with `with_dx`),
    /// and its workspace `inner[k]`.
    fn each_norm(
        &self,
        b: &mut Backward<'_, '_>,
        d: &mut [f32],
        inner: &mut [Workspace],
        with_dx: bool,
        mut f: impl FnMut(usize, &BatchNormalization, Backward<'_, '_>) -> Result<()>,
    ) -> Result<()> {
        for (k, q, bn) in self.indexed() {
            let xs = [b.x[q]];
            let mut dx = [if with_dx { b.dx[q].take() } else { None }];
            let nb = Backward {
                weights: b.weights,
                grads: &mut *b.grads,
                accumulate: b.accumulate,
                weight_grads: b.weight_grads,
                x: &xs,
                y: &[],
                dy: &mut *d,
                dx: &mut dx,
                add_to_dx: &[],
                n: b.n,
                ws: &mut inner[k],
                mode: b.mode,
            };
            f(k, bn, nb)?;
        }
        Ok(())
    }
}

impl Op for BnAddReluOp {
    fn describe(&self) -> String {
        let norms: Vec<&str> = self.norms.iter().flatten().map(|bn| bn.name()).collect();
        format!("{} + {} + {} (fused batch norm+add+relu)", norms.join(" + "), self.add.name(), self.relu)
    }

    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let Forward { weights, x, y, ws, mode, .. } = f;
        ws.inner.resize_with(self.norms.iter().flatten().count(), Workspace::default);
        for (k, q, bn) in self.indexed() {
            bn.statistics(weights, x[q], mode.training, &mut ws.inner[k].kept)?;
        }
        self.join(x, &ws.inner, y)
    }

    fn backward(&self, mut b: Backward<'_, '_>) -> Result<()> {
        // The join's gradient in a plain input's gradient when one can hold it (no copy for
        // it), else in scratch.
        let home = self.home(&b);
        let (mut own, mut inner) = (std::mem::take(&mut b.ws.scratch), std::mem::take(&mut b.ws.inner));
        let d: &mut [f32] = match home.and_then(|q| b.dx[q].take()) {
            Some(d) => d,
            None => {
                own.resize(b.dy.len(), 0.0);
                &mut own[..b.dy.len()]
            }
        };
        let r = self
            .join_gradient((b.y, b.dy), d, b.dx, b.add_to_dx)
            .and_then(|()| self.each_norm(&mut b, d, &mut inner, true, |_, bn, nb| bn.backward_then(nb, false)));
        (b.ws.scratch, b.ws.inner) = (own, inner);
        r
    }

    fn update_state(&self, ws: &Workspace, store: &mut ParamStore) -> Result<()> {
        for (k, _, bn) in self.indexed() {
            if let Some(inner) = ws.inner.get(k) {
                bn.update_state(inner, store)?;
            }
        }
        Ok(())
    }

    fn reduction(&self) -> Option<&dyn Reduction> {
        Some(self)
    }

    /// A plain input's gradient that another consumer wrote first takes the join's share
    /// added in place (no separate buffer to add afterwards).
    fn adds_input_gradient(&self) -> bool {
        true
    }
}

/// `shared.inner[k]`: normalization `k`'s statistics (`kept`) and backward means
/// (`scratch`). A part's join gradient waits from the backward's first half to its second
/// in the gradient of plain input `q` where `ws.indices` is `[q]` ([`BnAddReluOp::home`]),
/// else in its `ws.scratch`; its `ws.inner[k]` is normalization `k`'s scratch.
impl Reduction for BnAddReluOp {
    fn forward_partial(&self, f: Forward<'_>, partial: &mut Partial) -> Result<()> {
        let count = self.norms.iter().flatten().count();
        partial.moments.resize_with(count, Default::default);
        for (k, q, bn) in self.indexed() {
            partial.rows = f.x[q].len() / bn.channels().max(1);
            bn.part_moments(f.x[q], f.mode.training, &mut partial.moments[k])?;
        }
        Ok(())
    }

    fn forward_reduce(&self, w: Weights<'_>, training: bool, parts: &[&Partial], shared: &mut Workspace) -> Result<()> {
        shared.inner.resize_with(self.norms.iter().flatten().count(), Workspace::default);
        for (k, _, bn) in self.indexed() {
            let moments: Vec<_> = parts.iter().map(|p| &p.moments[k]).collect();
            bn.reduce_moments(w, training, &moments, &mut shared.inner[k].kept)?;
        }
        Ok(())
    }

    fn forward_finish(&self, f: Forward<'_>, shared: &Workspace) -> Result<()> {
        self.join(f.x, &shared.inner, f.y)
    }

    fn backward_partial(&self, mut b: Backward<'_, '_>, shared: &Workspace, partial: &mut Partial) -> Result<()> {
        let home = self.home(&b);
        let (mut own, mut inner) = (std::mem::take(&mut b.ws.scratch), std::mem::take(&mut b.ws.inner));
        b.ws.indices.clear();
        b.ws.indices.extend(home.map(|q| q as u32));
        let d: &mut [f32] = match home.and_then(|q| b.dx[q].take()) {
            Some(d) => d,
            None => {
                own.resize(b.dy.len(), 0.0);
                &mut own[..b.dy.len()]
            }
        };
        inner.resize_with(self.norms.iter().flatten().count(), Workspace::default);
        partial.sums.resize_with(inner.len(), Vec::new);
        let r = self.join_gradient((b.y, b.dy), d, b.dx, b.add_to_dx).and_then(|()| {
            self.each_norm(&mut b, d, &mut inner, false, |k, bn, mut nb| {
                partial.rows = nb.x[0].len() / bn.channels().max(1);
                bn.backward_sums(&mut nb, &shared.inner[k].kept, false, &mut partial.sums[k])
            })
        });
        (b.ws.scratch, b.ws.inner) = (own, inner);
        r
    }

    fn backward_reduce(&self, parts: &[&Partial], shared: &mut Workspace) -> Result<()> {
        for (k, _, bn) in self.indexed() {
            let sums: Vec<(usize, &[f64])> = parts.iter().map(|p| (p.rows, &p.sums[k][..])).collect();
            bn.means(&sums, &mut shared.inner[k].scratch);
        }
        Ok(())
    }

    fn backward_finish(&self, mut b: Backward<'_, '_>, shared: &Workspace) -> Result<()> {
        let (mut own, mut inner) = (std::mem::take(&mut b.ws.scratch), std::mem::take(&mut b.ws.inner));
        let home = b.ws.indices.first().map(|&q| q as usize);
        let d: Option<&mut [f32]> = match home {
            Some(q) => b.dx.get_mut(q).and_then(Option::take),
            None => own.get_mut(..b.dy.len()),
        };
        let r = match d {
            Some(d) => self.each_norm(&mut b, d, &mut inner, true, |k, bn, mut nb| {
                bn.backward_dx(&mut nb, &shared.inner[k].kept, &shared.inner[k].scratch, false)
            }),
            None => Err(Error::Config(format!(
                "{}: the join's gradient is missing in the backward's second half",
                self.add.name()
            ))),
        };
        (b.ws.scratch, b.ws.inner) = (own, inner);
        r
    }

    fn dx_in_finish(&self, q: usize) -> bool {
        self.norms[q].is_some()
    }

    /// A plain input's gradient may hold the join's gradient from the first half.
    fn finish_reads_dx(&self, q: usize) -> bool {
        self.norms[q].is_none()
    }
    /// The second forward half applies the kept statistics to the inputs; the second
    /// backward half reads the inputs and the gradients.
    fn recomputable(&self) -> bool {
        true
    }
}

//! Rule: a `BatchNormalization` whose only consumer is a ReLU `Activation` layer runs as
//! one op (`ember_kernels::batchnorm` with `relu`): the forward writes `max(x s + t, 0)` in
//! the pass that normalizes, and the backward masks the ReLU's output gradient inside the
//! normalization's own two passes, recomputing the mask from the normalization's input.
//! The normalized value is never stored, and the ReLU's pass over memory each way is gone:
//! per conv → BN → ReLU block of a residual network, five of fourteen passes over the
//! activation. In inference plans a BN after a linear convolution is folded into it first
//! (`conv_bn_fold`, which takes the ReLU too); this rule fuses the others, with the moving
//! statistics.
//!
//! A normalization without the ReLU runs as the same op ([`alone`]): its passes split
//! around the batch reductions ([`Reduction`]) either way.

use crate::error::Result;
use crate::graph::plan::{Op, Planned};
use crate::graph::reduction::{Partial, Reduction};
use crate::graph::Graph;
use crate::layers::{Backward, BatchNormalization, Forward, Layer, Workspace};
use crate::params::{ParamStore, Weights};
use std::sync::Arc;

/// The fused op for the normalization at node `i`, if the pattern holds and the model's
/// fusion switch (`fuse`) is on.
pub(crate) fn rule(g: &Graph, consumers: &[Vec<usize>], i: usize, fuse: bool) -> Option<Planned> {
    if !fuse {
        return None;
    }
    let bn = g.layer(i)?.as_any().downcast_ref::<BatchNormalization>()?;
    let (r, relu) = super::relu_consumer(g, consumers, i)?;
    let op = BatchNormOp { bn: bn.clone(), relu: Some(relu) };
    let inputs = g.nodes[i].inputs.clone();
    Some(Planned { op: Arc::new(op), inputs, covers: vec![i, r], has_params: !bn.params().is_empty() })
}

/// The op for a normalization at node `i` on its own (no rule fired), if node `i` is one.
pub(crate) fn alone(g: &Graph, i: usize) -> Option<Planned> {
    let bn = g.layer(i)?.as_any().downcast_ref::<BatchNormalization>()?;
    let op = BatchNormOp { bn: bn.clone(), relu: None };
    let inputs = g.nodes[i].inputs.clone();
    Some(Planned { op: Arc::new(op), inputs, covers: vec![i], has_params: !bn.params().is_empty() })
}

/// `y = batch_norm(x)`, or `relu(batch_norm(x))` in one pass each way.
struct BatchNormOp {
    bn: BatchNormalization,
    /// The fused ReLU's layer name.
    relu: Option<String>,
}

impl Op for BatchNormOp {
    fn describe(&self) -> String {
        match &self.relu {
            Some(r) => format!("{} + {r} (fused batch norm+relu)", self.bn.name()),
            None => format!("{} ({})", self.bn.name(), self.bn.class_name()),
        }
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        self.bn.forward_then(f, self.relu.is_some())
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        self.bn.backward_then(b, self.relu.is_some())
    }
    fn update_state(&self, ws: &Workspace, store: &mut ParamStore) -> Result<()> {
        self.bn.update_state(ws, store)
    }
    fn reduction(&self) -> Option<&dyn Reduction> {
        Some(self)
    }
}

/// `shared.kept`: the batch's statistics (as the whole-batch forward leaves them);
/// `shared.scratch`: the backward's means.
impl Reduction for BatchNormOp {
    fn forward_partial(&self, f: Forward<'_>, partial: &mut Partial) -> Result<()> {
        partial.rows = f.x[0].len() / self.bn.channels().max(1);
        partial.moments.resize_with(1, Default::default);
        self.bn.part_moments(f.x[0], f.mode.training, &mut partial.moments[0])
    }
    fn forward_reduce(&self, w: Weights<'_>, training: bool, parts: &[&Partial], shared: &mut Workspace) -> Result<()> {
        let moments: Vec<_> = parts.iter().map(|p| &p.moments[0]).collect();
        self.bn.reduce_moments(w, training, &moments, &mut shared.kept)
    }
    fn forward_finish(&self, f: Forward<'_>, shared: &Workspace) -> Result<()> {
        self.bn.apply(&shared.kept, f.x[0], self.relu.is_some(), f.y)
    }
    fn backward_partial(&self, mut b: Backward<'_, '_>, shared: &Workspace, partial: &mut Partial) -> Result<()> {
        partial.rows = b.x[0].len() / self.bn.channels().max(1);
        partial.sums.resize_with(1, Vec::new);
        self.bn.backward_sums(&mut b, &shared.kept, self.relu.is_some(), &mut partial.sums[0])
    }
    fn backward_reduce(&self, parts: &[&Partial], shared: &mut Workspace) -> Result<()> {
        let sums: Vec<(usize, &[f64])> = parts.iter().map(|p| (p.rows, &p.sums[0][..])).collect();
        self.bn.means(&sums, &mut shared.scratch);
        Ok(())
    }
    fn backward_finish(&self, mut b: Backward<'_, '_>, shared: &Workspace) -> Result<()> {
        self.bn.backward_dx(&mut b, &shared.kept, &shared.scratch, self.relu.is_some())
    }
    fn dx_in_finish(&self, _q: usize) -> bool {
        true
    }
    /// The second forward half applies the kept statistics to the inputs; the second
    /// backward half reads the inputs and the gradients.
    fn recomputable(&self) -> bool {
        true
    }
}

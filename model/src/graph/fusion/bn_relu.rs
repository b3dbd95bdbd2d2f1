//! Rule: a `BatchNormalization` whose only consumer is a ReLU `Activation` layer runs as
//! one op (`ember_kernels::batchnorm` with `relu`): the forward writes `max(x s + t, 0)` in
//! the pass that normalizes, and the backward masks the ReLU's output gradient inside the
//! normalization's own two passes, recomputing the mask from the normalization's input.
//! The normalized value is never stored, and the ReLU's pass over memory each way is gone:
//! per conv → BN → ReLU block of a residual network, five of fourteen passes over the
//! activation. In inference plans a BN after a linear convolution is folded into it first
//! (`conv_bn_fold`, which takes the ReLU too); this rule fuses the others, with the moving
//! statistics.

use crate::error::Result;
use crate::graph::plan::{Op, Planned};
use crate::graph::Graph;
use crate::layers::{Backward, BatchNormalization, Forward, Layer, Workspace};
use crate::params::ParamStore;
use std::sync::Arc;

/// The fused op for the normalization at node `i`, if the pattern holds and the model's
/// fusion switch (`fuse`) is on.
pub(crate) fn rule(g: &Graph, consumers: &[Vec<usize>], i: usize, fuse: bool) -> Option<Planned> {
    if !fuse {
        return None;
    }
    let bn = g.layer(i)?.as_any().downcast_ref::<BatchNormalization>()?;
    let (r, relu) = super::relu_consumer(g, consumers, i)?;
    let op = BnReluOp { bn: bn.clone(), relu };
    let inputs = g.nodes[i].inputs.clone();
    Some(Planned { op: Arc::new(op), inputs, covers: vec![i, r], has_params: !bn.params().is_empty() })
}

/// `y = relu(batch_norm(x))` in one pass each way.
struct BnReluOp {
    bn: BatchNormalization,
    relu: String,
}

impl Op for BnReluOp {
    fn describe(&self) -> String {
        format!("{} + {} (fused batch norm+relu)", self.bn.name(), self.relu)
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        self.bn.forward_then(f, true)
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        self.bn.backward_then(b, true)
    }
    fn update_state(&self, ws: &Workspace, store: &mut ParamStore) -> Result<()> {
        self.bn.update_state(ws, store)
    }
}

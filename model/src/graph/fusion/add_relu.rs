//! Rule: an `Add` whose only consumer is a ReLU `Activation` layer (a residual block's
//! join) runs as one op: the forward writes `max(x₀ + x₁ + …, 0)` in one pass, and the
//! backward writes the ReLU's gradient once (from its output: `y > 0` exactly where the
//! sum is positive) and copies it to the other inputs. The sum is never stored; per join
//! the ReLU's pass each way disappears.

use crate::error::Result;
use crate::graph::plan::{Op, Planned};
use crate::graph::Graph;
use crate::layers::{Add, Backward, Forward, Layer};
use std::sync::Arc;

/// The fused op for the `Add` at node `i`, if the pattern holds and the model's fusion
/// switch (`fuse`) is on.
pub(crate) fn rule(g: &Graph, consumers: &[Vec<usize>], i: usize, fuse: bool) -> Option<Planned> {
    if !fuse {
        return None;
    }
    let add = g.layer(i)?.as_any().downcast_ref::<Add>()?;
    let (r, relu) = super::relu_consumer(g, consumers, i)?;
    let op = AddReluOp { add: add.clone(), relu };
    Some(Planned { op: Arc::new(op), inputs: g.nodes[i].inputs.clone(), covers: vec![i, r], has_params: false })
}

/// `y = relu(Σ x)` in one pass each way.
struct AddReluOp {
    add: Add,
    relu: String,
}

impl Op for AddReluOp {
    fn describe(&self) -> String {
        format!("{} + {} (fused add+relu)", self.add.name(), self.relu)
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        self.add.forward_then(f, true)
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        self.add.backward_then(b, true)
    }
}

//! Fusion rules: one file per rule, each a function that looks at the graph around a node
//! and returns the fused op, or `None`. A rule fires only where the values it swallows have
//! a single consumer (nothing else reads them), so fusing never changes what the rest of the
//! graph sees. The kernels of a fused op live in `ember_kernels` beside their references.

pub(crate) mod add_relu;
pub(crate) mod bn_add_relu;
pub(crate) mod bn_relu;
pub(crate) mod conv_bn_fold;
pub(crate) mod conv_relu_pool;
pub(crate) mod cross_entropy_logits;

use crate::graph::Graph;
use crate::layers::{Activation, ActivationLayer, Layer};

/// The node of the ReLU `Activation` layer that is node `i`'s only consumer, with its
/// name: the second half of every "X then ReLU" rule.
pub(crate) fn relu_consumer(g: &Graph, consumers: &[Vec<usize>], i: usize) -> Option<(usize, String)> {
    let &[r] = &consumers[i][..] else { return None };
    let relu = g.layer(r)?.as_any().downcast_ref::<ActivationLayer>()?;
    (relu.activation() == Activation::Relu).then(|| (r, relu.name().to_string()))
}

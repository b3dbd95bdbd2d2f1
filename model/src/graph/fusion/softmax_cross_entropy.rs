//! Rule: a model whose output layer ends in a softmax, trained with a cross-entropy on
//! probabilities, computes the loss from the logits instead (the op leaves the softmax out,
//! the loss applies it): stable, and the gradient is `p - onehot`. Fires only where the
//! output value has no consumer but the loss.

use crate::graph::Graph;
use crate::layers::Activation;

/// Whether the rule applies to `g`'s output.
pub(crate) fn rule(g: &Graph, consumers: &[Vec<usize>]) -> bool {
    let out = g.output();
    consumers[out].is_empty() && g.layer(out).is_some_and(|l| l.activation() == Activation::Softmax)
}

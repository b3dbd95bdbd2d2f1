//! Rule: a model whose output layer ends in the activation its loss pairs with (softmax for
//! the categorical cross-entropies, sigmoid for binary cross-entropy), trained on
//! probabilities, computes the loss from the logits instead: the op leaves the activation
//! out and the loss applies it (stable, and the gradient is `p - t`), as Keras does with the
//! logits it keeps on such outputs. Fires only where the output value has no consumer but
//! the loss.

use crate::graph::Graph;
use crate::layers::Activation;

/// Whether the rule applies to `g`'s output for a loss that absorbs `act`.
pub(crate) fn rule(g: &Graph, consumers: &[Vec<usize>], act: Activation) -> bool {
    let out = g.output();
    consumers[out].is_empty() && g.layer(out).is_some_and(|l| l.activation() == act)
}

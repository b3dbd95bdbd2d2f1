//! Losses and metrics. Sparse categorical cross-entropy on a softmax output is computed from
//! the logits (the softmax fused into the loss: stable, and its gradient is `p - onehot`).

use crate::error::{Error, Result};
use ember_kernels::elementwise::softmax_cross_entropy_sum;

/// A loss over `[n, classes]` outputs and integer labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Keras's `SparseCategoricalCrossentropy(from_logits)`: integer labels, the mean over
    /// the batch of `-log p[label]`. With `from_logits: false` the model's output is a
    /// probability distribution; a softmax at the end of the model is then fused into the
    /// loss during training.
    SparseCategoricalCrossentropy {
        /// Whether the model outputs logits rather than probabilities.
        from_logits: bool,
    },
}

impl Loss {
    /// Keras's `"sparse_categorical_crossentropy"` (probabilities).
    pub const SPARSE_CATEGORICAL_CROSSENTROPY: Loss = Loss::SparseCategoricalCrossentropy { from_logits: false };

    /// Keras's name.
    pub fn name(&self) -> &'static str {
        "sparse_categorical_crossentropy"
    }

    /// Whether the loss takes probabilities (so a trailing softmax may fuse into it).
    pub(crate) fn on_probabilities(&self) -> bool {
        let Loss::SparseCategoricalCrossentropy { from_logits } = *self;
        !from_logits
    }

    /// The loss of `out` (`[rows, classes]`) summed over the rows, and its gradient scaled
    /// by `grad_scale` in `dout`; `logits`: the model's softmax was fused into the loss.
    pub(crate) fn sum_and_grad(
        &self,
        out: &[f32],
        labels: &[u32],
        classes: usize,
        grad_scale: f32,
        dout: &mut [f32],
        logits: bool,
    ) -> Result<f64> {
        if logits || !self.on_probabilities() {
            sparse_ce_from_logits(out, labels, classes, grad_scale, dout)
        } else {
            sparse_ce_from_probs(out, labels, classes, grad_scale, dout)
        }
    }
}

/// A metric reported during training and evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// The fraction of samples whose largest output is the label.
    Accuracy,
}

/// Checks that every label is below `classes`.
pub(crate) fn check_labels(labels: &[u32], classes: usize) -> Result<()> {
    if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l as usize >= classes) {
        return Err(Error::Data(format!("label {l} of sample {i} is out of range for {classes} classes")));
    }
    Ok(())
}

/// Sparse categorical cross-entropy of `logits` (`[rows, classes]`) summed over the rows,
/// and its gradient scaled by `grad_scale`, `(softmax - onehot) · grad_scale`, in `dlogits`
/// (`grad_scale = 1 / batch` gives the gradient of the batch mean).
pub fn sparse_ce_from_logits(
    logits: &[f32],
    labels: &[u32],
    classes: usize,
    grad_scale: f32,
    dlogits: &mut [f32],
) -> Result<f64> {
    check_labels(labels, classes)?;
    Ok(softmax_cross_entropy_sum(logits, labels, classes, grad_scale, dlogits)?)
}

/// Probabilities are clipped to `[EPSILON, 1 - EPSILON]` before the logarithm, as Keras.
const EPSILON: f32 = 1e-7;

/// Sparse categorical cross-entropy of probabilities `probs` (`[rows, classes]`) summed
/// over the rows, and its gradient with respect to them scaled by `grad_scale`,
/// `-grad_scale / p[label]` at the label, in `dprobs`.
pub fn sparse_ce_from_probs(
    probs: &[f32],
    labels: &[u32],
    classes: usize,
    grad_scale: f32,
    dprobs: &mut [f32],
) -> Result<f64> {
    check_labels(labels, classes)?;
    if probs.len() != labels.len() * classes || dprobs.len() != probs.len() {
        return Err(Error::Data(format!(
            "{} outputs and {} gradients for {} labels of {classes} classes",
            probs.len(),
            dprobs.len(),
            labels.len()
        )));
    }
    let mut loss = 0.0f64;
    dprobs.fill(0.0);
    for (i, &l) in labels.iter().enumerate() {
        let p = probs[i * classes + l as usize];
        let pc = p.clamp(EPSILON, 1.0 - EPSILON);
        loss -= f64::from(pc.ln());
        if p == pc {
            dprobs[i * classes + l as usize] = -grad_scale / p;
        }
    }
    Ok(loss)
}

/// Number of rows of `out` (`[n, classes]`) whose largest value is at the label.
pub fn correct_predictions(out: &[f32], labels: &[u32], classes: usize) -> Result<usize> {
    if classes == 0 || labels.len().checked_mul(classes) != Some(out.len()) {
        return Err(Error::Data(format!("{} outputs for {} labels of {classes} classes", out.len(), labels.len())));
    }
    Ok(out.chunks_exact(classes).zip(labels).filter(|(row, &l)| crate::tensor::argmax(row) == l as usize).count())
}

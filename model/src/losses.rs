//! Losses, in Keras's formulas (the metrics are in [`crate::metrics`], re-exported here). A
//! cross-entropy on probabilities after the
//! activation it pairs with (softmax, sigmoid) is computed from the logits (the activation
//! fused into the loss, as Keras does: stable, and the gradient is `p - t`).

use crate::error::{Error, Result};
use crate::layers::Activation;
use crate::targets::Targets;
use ember_kernels::elementwise::softmax_cross_entropy_sum;

pub(crate) use crate::metrics::Counts;
pub use crate::metrics::{correct_predictions, in_top_k, Metric};

/// A loss over `[n, width]` outputs and their [`Targets`]: integer labels (from which the
/// dense targets are built: one-hot for the categorical losses and mean squared error, the
/// label itself for binary cross-entropy on one output) or dense `[n, width]` targets (soft
/// or one-hot class probabilities, 0 / 1 per output of a multi-label model, regression
/// values). Keras's formulas; every loss is the mean over the batch of the per-sample loss,
/// which for binary cross-entropy and mean squared error is itself a mean over the outputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    /// Keras's `SparseCategoricalCrossentropy(from_logits)`: `-log p[label]`; integer
    /// labels only (dense targets take [`Loss::CategoricalCrossentropy`]). With
    /// `from_logits: false` the model's output is a probability distribution; a softmax at
    /// the end of the model is then fused into the loss.
    SparseCategoricalCrossentropy {
        /// Whether the model outputs logits rather than probabilities.
        from_logits: bool,
    },
    /// Keras's `CategoricalCrossentropy(from_logits, label_smoothing)` against the dense
    /// targets (or the label's one-hot row), smoothed: `t = y (1 - ls) + ls / width`;
    /// `-Σ t log q` with
    /// `q = p / Σp` clipped to `[1e-7, 1 - 1e-7]` on probabilities.
    CategoricalCrossentropy {
        /// Whether the model outputs logits.
        from_logits: bool,
        /// Label smoothing in `[0, 1]`.
        label_smoothing: f32,
    },
    /// Keras's `BinaryCrossentropy(from_logits, label_smoothing)`, per output
    /// `-(t log p + (1 - t) log(1 - p))` with `p` clipped to `[1e-7, 1 - 1e-7]` (from logits
    /// the stable `max(z, 0) - z t + log(1 + e^-|z|)`), averaged over the outputs;
    /// `t = y (1 - ls) + ls / 2` for labels 0 / 1 on one output per sample, or dense targets
    /// `y` as wide as the output (a multi-label model). A sigmoid at the end of the model is
    /// fused into it, as Keras does.
    BinaryCrossentropy {
        /// Whether the model outputs logits.
        from_logits: bool,
        /// Label smoothing in `[0, 1]`.
        label_smoothing: f32,
    },
    /// Keras's `MeanSquaredError`: the mean over the outputs of `(p - t)²`, `t` the dense
    /// targets, or the label's one-hot row (the label itself on one output).
    MeanSquaredError,
}

/// Probabilities are clipped to `[EPSILON, 1 - EPSILON]` before the logarithm, as Keras.
const EPSILON: f32 = 1e-7;

impl Loss {
    /// Keras's `"sparse_categorical_crossentropy"` (probabilities).
    pub const SPARSE_CATEGORICAL_CROSSENTROPY: Loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    /// Keras's `"categorical_crossentropy"` (probabilities, no smoothing).
    pub const CATEGORICAL_CROSSENTROPY: Loss =
        Loss::CategoricalCrossentropy { from_logits: false, label_smoothing: 0.0 };
    /// Keras's `"binary_crossentropy"` (probabilities, no smoothing).
    pub const BINARY_CROSSENTROPY: Loss = Loss::BinaryCrossentropy { from_logits: false, label_smoothing: 0.0 };

    /// Keras's name.
    pub fn name(&self) -> &'static str {
        match self {
            Loss::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
            Loss::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            Loss::BinaryCrossentropy { .. } => "binary_crossentropy",
            Loss::MeanSquaredError => "mean_squared_error",
        }
    }

    /// The output activation this loss absorbs (computing from the logits instead) when it
    /// takes probabilities: softmax for the categorical losses, sigmoid for binary
    /// cross-entropy; `None` otherwise.
    pub(crate) fn absorbs(&self) -> Option<Activation> {
        match *self {
            Loss::SparseCategoricalCrossentropy { from_logits: false }
            | Loss::CategoricalCrossentropy { from_logits: false, .. } => Some(Activation::Softmax),
            Loss::BinaryCrossentropy { from_logits: false, .. } => Some(Activation::Sigmoid),
            _ => None,
        }
    }

    /// Checks the configuration (what depends on the targets is checked with them).
    pub(crate) fn check(&self) -> Result<()> {
        let ls = match *self {
            Loss::CategoricalCrossentropy { label_smoothing, .. }
            | Loss::BinaryCrossentropy { label_smoothing, .. } => label_smoothing,
            _ => 0.0,
        };
        if !(0.0..=1.0).contains(&ls) {
            return Err(Error::Config(format!("{}: label_smoothing {ls} is not in [0, 1]", self.name())));
        }
        Ok(())
    }

    /// Checks targets against this loss on outputs `width` wide.
    pub(crate) fn check_targets(&self, targets: Targets<'_>, width: usize) -> Result<()> {
        match (self, targets) {
            (Loss::BinaryCrossentropy { .. }, Targets::Labels(_)) if width != 1 => Err(Error::Data(format!(
                "binary_crossentropy on integer labels needs one output per sample (labels 0 / 1); the model has \
                 {width}: give dense targets [n, {width}] for a multi-label model"
            ))),
            (Loss::SparseCategoricalCrossentropy { .. }, Targets::Dense { width: w, .. }) => Err(Error::Data(format!(
                "sparse_categorical_crossentropy takes integer labels, not dense targets (width {w}): use \
                 categorical_crossentropy"
            ))),
            _ => targets.check(width, self.classes(width)),
        }
    }

    /// How many classes the labels may name for an output `width` wide (any label is a
    /// regression target for mean squared error on one output).
    pub(crate) fn classes(&self, width: usize) -> usize {
        match self {
            Loss::BinaryCrossentropy { .. } => 2,
            Loss::MeanSquaredError if width == 1 => usize::MAX,
            _ => width,
        }
    }

    /// The loss of `out` (`[rows, width]`) summed over the rows, and its gradient scaled by
    /// `grad_scale` in `dout`; `absorbed`: the activation [`Loss::absorbs`] was fused into
    /// the loss (the output holds logits).
    pub(crate) fn sum_and_grad(
        &self,
        out: &[f32],
        targets: Targets<'_>,
        width: usize,
        grad_scale: f32,
        dout: &mut [f32],
        absorbed: bool,
    ) -> Result<f64> {
        self.check_targets(targets, width)?;
        let n = targets.len();
        if out.len() != n * width || dout.len() != out.len() {
            return Err(Error::Data(format!("{} outputs for {n} samples' targets of width {width}", out.len())));
        }
        let logits = absorbed || matches!(self, Loss::CategoricalCrossentropy { from_logits: true, .. });
        // `y(row, j)`: the dense target, or the label's one-hot row (the label itself on one
        // output).
        let y = |row: usize, j: usize| match targets {
            Targets::Labels(l) if width == 1 => l[row] as f32,
            Targets::Labels(l) => f32::from(u8::from(j == l[row] as usize)),
            Targets::Dense { values, .. } => values[row * width + j],
        };
        match *self {
            Loss::SparseCategoricalCrossentropy { from_logits } => {
                let Targets::Labels(labels) = targets else {
                    return Err(Error::Data("sparse_categorical_crossentropy takes integer labels".into()));
                };
                if absorbed || from_logits {
                    sparse_ce_from_logits(out, labels, width, grad_scale, dout)
                } else {
                    sparse_ce_from_probs(out, labels, width, grad_scale, dout)
                }
            }
            Loss::CategoricalCrossentropy { label_smoothing, .. } => {
                let target =
                    |row: usize, j: usize| y(row, j) * (1.0 - label_smoothing) + label_smoothing / width as f32;
                Ok(categorical(out, width, &target, grad_scale, dout, logits))
            }
            Loss::BinaryCrossentropy { from_logits, label_smoothing } => {
                let t = |row: usize, j: usize| y(row, j) * (1.0 - label_smoothing) + 0.5 * label_smoothing;
                Ok(binary(out, width, &t, grad_scale, dout, absorbed || from_logits))
            }
            Loss::MeanSquaredError => {
                let mut loss = 0f64;
                for (r, (o, d)) in out.chunks_exact(width).zip(dout.chunks_exact_mut(width)).enumerate() {
                    let mut row = 0f64;
                    for (j, (&p, g)) in o.iter().zip(d.iter_mut()).enumerate() {
                        let t = y(r, j);
                        row += f64::from((p - t) * (p - t));
                        *g = 2.0 * (p - t) / width as f32 * grad_scale;
                    }
                    loss += row / width as f64;
                }
                Ok(loss)
            }
        }
    }

    /// The loss of a batch of outputs `out` (`[n, width]`; logits if `logits`, else what the
    /// model's output is) against `targets` (labels or dense), as Keras reports it (the batch
    /// mean), and its gradient with respect to `out`.
    pub fn mean_and_gradient<'a>(
        &self,
        out: &[f32],
        targets: impl Into<Targets<'a>>,
        width: usize,
        logits: bool,
    ) -> Result<(f32, Vec<f32>)> {
        let targets = targets.into();
        let n = targets.len().max(1);
        let mut grad = vec![0.0; out.len()];
        let sum = self.sum_and_grad(out, targets, width, 1.0 / n as f32, &mut grad, logits)?;
        Ok(((sum / n as f64) as f32, grad))
    }

    /// The accuracy counts of `out` (`[rows, width]`) against `targets`, Keras's accuracy
    /// for this loss: on one output (binary) the output past 0.5 (0 when it holds logits)
    /// against the target rounded at 0.5; for binary cross-entropy on wider outputs the
    /// same per output (Keras's `binary_accuracy`, each output judged); otherwise the
    /// largest output against the label, or against the largest dense target
    /// (`categorical_accuracy`).
    pub(crate) fn correct(&self, out: &[f32], targets: Targets<'_>, width: usize, logits: bool) -> Result<Counts> {
        let n = targets.len();
        if width == 0 || out.len() != n * width {
            return Err(Error::Data(format!("{} outputs for {n} samples' targets of width {width}", out.len())));
        }
        let binary = matches!(self, Loss::BinaryCrossentropy { .. });
        if width == 1 || binary {
            let cut =
                if logits || matches!(self, Loss::BinaryCrossentropy { from_logits: true, .. }) { 0.0 } else { 0.5 };
            let correct = match targets {
                Targets::Labels(l) => out.iter().zip(l).filter(|(&o, &l)| u32::from(o > cut) == l).count(),
                Targets::Dense { values, .. } => {
                    out.iter().zip(values).filter(|(&o, &t)| (o > cut) == (t > 0.5)).count()
                }
            };
            return Ok(Counts { correct, judged: out.len(), top_k: 0 });
        }
        let correct = match targets {
            Targets::Labels(l) => correct_predictions(out, l, width)?,
            Targets::Dense { values, .. } => out
                .chunks_exact(width)
                .zip(values.chunks_exact(width))
                .filter(|(o, t)| crate::tensor::argmax(o) == crate::tensor::argmax(t))
                .count(),
        };
        Ok(Counts { correct, judged: n, top_k: 0 })
    }
}

/// Categorical cross-entropy against soft targets `target(row, j)`: from logits `lse - Σ t z`
/// with gradient `softmax - t` (TensorFlow's `softmax_cross_entropy_with_logits` gradient,
/// exact when a row of targets sums to 1, and what Keras trains with when it does not); from
/// probabilities Keras's normalised and clipped form, with the gradient of what it computes.
fn categorical(
    out: &[f32],
    width: usize,
    target: &dyn Fn(usize, usize) -> f32,
    scale: f32,
    dout: &mut [f32],
    logits: bool,
) -> f64 {
    let mut loss = 0f64;
    for (r, (o, d)) in out.chunks_exact(width).zip(dout.chunks_exact_mut(width)).enumerate() {
        if logits {
            let m = o.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let sum: f32 = o.iter().map(|&z| (z - m).exp()).sum();
            let lse = m + sum.ln();
            for (j, (&z, g)) in o.iter().zip(d.iter_mut()).enumerate() {
                let t = target(r, j);
                loss += f64::from(t * (lse - z));
                *g = ((z - m).exp() / sum - t) * scale;
            }
        } else {
            let s: f32 = o.iter().sum();
            let mut kept = 0f32;
            for (j, (&p, g)) in o.iter().zip(d.iter_mut()).enumerate() {
                let t = target(r, j);
                let q = p / s;
                let qc = q.clamp(EPSILON, 1.0 - EPSILON);
                loss -= f64::from(t * qc.ln());
                *g = if q == qc {
                    kept += t;
                    -t / p * scale
                } else {
                    0.0
                };
            }
            d.iter_mut().for_each(|g| *g += kept / s * scale);
        }
    }
    loss
}

/// Binary cross-entropy of outputs `[rows, width]` against `t(row, j)`, each row's loss the
/// mean over its outputs.
fn binary(
    out: &[f32],
    width: usize,
    t: &dyn Fn(usize, usize) -> f32,
    scale: f32,
    dout: &mut [f32],
    logits: bool,
) -> f64 {
    let mut loss = 0f64;
    let scale = scale / width as f32;
    for (r, (o, d)) in out.chunks_exact(width).zip(dout.chunks_exact_mut(width)).enumerate() {
        let mut row = 0f64;
        for (j, (&o, g)) in o.iter().zip(d.iter_mut()).enumerate() {
            let t = t(r, j);
            if logits {
                row += f64::from(o.max(0.0) - o * t + (-o.abs()).exp().ln_1p());
                *g = (1.0 / (1.0 + (-o).exp()) - t) * scale;
            } else {
                let p = o.clamp(EPSILON, 1.0 - EPSILON);
                row -= f64::from(t * p.ln() + (1.0 - t) * (1.0 - p).ln());
                *g = if p == o { (-t / p + (1.0 - t) / (1.0 - p)) * scale } else { 0.0 };
            }
        }
        loss += row / width as f64;
    }
    loss
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

/// Sparse categorical cross-entropy of probabilities `probs` (`[rows, classes]`) summed
/// over the rows, as Keras computes it (`c = clip(p, 1e-7, 1 - 1e-7)`, then
/// `-log c[label] + log Σ c`: equal to `-log p[label]` for a distribution), and its gradient
/// with respect to them scaled by `grad_scale`, in `dprobs`.
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
    // Keras: `c = clip(p)`, then softmax cross-entropy of `log c`, which renormalises:
    // `-log c[label] + log Σ c`.
    let mut loss = 0.0f64;
    for ((row, d), &l) in probs.chunks_exact(classes).zip(dprobs.chunks_exact_mut(classes)).zip(labels) {
        let sum: f32 = row.iter().map(|p| p.clamp(EPSILON, 1.0 - EPSILON)).sum();
        let pl = row[l as usize];
        let cl = pl.clamp(EPSILON, 1.0 - EPSILON);
        loss += f64::from(sum.ln() - cl.ln());
        for (j, (&p, g)) in row.iter().zip(d.iter_mut()).enumerate() {
            let unclipped = p == p.clamp(EPSILON, 1.0 - EPSILON);
            let mut v = if unclipped { 1.0 / sum } else { 0.0 };
            if j == l as usize && unclipped {
                v -= 1.0 / p;
            }
            *g = v * grad_scale;
        }
    }
    Ok(loss)
}

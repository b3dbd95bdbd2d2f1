//! Metrics, in Keras's formulas (`keras.metrics`): what [`Metric`] a model reports, and the
//! counts behind them.

use crate::error::{Error, Result};
use crate::losses::check_labels;

/// A metric reported during training and evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// The fraction of samples whose largest output is the label.
    Accuracy,
    /// Keras's `SparseTopKCategoricalAccuracy(k)`: the fraction of samples whose label is
    /// among the `k` largest outputs (`tf.math.in_top_k`: fewer than `k` outputs are larger
    /// than the label's, so ties at the boundary count as in). Logged as
    /// `sparse_top_k_categorical_accuracy` (and `val_...`).
    SparseTopKCategoricalAccuracy {
        /// How many of the largest outputs count (Keras's default 5).
        k: usize,
    },
}

impl Metric {
    /// Keras's `SparseTopKCategoricalAccuracy()`: k = 5.
    pub const SPARSE_TOP_5: Metric = Metric::SparseTopKCategoricalAccuracy { k: 5 };
}

/// Counts behind the metrics of a batch (or part of one): correct predictions of the
/// `judged` made (one per sample, or one per output for a multi-label model), and samples
/// whose label is within the top k when a top-k metric was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counts {
    pub correct: usize,
    pub judged: usize,
    pub top_k: usize,
}

impl Counts {
    /// `correct / judged` (0 when nothing was judged).
    pub(crate) fn accuracy(&self) -> f32 {
        (self.correct as f64 / self.judged.max(1) as f64) as f32
    }
}

impl std::ops::Add for Counts {
    type Output = Counts;
    fn add(self, o: Counts) -> Counts {
        Counts { correct: self.correct + o.correct, judged: self.judged + o.judged, top_k: self.top_k + o.top_k }
    }
}

/// Rows of `out` (`[n, classes]`) whose label is in the top `k` (`tf.math.in_top_k`: fewer
/// than `k` outputs strictly larger than the label's; a NaN label output is never in).
pub fn in_top_k(out: &[f32], labels: &[u32], classes: usize, k: usize) -> Result<usize> {
    if classes == 0 || labels.len().checked_mul(classes) != Some(out.len()) {
        return Err(Error::Data(format!("{} outputs for {} labels of {classes} classes", out.len(), labels.len())));
    }
    check_labels(labels, classes)?;
    Ok(out
        .chunks_exact(classes)
        .zip(labels)
        .filter(|(row, &l)| {
            let v = row[l as usize];
            !v.is_nan() && row.iter().filter(|&&o| o > v).count() < k
        })
        .count())
}

/// Number of rows of `out` (`[n, classes]`) whose largest value is at the label.
pub fn correct_predictions(out: &[f32], labels: &[u32], classes: usize) -> Result<usize> {
    if classes == 0 || labels.len().checked_mul(classes) != Some(out.len()) {
        return Err(Error::Data(format!("{} outputs for {} labels of {classes} classes", out.len(), labels.len())));
    }
    Ok(out.chunks_exact(classes).zip(labels).filter(|(row, &l)| crate::tensor::argmax(row) == l as usize).count())
}

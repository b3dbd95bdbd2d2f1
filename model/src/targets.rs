//! What a model's outputs are scored against: one integer label per sample (Keras's sparse
//! form), or `width` floats per sample (one-hot or soft class probabilities, 0 / 1 per output
//! of a multi-label model, regression values).

use crate::error::{Error, Result};
use std::ops::Range;

/// The targets of `n` samples, borrowed: what `fit` reads from a [`crate::data::Dataset`] and
/// what [`crate::Model::train_on_batch`] and its siblings take (`&[u32]`, `&[u32; N]` and
/// `&Vec<u32>` convert into labels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Targets<'a> {
    /// One class index per sample.
    Labels(&'a [u32]),
    /// `width` floats per sample, row-major (`[n, width]`).
    Dense {
        /// `n * width` values.
        values: &'a [f32],
        /// Values per sample; the model's output width.
        width: usize,
    },
}

impl<'a> From<&'a [u32]> for Targets<'a> {
    fn from(labels: &'a [u32]) -> Self {
        Targets::Labels(labels)
    }
}

impl<'a> From<&'a Vec<u32>> for Targets<'a> {
    fn from(labels: &'a Vec<u32>) -> Self {
        Targets::Labels(labels)
    }
}

impl<'a, const N: usize> From<&'a [u32; N]> for Targets<'a> {
    fn from(labels: &'a [u32; N]) -> Self {
        Targets::Labels(labels)
    }
}

impl<'a> Targets<'a> {
    /// Dense targets, `values.len()` a multiple of `width` (checked).
    pub fn dense(values: &'a [f32], width: usize) -> Result<Self> {
        if width == 0 || !values.len().is_multiple_of(width) {
            return Err(Error::Data(format!("{} target values do not make rows of width {width}", values.len())));
        }
        Ok(Targets::Dense { values, width })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Targets::Labels(l) => l.len(),
            Targets::Dense { values, width } => values.len() / width.max(&1),
        }
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Samples `r` (in bounds: the caller checks).
    pub(crate) fn slice(&self, r: Range<usize>) -> Targets<'a> {
        match *self {
            Targets::Labels(l) => Targets::Labels(&l[r]),
            Targets::Dense { values, width } => {
                Targets::Dense { values: &values[r.start * width..r.end * width], width }
            }
        }
    }

    /// Checks the targets against a model output `width` wide whose labels may name
    /// `classes` classes.
    pub(crate) fn check(&self, width: usize, classes: usize) -> Result<()> {
        match *self {
            Targets::Labels(l) => crate::losses::check_labels(l, classes),
            Targets::Dense { values, width: w } => {
                if w != width {
                    return Err(Error::Data(format!("targets of width {w} for a model whose output is {width} wide")));
                }
                if !values.len().is_multiple_of(w.max(1)) {
                    return Err(Error::Data(format!("{} target values do not make rows of width {w}", values.len())));
                }
                Ok(())
            }
        }
    }

    /// Class labels for the top-k metric: the labels, or each dense row's largest value
    /// (Keras's `TopKCategoricalAccuracy` on one-hot targets).
    pub(crate) fn class_labels(&self) -> std::borrow::Cow<'a, [u32]> {
        match *self {
            Targets::Labels(l) => std::borrow::Cow::Borrowed(l),
            Targets::Dense { values, width } => {
                values.chunks_exact(width.max(1)).map(|r| crate::tensor::argmax(r) as u32).collect()
            }
        }
    }
}

/// Targets owned (a dataset's, a loaded batch's).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TargetBuf {
    Labels(Vec<u32>),
    Dense { values: Vec<f32>, width: usize },
}

impl Default for TargetBuf {
    fn default() -> Self {
        TargetBuf::Labels(Vec::new())
    }
}

impl TargetBuf {
    pub(crate) fn as_targets(&self) -> Targets<'_> {
        match self {
            TargetBuf::Labels(l) => Targets::Labels(l),
            TargetBuf::Dense { values, width } => Targets::Dense { values, width: *width },
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.as_targets().len()
    }

    /// Replaces the contents by a copy of `t`, reusing the allocation where the kind agrees.
    pub(crate) fn copy_from(&mut self, t: Targets<'_>) {
        self.gather_from(t, None);
    }

    /// Replaces the contents by the samples `idx` of `t` (all of `t` for `None`).
    pub(crate) fn gather_from(&mut self, t: Targets<'_>, idx: Option<&[usize]>) {
        match t {
            Targets::Labels(src) => {
                let mut dst = match std::mem::take(self) {
                    TargetBuf::Labels(v) => v,
                    TargetBuf::Dense { .. } => Vec::new(),
                };
                dst.clear();
                match idx {
                    Some(idx) => dst.extend(idx.iter().map(|&i| src[i])),
                    None => dst.extend_from_slice(src),
                }
                *self = TargetBuf::Labels(dst);
            }
            Targets::Dense { values, width } => {
                let mut dst = match std::mem::take(self) {
                    TargetBuf::Dense { values, .. } => values,
                    TargetBuf::Labels(_) => Vec::new(),
                };
                dst.clear();
                match idx {
                    Some(idx) => idx.iter().for_each(|&i| dst.extend_from_slice(&values[i * width..(i + 1) * width])),
                    None => dst.extend_from_slice(values),
                }
                *self = TargetBuf::Dense { values: dst, width };
            }
        }
    }
}

/// Keras's `to_categorical`: labels as one-hot rows of `classes` floats (`[n, classes]`);
/// an error for a label out of range.
pub fn to_categorical(labels: &[u32], classes: usize) -> Result<Vec<f32>> {
    crate::losses::check_labels(labels, classes)?;
    let mut out = vec![0.0; labels.len() * classes];
    out.chunks_exact_mut(classes.max(1)).zip(labels).for_each(|(row, &l)| row[l as usize] = 1.0);
    Ok(out)
}

//! An owned f32 tensor: a shape and its elements, row-major (NHWC for images).

use crate::error::{Error, Result};

/// An owned, row-major f32 tensor. Images are NHWC `[n, h, w, c]`; feature batches
/// `[n, features]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    /// A tensor from its shape and data; errors when the element count differs.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let want = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if want != Some(data.len()) {
            return Err(Error::Data(format!("tensor of shape {shape:?} cannot hold {} elements", data.len())));
        }
        Ok(Tensor { shape, data })
    }
    /// A tensor of zeros.
    pub fn zeros(shape: Vec<usize>) -> Result<Self> {
        let len = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| Error::Data(format!("tensor shape {shape:?} overflows")))?;
        Ok(Tensor { shape, data: vec![0.0; len] })
    }
    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// The elements.
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    /// The elements, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
    /// The elements, by value.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }
    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// The index of the largest element of each row of the last axis (first on ties).
    pub fn argmax_rows(&self) -> Vec<usize> {
        let cols = self.shape.last().copied().unwrap_or(1).max(1);
        self.data.chunks_exact(cols).map(argmax).collect()
    }
}

/// Index of the largest value (first on ties; NaN never wins).
pub(crate) fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

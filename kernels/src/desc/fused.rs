//! The fused convolution + ReLU + 2x2/2 max pooling descriptor.

use super::{Conv2d, Pool2d};
use crate::error::Result;

/// A convolution followed by ReLU and a 2x2, stride-2, VALID max pooling, validated for the
/// fused kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvReluPool {
    pub(crate) conv: Conv2d,
    pub(crate) pool: Pool2d,
}

impl ConvReluPool {
    /// Fuses `conv` with a 2x2/2 max pooling of its output. Errors when the convolution
    /// output is smaller than one window. (Its argmax names a cell of each window, so the
    /// output's size has no bound of its own: the bound of 2^24 elements an image, for exact
    /// f32 indices, went with the indices in session 61.)
    pub fn new(conv: Conv2d) -> Result<Self> {
        let pool = Pool2d::new(conv.output_shape(), (2, 2), (2, 2), crate::geometry::Padding::Valid)?;
        Ok(ConvReluPool { conv, pool })
    }

    /// The convolution.
    pub fn conv(&self) -> &Conv2d {
        &self.conv
    }
    /// The pooling of the convolution's output.
    pub fn pool(&self) -> &Pool2d {
        &self.pool
    }
    /// Pooled output shape `[n, ho / 2, wo / 2, cout]`.
    pub fn output_shape(&self) -> [usize; 4] {
        self.pool.output_shape()
    }
    /// Input, filter, pooled output and argmax lengths match this descriptor.
    pub(crate) fn check(&self, x: usize, w: usize, y: usize, argmax: usize) -> Result<()> {
        let c = &self.conv;
        Conv2d::check_len("input length vs n*h*w*cin", x, c.input_shape())?;
        Conv2d::check_len("filter length vs kh*kw*cin*cout", w, c.filter_shape())?;
        Conv2d::check_len("pooled output length vs n*(ho/2)*(wo/2)*cout", y, self.output_shape())?;
        Conv2d::check_len("argmax length vs n*(ho/2)*(wo/2)*cout", argmax, self.output_shape())
    }
}

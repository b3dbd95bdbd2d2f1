//! The fused convolution + ReLU + 2x2/2 max pooling descriptor.

use super::{Conv2d, Pool2d};
use crate::error::{Error, Result};

/// A convolution followed by ReLU and a 2x2, stride-2, VALID max pooling, validated for the
/// fused kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvReluPool {
    pub(crate) conv: Conv2d,
    pub(crate) pool: Pool2d,
}

impl ConvReluPool {
    /// Fuses `conv` with a 2x2/2 max pooling of its output. Errors when the convolution
    /// output is smaller than one window, or too large for exact f32 argmax indices
    /// (2^24 elements per image).
    pub fn new(conv: Conv2d) -> Result<Self> {
        let pool = Pool2d::new(conv.output_shape(), (2, 2), (2, 2), crate::geometry::Padding::Valid)?;
        let img = conv.ho.checked_mul(conv.wo).and_then(|p| p.checked_mul(conv.cout));
        if img.is_none_or(|i| i >= 1 << 24) {
            return Err(Error::InvalidArgument(format!(
                "fused conv+pool: a {}x{}x{} convolution output is too large for exact argmax indices",
                conv.ho, conv.wo, conv.cout
            )));
        }
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

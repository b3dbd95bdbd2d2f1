//! The depthwise convolution descriptor (Keras's `DepthwiseConv2D`).

use super::Conv2d;
use crate::error::{Error, Result};
use crate::geometry::Padding;

/// A validated depthwise 2-D convolution: input NHWC `[n, h, w, c]`, filter
/// `[kh, kw, c, m]` (Keras's `depthwise_kernel`, `m` the depth multiplier), output NHWC
/// `[n, ho, wo, c * m]`: output channel `ci * m + k` is input channel `ci` convolved with
/// filter `[.., .., ci, k]`. The geometry (stride, dilation, padding, output size) is that
/// of a [`Conv2d`] with `c * m` output channels (TensorFlow's SAME padding included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Depthwise2d {
    geometry: Conv2d,
    multiplier: usize,
}

impl Depthwise2d {
    /// Validates and derives the output shape: `input` is `[n, h, w, c]`, `kernel` the
    /// filter's `(kh, kw)`, `multiplier` at least 1.
    pub fn new(
        input: [usize; 4],
        kernel: (usize, usize),
        multiplier: usize,
        stride: (usize, usize),
        dilation: (usize, usize),
        padding: Padding,
    ) -> Result<Self> {
        if multiplier == 0 {
            return Err(Error::InvalidArgument("depth multiplier must be at least 1".into()));
        }
        let cout = input[3].checked_mul(multiplier).ok_or(Error::SizeOverflow { name: "c * multiplier" })?;
        // The input's element count must exist too (the geometry below sees one channel).
        input
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&e| e <= crate::error::MAX_ELEMENTS)
            .ok_or(Error::SizeOverflow { name: "n * h * w * c" })?;
        // A convolution from one channel to `c * m` has the same geometry and bounds the
        // filter and output buffers.
        let [n, h, w, _] = input;
        let geometry = Conv2d::new([n, h, w, 1], [kernel.0, kernel.1, 1, cout], stride, dilation, padding)?;
        Ok(Depthwise2d { geometry, multiplier })
    }
    /// The geometry: a convolution from one channel to the `c * m` output channels (its
    /// `cin()` is 1; read the input channels from [`Depthwise2d::channels`]).
    pub fn geometry(&self) -> &Conv2d {
        &self.geometry
    }
    /// Input channels `c`.
    pub fn channels(&self) -> usize {
        self.geometry.cout / self.multiplier
    }
    /// The depth multiplier `m`.
    pub fn multiplier(&self) -> usize {
        self.multiplier
    }
    /// Output channels `c * m`.
    pub fn out_channels(&self) -> usize {
        self.geometry.cout
    }
    /// `[n, h, w, c]`.
    pub fn input_shape(&self) -> [usize; 4] {
        let g = &self.geometry;
        [g.n, g.h, g.w, self.channels()]
    }
    /// `[kh, kw, c, m]`.
    pub fn filter_shape(&self) -> [usize; 4] {
        [self.geometry.kh, self.geometry.kw, self.channels(), self.multiplier]
    }
    /// `[n, ho, wo, c * m]`.
    pub fn output_shape(&self) -> [usize; 4] {
        let g = &self.geometry;
        [g.n, g.ho, g.wo, g.cout]
    }
    /// Direct-count FLOPs of one pass, `2 * n * ho * wo * c * m * kh * kw`.
    pub fn flops(&self) -> u64 {
        let g = &self.geometry;
        2 * (g.n * g.ho * g.wo) as u64 * (g.cout * g.kh * g.kw) as u64
    }
    /// Checks an (input, filter, output) triple of buffer lengths.
    pub(crate) fn check(&self, x: usize, w: usize, y: usize) -> Result<()> {
        Conv2d::check_len("input length vs n*h*w*c", x, self.input_shape())?;
        Conv2d::check_len("filter length vs kh*kw*c*m", w, self.filter_shape())?;
        Conv2d::check_len("output length vs n*ho*wo*c*m", y, self.output_shape())
    }
    /// Checks a bias (or bias gradient) length.
    pub(crate) fn check_bias(&self, b: usize) -> Result<()> {
        Conv2d::check_len("bias length vs c*m", b, [self.out_channels(), 1, 1, 1])
    }
}

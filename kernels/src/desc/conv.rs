//! The convolution descriptor: shapes, stride, dilation and padding, validated once.

use crate::error::{Error, Result, MAX_ELEMENTS};
use crate::geometry::axis;
pub use crate::geometry::Padding;

/// A validated 2-D convolution: input NHWC `[n, h, w, cin]`, filter HWIO
/// `[kh, kw, cin, cout]`, output NHWC `[n, ho, wo, cout]`.
///
/// Only [`Conv2d::new`] builds one (the fields are private, read through the getters), so
/// every descriptor the kernels see has been validated:
///
/// ```compile_fail
/// let c = ember_kernels::conv::Conv2d { n: 1, h: 1 << 40, w: 1, cin: 1, cout: 1, kh: 1, kw: 1,
///     sh: 1, sw: 1, dh: 1, dw: 1, pad_top: 0, pad_left: 0, ho: 1, wo: 1 };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2d {
    /// Batch size.
    pub(crate) n: usize,
    /// Input height.
    pub(crate) h: usize,
    /// Input width.
    pub(crate) w: usize,
    /// Input channels.
    pub(crate) cin: usize,
    /// Output channels.
    pub(crate) cout: usize,
    /// Filter height.
    pub(crate) kh: usize,
    /// Filter width.
    pub(crate) kw: usize,
    /// Vertical stride.
    pub(crate) sh: usize,
    /// Horizontal stride.
    pub(crate) sw: usize,
    /// Vertical dilation.
    pub(crate) dh: usize,
    /// Horizontal dilation.
    pub(crate) dw: usize,
    /// Rows of padding above (derived from [`Padding`]).
    pub(crate) pad_top: usize,
    /// Columns of padding on the left.
    pub(crate) pad_left: usize,
    /// Output height.
    pub(crate) ho: usize,
    /// Output width.
    pub(crate) wo: usize,
}

impl Conv2d {
    /// Validates and derives the output shape. `input` is `[n, h, w, cin]`, `filter`
    /// `[kh, kw, cin, cout]`, `stride` and `dilation` are `(vertical, horizontal)`.
    pub fn new(
        input: [usize; 4],
        filter: [usize; 4],
        stride: (usize, usize),
        dilation: (usize, usize),
        padding: Padding,
    ) -> Result<Self> {
        let [n, h, w, cin] = input;
        let [kh, kw, fcin, cout] = filter;
        if fcin != cin {
            return Err(Error::ShapeMismatch {
                what: "filter input channels vs input channels",
                expected: cin,
                got: fcin,
            });
        }
        for (v, what) in [(h, "input height"), (w, "input width"), (cin, "input channels"), (cout, "output channels")]
            .into_iter()
            .chain([(kh, "filter height"), (kw, "filter width")])
        {
            if v == 0 {
                return Err(Error::InvalidArgument(format!("{what} must be at least 1")));
            }
        }
        if stride.0 == 0 || stride.1 == 0 {
            return Err(Error::InvalidArgument(format!("stride must be at least 1, got {stride:?}")));
        }
        if dilation.0 == 0 || dilation.1 == 0 {
            return Err(Error::InvalidArgument(format!("dilation must be at least 1, got {dilation:?}")));
        }
        let (ho, pad_top, hp) = axis("height", h, kh, stride.0, dilation.0, padding, true)?;
        let (wo, pad_left, wp) = axis("width", w, kw, stride.1, dilation.1, padding, false)?;
        let c = Conv2d {
            n,
            h,
            w,
            cin,
            cout,
            kh,
            kw,
            sh: stride.0,
            sw: stride.1,
            dh: dilation.0,
            dw: dilation.1,
            pad_top,
            pad_left,
            ho,
            wo,
        };
        // Every buffer length must fit in usize.
        for len in [
            c.input_len(),
            c.filter_len(),
            c.output_len(),
            c.n.checked_mul(c.ho)
                .and_then(|p| p.checked_mul(c.wo))
                .and_then(|p| p.checked_mul(c.kh))
                .and_then(|p| p.checked_mul(c.kw))
                .and_then(|p| p.checked_mul(c.cin)),
        ] {
            len.ok_or(Error::SizeOverflow { name: "Conv2d" })?;
        }
        // The direct and Winograd paths copy the input (or, backward, the output gradient)
        // into a padded canvas of about the padded extent: it must be an array that can
        // exist (at most isize::MAX bytes), or huge explicit padding would wrap the scratch
        // size or abort the allocation.
        n.checked_mul(hp)
            .and_then(|p| p.checked_mul(wp))
            .and_then(|p| p.checked_mul(cin.max(cout)))
            .filter(|&p| p <= MAX_ELEMENTS)
            .ok_or(Error::SizeOverflow { name: "Conv2d padded input" })?;
        Ok(c)
    }

    /// Batch size.
    pub fn n(&self) -> usize {
        self.n
    }
    /// Input height.
    pub fn h(&self) -> usize {
        self.h
    }
    /// Input width.
    pub fn w(&self) -> usize {
        self.w
    }
    /// Input channels.
    pub fn cin(&self) -> usize {
        self.cin
    }
    /// Output channels.
    pub fn cout(&self) -> usize {
        self.cout
    }
    /// Filter height.
    pub fn kh(&self) -> usize {
        self.kh
    }
    /// Filter width.
    pub fn kw(&self) -> usize {
        self.kw
    }
    /// Stride `(vertical, horizontal)`.
    pub fn stride(&self) -> (usize, usize) {
        (self.sh, self.sw)
    }
    /// Dilation `(vertical, horizontal)`.
    pub fn dilation(&self) -> (usize, usize) {
        (self.dh, self.dw)
    }
    /// Padding above and on the left (derived from [`Padding`]).
    pub fn pad_top_left(&self) -> (usize, usize) {
        (self.pad_top, self.pad_left)
    }
    /// Output height.
    pub fn ho(&self) -> usize {
        self.ho
    }
    /// Output width.
    pub fn wo(&self) -> usize {
        self.wo
    }

    /// A stride-1, dilation-1 convolution (the common case).
    pub fn simple(input: [usize; 4], filter: [usize; 4], padding: Padding) -> Result<Self> {
        Self::new(input, filter, (1, 1), (1, 1), padding)
    }

    fn input_len(&self) -> Option<usize> {
        self.n.checked_mul(self.h)?.checked_mul(self.w)?.checked_mul(self.cin)
    }
    fn filter_len(&self) -> Option<usize> {
        self.kh.checked_mul(self.kw)?.checked_mul(self.cin)?.checked_mul(self.cout)
    }
    fn output_len(&self) -> Option<usize> {
        self.n.checked_mul(self.ho)?.checked_mul(self.wo)?.checked_mul(self.cout)
    }

    /// Input shape `[n, h, w, cin]`.
    pub fn input_shape(&self) -> [usize; 4] {
        [self.n, self.h, self.w, self.cin]
    }
    /// Filter shape `[kh, kw, cin, cout]`.
    pub fn filter_shape(&self) -> [usize; 4] {
        [self.kh, self.kw, self.cin, self.cout]
    }
    /// Output shape `[n, ho, wo, cout]`.
    pub fn output_shape(&self) -> [usize; 4] {
        [self.n, self.ho, self.wo, self.cout]
    }
    /// Output pixels over the batch, `n * ho * wo`: the rows of the lowered product.
    pub fn pixels(&self) -> usize {
        self.n * self.ho * self.wo
    }
    /// Elements of one receptive field, `kh * kw * cin`: the depth of the lowered product.
    pub fn patch_len(&self) -> usize {
        self.kh * self.kw * self.cin
    }
    /// Direct-convolution FLOPs, `2 * n * ho * wo * cout * kh * kw * cin` (what benchmarks
    /// report throughput against, whatever the algorithm).
    pub fn flops(&self) -> u64 {
        2 * (self.pixels() as u64) * (self.cout as u64) * (self.patch_len() as u64)
    }

    /// Checks a buffer length against the element count of `shape`.
    pub(crate) fn check_len(what: &'static str, len: usize, shape: [usize; 4]) -> Result<()> {
        let want = shape.iter().product::<usize>();
        if len != want {
            return Err(Error::ShapeMismatch { what, expected: want, got: len });
        }
        Ok(())
    }

    /// Checks the lengths of an (input, filter, output) triple of buffers.
    pub(crate) fn check(&self, x: usize, w: usize, y: usize) -> Result<()> {
        Self::check_len("input length vs n*h*w*cin", x, self.input_shape())?;
        Self::check_len("filter length vs kh*kw*cin*cout", w, self.filter_shape())?;
        Self::check_len("output length vs n*ho*wo*cout", y, self.output_shape())
    }

    /// Input row for output row `oy` and filter row `ky`, or `None` in the padding.
    #[inline]
    pub(crate) fn in_y(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.sh + ky * self.dh).checked_sub(self.pad_top).filter(|&y| y < self.h)
    }
    /// Input column for output column `ox` and filter column `kx`, or `None` in the padding.
    #[inline]
    pub(crate) fn in_x(&self, ox: usize, kx: usize) -> Option<usize> {
        (ox * self.sw + kx * self.dw).checked_sub(self.pad_left).filter(|&x| x < self.w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_follows_tensorflow() {
        // 5 wide, K=3, stride 2: out 3, total pad (3-1)*2+3-5 = 2 -> 1 left, 1 right.
        let c = Conv2d::new([1, 5, 5, 1], [3, 3, 1, 1], (2, 2), (1, 1), Padding::Same).unwrap();
        assert_eq!((c.ho, c.wo, c.pad_top, c.pad_left), (3, 3, 1, 1));
        // 6 wide, K=3, stride 2: out 3, total pad (3-1)*2+3-6 = 1 -> 0 left (odd pixel right).
        let c = Conv2d::new([1, 6, 6, 1], [3, 3, 1, 1], (2, 2), (1, 1), Padding::Same).unwrap();
        assert_eq!((c.ho, c.pad_top), (3, 0));
        // 28x28, K=3 valid: 26.
        let c = Conv2d::simple([32, 28, 28, 1], [3, 3, 1, 32], Padding::Valid).unwrap();
        assert_eq!(c.output_shape(), [32, 26, 26, 32]);
    }

    #[test]
    fn invalid_descriptors_are_errors() {
        let p = Padding::Valid;
        assert!(matches!(Conv2d::simple([1, 2, 2, 1], [3, 3, 1, 1], p), Err(Error::InvalidArgument(_))));
        assert!(matches!(Conv2d::simple([1, 4, 4, 2], [3, 3, 1, 1], p), Err(Error::ShapeMismatch { .. })));
        assert!(matches!(Conv2d::new([1, 4, 4, 1], [3, 3, 1, 1], (0, 1), (1, 1), p), Err(Error::InvalidArgument(_))));
        assert!(matches!(Conv2d::new([1, 4, 4, 1], [3, 3, 1, 1], (1, 1), (1, 0), p), Err(Error::InvalidArgument(_))));
        assert!(matches!(Conv2d::simple([1, 0, 4, 1], [1, 1, 1, 1], p), Err(Error::InvalidArgument(_))));
        assert!(matches!(Conv2d::simple([usize::MAX, 4, 4, 1], [1, 1, 1, 1], p), Err(Error::SizeOverflow { .. })));
        // Regressions: huge explicit padding overflowed the geometry; a huge output plane
        // overflowed ho * wo before the checked products.
        let huge = Padding::Explicit { top: usize::MAX, bottom: 1, left: 0, right: 0 };
        assert!(matches!(Conv2d::simple([1, 4, 4, 1], [1, 1, 1, 1], huge), Err(Error::SizeOverflow { .. })));
        let wide = Padding::Explicit { top: 1 << 33, bottom: 0, left: 1 << 33, right: 0 };
        assert!(matches!(Conv2d::simple([1, 1, 1, 1], [1, 1, 1, 1], wide), Err(Error::SizeOverflow { .. })));
    }
}

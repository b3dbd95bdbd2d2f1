//! The pooling descriptor: window, stride and padding over NHWC input, validated once.

use crate::error::{Error, Result};
use crate::geometry::{axis, Padding};

/// A validated pooling window over NHWC input `[n, h, w, c]`, output `[n, ho, wo, c]`.
///
/// Only [`Pool2d::new`] builds one (private fields, read through the getters), so the
/// kernels never see an unvalidated descriptor whose lengths could wrap:
///
/// ```compile_fail
/// let p = ember_kernels::pool::Pool2d { n: 1, h: 1 << 30, w: 1 << 30, c: 16, kh: 1, kw: 1,
///     sh: 1, sw: 1, pad_top: 0, pad_left: 0, ho: 1, wo: 1 };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2d {
    /// Batch size.
    pub(crate) n: usize,
    /// Input height.
    pub(crate) h: usize,
    /// Input width.
    pub(crate) w: usize,
    /// Channels.
    pub(crate) c: usize,
    /// Window height.
    pub(crate) kh: usize,
    /// Window width.
    pub(crate) kw: usize,
    /// Vertical stride.
    pub(crate) sh: usize,
    /// Horizontal stride.
    pub(crate) sw: usize,
    /// Rows of padding above.
    pub(crate) pad_top: usize,
    /// Columns of padding on the left.
    pub(crate) pad_left: usize,
    /// Output height.
    pub(crate) ho: usize,
    /// Output width.
    pub(crate) wo: usize,
}

/// Marks an output whose window lies entirely in the padding (it has no argmax).
pub const NO_ARGMAX: u32 = u32::MAX;

impl Pool2d {
    /// Validates and derives the output shape. `window` and `stride` are `(vertical, horizontal)`.
    pub fn new(input: [usize; 4], window: (usize, usize), stride: (usize, usize), padding: Padding) -> Result<Self> {
        let [n, h, w, c] = input;
        if h == 0 || w == 0 || c == 0 || window.0 == 0 || window.1 == 0 {
            return Err(Error::InvalidArgument(format!(
                "pooling needs non-empty images and windows: input {input:?}, window {window:?}"
            )));
        }
        if stride.0 == 0 || stride.1 == 0 {
            return Err(Error::InvalidArgument(format!("stride must be at least 1, got {stride:?}")));
        }
        let (ho, pad_top, _) = axis("height", h, window.0, stride.0, 1, padding, true)?;
        let (wo, pad_left, _) = axis("width", w, window.1, stride.1, 1, padding, false)?;
        let img = h.checked_mul(w).and_then(|x| x.checked_mul(c)).ok_or(Error::SizeOverflow { name: "Pool2d" })?;
        if img >= NO_ARGMAX as usize {
            return Err(Error::InvalidArgument(format!(
                "an image of {img} elements is too large for u32 argmax indices"
            )));
        }
        n.checked_mul(img).ok_or(Error::SizeOverflow { name: "Pool2d" })?;
        // The output too: padding can make it larger than the input.
        n.checked_mul(ho)
            .and_then(|v| v.checked_mul(wo))
            .and_then(|v| v.checked_mul(c))
            .filter(|&v| v / n.max(1) < NO_ARGMAX as usize)
            .ok_or(Error::SizeOverflow { name: "Pool2d output" })?;
        Ok(Pool2d { n, h, w, c, kh: window.0, kw: window.1, sh: stride.0, sw: stride.1, pad_top, pad_left, ho, wo })
    }

    /// Window `(height, width)`.
    pub fn window_size(&self) -> (usize, usize) {
        (self.kh, self.kw)
    }
    /// Stride `(vertical, horizontal)`.
    pub fn stride(&self) -> (usize, usize) {
        (self.sh, self.sw)
    }
    /// Output height.
    pub fn ho(&self) -> usize {
        self.ho
    }
    /// Output width.
    pub fn wo(&self) -> usize {
        self.wo
    }
    /// Channels.
    pub fn channels(&self) -> usize {
        self.c
    }

    /// Input shape.
    pub fn input_shape(&self) -> [usize; 4] {
        [self.n, self.h, self.w, self.c]
    }
    /// Output shape.
    pub fn output_shape(&self) -> [usize; 4] {
        [self.n, self.ho, self.wo, self.c]
    }
    fn input_len(&self) -> usize {
        self.n * self.h * self.w * self.c
    }
    fn output_len(&self) -> usize {
        self.n * self.ho * self.wo * self.c
    }

    /// Every argmax is [`NO_ARGMAX`] or an index inside one input image.
    pub(crate) fn check_argmax(&self, argmax: &[u32]) -> Result<()> {
        let img_in = self.h * self.w * self.c;
        // One vectorisable pass (NO_ARGMAX wraps to 0); the first offender only on failure.
        let limit = u32::try_from(img_in).unwrap_or(u32::MAX);
        // A plain fold over fixed-size chunks, which vectorises.
        let worst =
            argmax.chunks(256).map(|c| c.iter().fold(0u32, |m, &a| m.max(a.wrapping_add(1)))).fold(0u32, u32::max);
        if worst > limit {
            let bad = argmax.iter().find(|&&a| a != NO_ARGMAX && a as usize >= img_in).copied().unwrap_or(worst - 1);
            return Err(Error::InvalidArgument(format!("argmax index {bad} is outside an image of {img_in} elements")));
        }
        Ok(())
    }

    /// Input rows and columns covered by output `(oy, ox)`, clipped to the image.
    pub(crate) fn window(&self, oy: usize, ox: usize) -> (core::ops::Range<usize>, core::ops::Range<usize>) {
        let clip = |o: usize, s: usize, pad: usize, k: usize, len: usize| {
            let start = o * s;
            start.saturating_sub(pad).min(len)..(start + k).saturating_sub(pad).min(len)
        };
        (clip(oy, self.sh, self.pad_top, self.kh, self.h), clip(ox, self.sw, self.pad_left, self.kw, self.w))
    }

    /// Input length `x` and output length `y` match this descriptor.
    pub(crate) fn check(&self, x: usize, y: usize) -> Result<()> {
        if x != self.input_len() {
            return Err(Error::ShapeMismatch { what: "input length vs n*h*w*c", expected: self.input_len(), got: x });
        }
        if y != self.output_len() {
            return Err(Error::ShapeMismatch {
                what: "output length vs n*ho*wo*c",
                expected: self.output_len(),
                got: y,
            });
        }
        Ok(())
    }
}

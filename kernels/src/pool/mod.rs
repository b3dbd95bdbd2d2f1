//! Pooling on NHWC activations, vectorised along channels: max pooling (recording the argmax
//! for the backward pass), average pooling with TensorFlow's semantics (padded cells are
//! not counted), and global average pooling. Any window, stride and padding.

mod simd;

use crate::arch::{default_isa, Isa};
use crate::error::{Error, Result};
use crate::geometry::{axis, Padding};
use rayon::prelude::*;

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

/// Max pooling: `y` gets each window's maximum per channel, `argmax` (same shape as `y`)
/// the index of that maximum within its image (`(iy * w + ix) * c + ch`), or
/// [`NO_ARGMAX`] for a window entirely in the padding (whose output is 0). Ties go to the
/// first maximum in row-major window order.
pub fn max_pool_forward(p: &Pool2d, x: &[f32], y: &mut [f32], argmax: &mut [u32]) -> Result<()> {
    max_pool_forward_with(default_isa(), p, x, y, argmax)
}

/// [`max_pool_forward`] on an explicit ISA.
pub fn max_pool_forward_with(isa: Isa, p: &Pool2d, x: &[f32], y: &mut [f32], argmax: &mut [u32]) -> Result<()> {
    isa.check()?;
    p.check(x.len(), y.len())?;
    p.check(x.len(), argmax.len())?;
    let (img_in, img_out) = (p.h * p.w * p.c, p.ho * p.wo * p.c);
    if img_out == 0 {
        return Ok(());
    }
    y.par_chunks_mut(img_out).zip(argmax.par_chunks_mut(img_out)).enumerate().for_each(|(n, (yi, ai))| {
        let xi = &x[n * img_in..][..img_in];
        if img_in <= simd::MAX_F32_INDEX {
            // SAFETY: isa was checked; the slices are one image of p; indices fit f32.
            unsafe { simd::max_fwd(isa, p, xi, yi, ai) }
        } else {
            max_pool_image(p, xi, yi, ai)
        }
    });
    Ok(())
}

/// Max pooling of one image (`xi` is `[h, w, c]`, `yi` and `ai` are `[ho, wo, c]`).
fn max_pool_image(p: &Pool2d, xi: &[f32], yi: &mut [f32], ai: &mut [u32]) {
    for oy in 0..p.ho {
        for ox in 0..p.wo {
            let o = (oy * p.wo + ox) * p.c;
            let (yv, av) = (&mut yi[o..o + p.c], &mut ai[o..o + p.c]);
            let (rows, cols) = p.window(oy, ox);
            if rows.is_empty() || cols.is_empty() {
                yv.fill(0.0);
                av.fill(NO_ARGMAX);
                continue;
            }
            // The first cell initialises; later cells replace only when strictly larger.
            let first = (rows.start * p.w + cols.start) * p.c;
            yv.copy_from_slice(&xi[first..first + p.c]);
            av.iter_mut().enumerate().for_each(|(ch, a)| *a = (first + ch) as u32);
            for iy in rows {
                for ix in cols.clone() {
                    let base = (iy * p.w + ix) * p.c;
                    let src = &xi[base..base + p.c];
                    // Branch-free: the index is blended through an all-ones/all-zeros mask
                    // (LLVM turns plain `if`s here into mispredicting branches), so the loop
                    // vectorises along the channels. NaN never wins (as in the reference).
                    for (ch, ((yc, ac), &v)) in yv.iter_mut().zip(av.iter_mut()).zip(src).enumerate() {
                        let mask = 0u32.wrapping_sub(u32::from(v > *yc));
                        *ac = (((base + ch) as u32) & mask) | (*ac & !mask);
                        *yc = f32::from_bits((v.to_bits() & mask) | (yc.to_bits() & !mask));
                    }
                }
            }
        }
    }
}

/// Max pooling backward: `dx` (overwritten) receives each `dy` at its window's argmax.
pub fn max_pool_backward(p: &Pool2d, dy: &[f32], argmax: &[u32], dx: &mut [f32]) -> Result<()> {
    max_pool_backward_with(default_isa(), p, dy, argmax, dx)
}

/// [`max_pool_backward`] on an explicit ISA.
pub fn max_pool_backward_with(isa: Isa, p: &Pool2d, dy: &[f32], argmax: &[u32], dx: &mut [f32]) -> Result<()> {
    isa.check()?;
    p.check(dx.len(), dy.len())?;
    p.check(dx.len(), argmax.len())?;
    p.check_argmax(argmax)?;
    let (img_in, img_out) = (p.h * p.w * p.c, p.ho * p.wo * p.c);
    // Non-overlapping windows: every window cell is written once, no scatter.
    let disjoint = p.kh <= p.sh && p.kw <= p.sw && img_in <= simd::MAX_F32_INDEX;
    // Windows tile the image exactly: nothing is left to zero.
    let covers =
        p.kh == p.sh && p.kw == p.sw && p.pad_top == 0 && p.pad_left == 0 && p.ho * p.sh == p.h && p.wo * p.sw == p.w;
    dx.par_chunks_mut(img_in).enumerate().for_each(|(n, dxi)| {
        let (dyi, ai) = (&dy[n * img_out..][..img_out], &argmax[n * img_out..][..img_out]);
        if disjoint {
            if !covers {
                dxi.fill(0.0);
            }
            // SAFETY: isa was checked; one image of p; windows are disjoint; indices fit f32.
            unsafe { simd::max_bwd(isa, p, dyi, ai, dxi) };
            return;
        }
        dxi.fill(0.0);
        for (&g, &a) in dyi.iter().zip(ai) {
            if a != NO_ARGMAX {
                dxi[a as usize] += g;
            }
        }
    });
    Ok(())
}

/// Average pooling: the mean over the window's cells that lie inside the image (padding is
/// not counted, as in TensorFlow); 0 for a window entirely in the padding.
pub fn avg_pool_forward(p: &Pool2d, x: &[f32], y: &mut [f32]) -> Result<()> {
    p.check(x.len(), y.len())?;
    let (img_in, img_out) = (p.h * p.w * p.c, p.ho * p.wo * p.c);
    if img_out == 0 {
        return Ok(());
    }
    y.par_chunks_mut(img_out).enumerate().for_each(|(n, yi)| {
        let xi = &x[n * img_in..][..img_in];
        for oy in 0..p.ho {
            for ox in 0..p.wo {
                let yv = &mut yi[(oy * p.wo + ox) * p.c..][..p.c];
                yv.fill(0.0);
                let (rows, cols) = p.window(oy, ox);
                let count = rows.len() * cols.len();
                for iy in rows {
                    for ix in cols.clone() {
                        let src = &xi[(iy * p.w + ix) * p.c..][..p.c];
                        yv.iter_mut().zip(src).for_each(|(a, v)| *a += v);
                    }
                }
                if count > 0 {
                    let inv = 1.0 / count as f32;
                    yv.iter_mut().for_each(|a| *a *= inv);
                }
            }
        }
    });
    Ok(())
}

/// Average pooling backward: each `dy` is spread evenly over its window's counted cells.
pub fn avg_pool_backward(p: &Pool2d, dy: &[f32], dx: &mut [f32]) -> Result<()> {
    p.check(dx.len(), dy.len())?;
    let (img_in, img_out) = (p.h * p.w * p.c, p.ho * p.wo * p.c);
    dx.par_chunks_mut(img_in).enumerate().for_each(|(n, dxi)| {
        dxi.fill(0.0);
        for oy in 0..p.ho {
            for ox in 0..p.wo {
                let g = &dy[n * img_out + (oy * p.wo + ox) * p.c..][..p.c];
                let (rows, cols) = p.window(oy, ox);
                let count = rows.len() * cols.len();
                if count == 0 {
                    continue;
                }
                let inv = 1.0 / count as f32;
                for iy in rows {
                    for ix in cols.clone() {
                        let dst = &mut dxi[(iy * p.w + ix) * p.c..][..p.c];
                        dst.iter_mut().zip(g).for_each(|(d, v)| *d += v * inv);
                    }
                }
            }
        }
    });
    Ok(())
}

/// Global average pooling: `[n, h, w, c]` to `[n, c]`.
pub fn global_avg_pool_forward(input: [usize; 4], x: &[f32], y: &mut [f32]) -> Result<()> {
    let p = Pool2d::new(input, (input[1].max(1), input[2].max(1)), (1, 1), Padding::Valid)?;
    avg_pool_forward(&p, x, y)
}

/// Global average pooling backward: `[n, c]` gradients spread over `[n, h, w, c]`.
pub fn global_avg_pool_backward(input: [usize; 4], dy: &[f32], dx: &mut [f32]) -> Result<()> {
    let p = Pool2d::new(input, (input[1].max(1), input[2].max(1)), (1, 1), Padding::Valid)?;
    avg_pool_backward(&p, dy, dx)
}

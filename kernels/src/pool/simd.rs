//! Vectorised max-pooling microkernels (one image at a time), written once over [`F32x`].
//!
//! Argmax indices ride along in f32 lanes (exact below 2^24, which the callers check), so
//! compare-and-blend stays in one register file; they become `u32` only when stored.

use super::{Pool2d, NO_ARGMAX};
use crate::arch::simd::{simd_dispatch, F32x};

/// Largest image (elements) whose indices are exact in f32.
pub(crate) const MAX_F32_INDEX: usize = 1 << 24;

/// `[0, 1, 2, ...]`: the lane offsets of a vector of channels.
const IOTA: [f32; 16] = [0., 1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12., 13., 14., 15.];

/// Max pooling of one image; see [`super::max_pool_forward`] for the semantics.
///
/// # Safety
/// `xi` is `[h, w, c]`, `yi` and `ai` `[ho, wo, c]` of `p`, and `h * w * c <=`
/// [`MAX_F32_INDEX`]; the ISA of `V` is enabled.
#[inline(always)]
unsafe fn max_fwd_body<V: F32x>(p: &Pool2d, xi: &[f32], yi: &mut [f32], ai: &mut [u32]) {
    let c = p.c;
    let full = c - c % V::LANES;
    // SAFETY: every window cell (iy, ix) is inside the image and ch + LANES <= c, so each
    // load reads xi in bounds; each store writes the output pixel's channels in bounds.
    unsafe {
        let iota = V::load(IOTA.as_ptr());
        for oy in 0..p.ho {
            for ox in 0..p.wo {
                let o = (oy * p.wo + ox) * c;
                let (rows, cols) = p.window(oy, ox);
                if rows.is_empty() || cols.is_empty() {
                    yi[o..o + c].fill(0.0);
                    ai[o..o + c].fill(NO_ARGMAX);
                    continue;
                }
                let first = (rows.start * p.w + cols.start) * c;
                for ch in (0..full).step_by(V::LANES) {
                    let mut best = V::load(xi.as_ptr().add(first + ch));
                    let mut idx = iota.add(V::splat((first + ch) as f32));
                    for iy in rows.clone() {
                        for ix in cols.clone() {
                            let at = (iy * p.w + ix) * c + ch;
                            let v = V::load(xi.as_ptr().add(at));
                            // Strictly larger wins: ties keep the first, NaN never wins.
                            idx = v.select_gt(best, iota.add(V::splat(at as f32)), idx);
                            best = v.select_gt(best, v, best);
                        }
                    }
                    best.store(yi.as_mut_ptr().add(o + ch));
                    idx.store_index(ai.as_mut_ptr().add(o + ch));
                }
                for ch in full..c {
                    let (mut best, mut arg) = (xi[first + ch], first + ch);
                    for iy in rows.clone() {
                        for ix in cols.clone() {
                            let at = (iy * p.w + ix) * c + ch;
                            if xi[at] > best {
                                (best, arg) = (xi[at], at);
                            }
                        }
                    }
                    yi[o + ch] = best;
                    ai[o + ch] = arg as u32;
                }
            }
        }
    }
}

/// Max pooling backward of one image when windows never overlap (`kh <= sh`, `kw <= sw`):
/// every cell of every window is written (the gradient at the argmax, else 0), so only cells
/// outside all windows need zeroing beforehand (the caller does that).
///
/// # Safety
/// `dyi` and `ai` are `[ho, wo, c]`, `dxi` `[h, w, c]` of `p` with `h * w * c <=`
/// [`MAX_F32_INDEX`]; windows do not overlap; the ISA of `V` is enabled.
#[inline(always)]
unsafe fn max_bwd_body<V: F32x>(p: &Pool2d, dyi: &[f32], ai: &[u32], dxi: &mut [f32]) {
    let c = p.c;
    let full = c - c % V::LANES;
    // SAFETY: as in the forward; ai holds ho*wo*c indices.
    unsafe {
        let (iota, zero) = (V::load(IOTA.as_ptr()), V::zero());
        for oy in 0..p.ho {
            for ox in 0..p.wo {
                let o = (oy * p.wo + ox) * c;
                let (rows, cols) = p.window(oy, ox);
                for ch in (0..full).step_by(V::LANES) {
                    let g = V::load(dyi.as_ptr().add(o + ch));
                    // NO_ARGMAX never matches: windows with no cell have no loop iterations.
                    let arg = V::load_index(ai.as_ptr().add(o + ch));
                    for iy in rows.clone() {
                        for ix in cols.clone() {
                            let at = (iy * p.w + ix) * c + ch;
                            arg.select_eq(iota.add(V::splat(at as f32)), g, zero).store(dxi.as_mut_ptr().add(at));
                        }
                    }
                }
                for ch in full..c {
                    for iy in rows.clone() {
                        for ix in cols.clone() {
                            let at = (iy * p.w + ix) * c + ch;
                            dxi[at] = if ai[o + ch] as usize == at { dyi[o + ch] } else { 0.0 };
                        }
                    }
                }
            }
        }
    }
}

simd_dispatch! {
    /// [`max_fwd_body`] on `isa`.
    pub(crate) unsafe fn max_fwd(p: &Pool2d, xi: &[f32], yi: &mut [f32], ai: &mut [u32]) => max_fwd_body
}
simd_dispatch! {
    /// [`max_bwd_body`] on `isa`.
    pub(crate) unsafe fn max_bwd(p: &Pool2d, dyi: &[f32], ai: &[u32], dxi: &mut [f32]) => max_bwd_body
}

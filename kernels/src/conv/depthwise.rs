//! Depthwise convolution (Keras's `DepthwiseConv2D`), all three passes, NHWC, vectorised
//! along the channels with the microkernel bodies written once over [`F32x`] and
//! instantiated per ISA (a depthwise tap is one multiply-add per channel: the passes are
//! bound by loads, so one body per pass serves every ISA). A depth multiplier above 1
//! interleaves output channels (`ci * m + k`) and runs the scalar loops on every ISA.
//!
//! Threads: forward and backward-data split the batch by image; backward-filter splits the
//! channels into fixed blocks of [`FILTER_BLOCK`], each summing over the whole batch in
//! order, so every result is the same on any number of threads.

use crate::arch::simd::{ld, simd_dispatch, st, F32x};
pub use crate::desc::Depthwise2d;
use crate::error::Result;
use crate::Ctx;
use rayon::prelude::*;

/// Channels per backward-filter task (a multiple of every ISA's lanes).
pub const FILTER_BLOCK: usize = 64;

/// `y = depthwise(x, w) + bias` (`x` `[n, h, w, c]`, `w` `[kh, kw, c, m]`, `y`
/// `[n, ho, wo, c * m]`, `bias` `[c * m]`).
pub fn depthwise_forward(
    ctx: &Ctx,
    d: &Depthwise2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) -> Result<()> {
    let isa = ctx.isa.check()?;
    d.check(x.len(), w.len(), y.len())?;
    if let Some(b) = bias {
        d.check_bias(b.len())?;
    }
    let [_, h, wd, c] = d.input_shape();
    let [_, ho, wo, co] = d.output_shape();
    let (img_in, img_out) = (h * wd * c, ho * wo * co);
    if img_out == 0 {
        return Ok(());
    }
    y.par_chunks_mut(img_out).enumerate().for_each(|(n, yi)| {
        let xi = &x[n * img_in..][..img_in];
        if d.multiplier() == 1 {
            // SAFETY: isa was checked; xi and yi are one image of d, w and bias were checked.
            unsafe { fwd(isa, d, xi, w, bias, yi) }
        } else {
            fwd_multiplier(d, xi, w, bias, yi)
        }
    });
    Ok(())
}

/// `dx` (`[n, h, w, c]`, overwritten) from `dy` (`[n, ho, wo, c * m]`) and `w`.
pub fn depthwise_backward_data(ctx: &Ctx, d: &Depthwise2d, dy: &[f32], w: &[f32], dx: &mut [f32]) -> Result<()> {
    let isa = ctx.isa.check()?;
    d.check(dx.len(), w.len(), dy.len())?;
    let [_, h, wd, c] = d.input_shape();
    let [_, ho, wo, co] = d.output_shape();
    let (img_in, img_out) = (h * wd * c, ho * wo * co);
    if img_in == 0 {
        return Ok(());
    }
    dx.par_chunks_mut(img_in).enumerate().for_each(|(n, dxi)| {
        dxi.fill(0.0);
        let dyi = &dy[n * img_out..][..img_out];
        if d.multiplier() == 1 {
            // SAFETY: isa was checked; dyi and dxi are one image of d, w was checked.
            unsafe { bwd_data(isa, d, dyi, w, dxi) }
        } else {
            bwd_data_multiplier(d, dyi, w, dxi)
        }
    });
    Ok(())
}

/// `dw` (`[kh, kw, c, m]`) and `db` (`[c * m]`) from `x` and `dy`, overwriting them or,
/// with `accumulate`, added to what they hold.
pub fn depthwise_backward_filter(
    ctx: &Ctx,
    d: &Depthwise2d,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    accumulate: bool,
) -> Result<()> {
    let isa = ctx.isa.check()?;
    d.check(x.len(), dw.len(), dy.len())?;
    if let Some(b) = db.as_deref() {
        d.check_bias(b.len())?;
    }
    let co = d.out_channels();
    let g = d.geometry();
    let taps = g.kh * g.kw;
    // Per block of channels: `taps + 1` rows of FILTER_BLOCK sums (the last: the bias).
    let blocks = co.div_ceil(FILTER_BLOCK);
    let mut sums = vec![0f32; blocks * (taps + 1) * FILTER_BLOCK];
    sums.par_chunks_mut((taps + 1) * FILTER_BLOCK).enumerate().for_each(|(b, s)| {
        let lo = b * FILTER_BLOCK;
        let width = FILTER_BLOCK.min(co - lo);
        if d.multiplier() == 1 {
            // SAFETY: isa was checked; x and dy were checked against d; s holds
            // (taps + 1) * FILTER_BLOCK sums and lo + width <= co.
            unsafe { bwd_filter(isa, d, x, dy, lo, width, s) }
        } else {
            bwd_filter_multiplier(d, x, dy, lo, width, s)
        }
    });
    let mut db = db;
    for (b, s) in sums.chunks_exact((taps + 1) * FILTER_BLOCK).enumerate() {
        let lo = b * FILTER_BLOCK;
        let width = FILTER_BLOCK.min(co - lo);
        for tap in 0..taps {
            let out = &mut dw[tap * co + lo..tap * co + lo + width];
            let src = &s[tap * FILTER_BLOCK..tap * FILTER_BLOCK + width];
            out.iter_mut().zip(src).for_each(|(o, v)| *o = if accumulate { *o + v } else { *v });
        }
        if let Some(db) = db.as_deref_mut() {
            let src = &s[taps * FILTER_BLOCK..taps * FILTER_BLOCK + width];
            db[lo..lo + width].iter_mut().zip(src).for_each(|(o, v)| *o = if accumulate { *o + v } else { *v });
        }
    }
    Ok(())
}

/// Forward of one image, multiplier 1.
///
/// # Safety
/// `xi` is `[h, w, c]`, `yi` `[ho, wo, c]` of `d` (multiplier 1), `w` `[kh, kw, c]`, `bias`
/// `[c]`; the ISA of `V` is enabled.
#[inline(always)]
unsafe fn fwd_body<V: F32x>(d: &Depthwise2d, xi: &[f32], w: &[f32], bias: Option<&[f32]>, yi: &mut [f32]) {
    let g = d.geometry();
    let c = d.channels();
    // SAFETY: every pointer is a pixel's channel block [ch, ch + nl) with nl <= c - ch, of an
    // input pixel inside the image, an output pixel, a filter tap or the bias.
    unsafe {
        for oy in 0..g.ho {
            for ox in 0..g.wo {
                let o = (oy * g.wo + ox) * c;
                for ch in (0..c).step_by(V::LANES) {
                    let nl = V::LANES.min(c - ch);
                    let mut acc = match bias {
                        Some(b) => ld::<V>(b.as_ptr().add(ch), nl),
                        None => V::zero(),
                    };
                    for ky in 0..g.kh {
                        let Some(iy) = g.in_y(oy, ky) else { continue };
                        for kx in 0..g.kw {
                            let Some(ix) = g.in_x(ox, kx) else { continue };
                            let xv = ld::<V>(xi.as_ptr().add((iy * g.w + ix) * c + ch), nl);
                            let wv = ld::<V>(w.as_ptr().add((ky * g.kw + kx) * c + ch), nl);
                            acc = xv.fma(wv, acc);
                        }
                    }
                    st(acc, yi.as_mut_ptr().add(o + ch), nl);
                }
            }
        }
    }
}

/// Backward-data of one image, multiplier 1, into a zeroed `dxi`.
///
/// # Safety
/// `dyi` is `[ho, wo, c]`, `dxi` `[h, w, c]` of `d` (multiplier 1), `w` `[kh, kw, c]`; the
/// ISA of `V` is enabled.
#[inline(always)]
unsafe fn bwd_data_body<V: F32x>(d: &Depthwise2d, dyi: &[f32], w: &[f32], dxi: &mut [f32]) {
    let g = d.geometry();
    let c = d.channels();
    // SAFETY: as in the forward, with the roles of the input and output pixels swapped.
    unsafe {
        for oy in 0..g.ho {
            for ox in 0..g.wo {
                let o = (oy * g.wo + ox) * c;
                for ch in (0..c).step_by(V::LANES) {
                    let nl = V::LANES.min(c - ch);
                    let gv = ld::<V>(dyi.as_ptr().add(o + ch), nl);
                    for ky in 0..g.kh {
                        let Some(iy) = g.in_y(oy, ky) else { continue };
                        for kx in 0..g.kw {
                            let Some(ix) = g.in_x(ox, kx) else { continue };
                            let at = dxi.as_mut_ptr().add((iy * g.w + ix) * c + ch);
                            let wv = ld::<V>(w.as_ptr().add((ky * g.kw + kx) * c + ch), nl);
                            st(gv.fma(wv, ld::<V>(at, nl)), at, nl);
                        }
                    }
                }
            }
        }
    }
}

/// Backward-filter sums of channels `lo..lo + width` over the whole batch, multiplier 1:
/// `s[tap * FILTER_BLOCK + j]` and the bias's `s[taps * FILTER_BLOCK + j]`.
///
/// # Safety
/// `x` and `dy` are the whole batch of `d` (multiplier 1), `lo + width <= c`, `width <=
/// FILTER_BLOCK`, `s` holds `(kh * kw + 1) * FILTER_BLOCK` floats; the ISA of `V` is enabled.
#[inline(always)]
unsafe fn bwd_filter_body<V: F32x>(d: &Depthwise2d, x: &[f32], dy: &[f32], lo: usize, width: usize, s: &mut [f32]) {
    let g = d.geometry();
    let c = d.channels();
    let taps = g.kh * g.kw;
    s.fill(0.0);
    // SAFETY: every load is a channel block [lo + j, lo + j + nl) within c of a pixel in the
    // batch, every sum a block [j, j + nl) within width of a row of s.
    unsafe {
        for n in 0..g.n {
            for oy in 0..g.ho {
                for ox in 0..g.wo {
                    let o = ((n * g.ho + oy) * g.wo + ox) * c + lo;
                    for j in (0..width).step_by(V::LANES) {
                        let nl = V::LANES.min(width - j);
                        let gv = ld::<V>(dy.as_ptr().add(o + j), nl);
                        let sb = s.as_mut_ptr().add(taps * FILTER_BLOCK + j);
                        st(gv.add(ld::<V>(sb, nl)), sb, nl);
                        for ky in 0..g.kh {
                            let Some(iy) = g.in_y(oy, ky) else { continue };
                            for kx in 0..g.kw {
                                let Some(ix) = g.in_x(ox, kx) else { continue };
                                let xv = ld::<V>(x.as_ptr().add(((n * g.h + iy) * g.w + ix) * c + lo + j), nl);
                                let at = s.as_mut_ptr().add((ky * g.kw + kx) * FILTER_BLOCK + j);
                                st(xv.fma(gv, ld::<V>(at, nl)), at, nl);
                            }
                        }
                    }
                }
            }
        }
    }
}

simd_dispatch! {
    /// [`fwd_body`] on `isa`.
    unsafe fn fwd(d: &Depthwise2d, xi: &[f32], w: &[f32], bias: Option<&[f32]>, yi: &mut [f32]) => fwd_body
}
simd_dispatch! {
    /// [`bwd_data_body`] on `isa`.
    unsafe fn bwd_data(d: &Depthwise2d, dyi: &[f32], w: &[f32], dxi: &mut [f32]) => bwd_data_body
}
simd_dispatch! {
    /// [`bwd_filter_body`] on `isa`.
    unsafe fn bwd_filter(d: &Depthwise2d, x: &[f32], dy: &[f32], lo: usize, width: usize, s: &mut [f32]) => bwd_filter_body
}

/// Calls `f(pixel of the output, pixel of the input, tap)` for one image.
fn taps_of(d: &Depthwise2d, mut f: impl FnMut(usize, usize, usize)) {
    let g = d.geometry();
    for oy in 0..g.ho {
        for ox in 0..g.wo {
            for ky in 0..g.kh {
                let Some(iy) = g.in_y(oy, ky) else { continue };
                for kx in 0..g.kw {
                    let Some(ix) = g.in_x(ox, kx) else { continue };
                    f(oy * g.wo + ox, iy * g.w + ix, ky * g.kw + kx);
                }
            }
        }
    }
}

/// Forward of one image, any multiplier (scalar).
fn fwd_multiplier(d: &Depthwise2d, xi: &[f32], w: &[f32], bias: Option<&[f32]>, yi: &mut [f32]) {
    let (c, co, m) = (d.channels(), d.out_channels(), d.multiplier());
    for px in yi.chunks_exact_mut(co) {
        match bias {
            Some(b) => px.copy_from_slice(b),
            None => px.fill(0.0),
        }
    }
    taps_of(d, |o, i, tap| {
        for j in 0..co {
            yi[o * co + j] += xi[i * c + j / m] * w[tap * co + j];
        }
    });
}

/// Backward-data of one image, any multiplier (scalar), into a zeroed `dxi`.
fn bwd_data_multiplier(d: &Depthwise2d, dyi: &[f32], w: &[f32], dxi: &mut [f32]) {
    let (c, co, m) = (d.channels(), d.out_channels(), d.multiplier());
    taps_of(d, |o, i, tap| {
        for j in 0..co {
            dxi[i * c + j / m] += dyi[o * co + j] * w[tap * co + j];
        }
    });
}

/// Backward-filter sums of output channels `lo..lo + width`, any multiplier (scalar).
fn bwd_filter_multiplier(d: &Depthwise2d, x: &[f32], dy: &[f32], lo: usize, width: usize, s: &mut [f32]) {
    let (c, co, m) = (d.channels(), d.out_channels(), d.multiplier());
    let g = d.geometry();
    let taps = g.kh * g.kw;
    let (img_in, img_out) = (g.h * g.w * c, g.ho * g.wo * co);
    s.fill(0.0);
    for n in 0..g.n {
        let (xi, dyi) = (&x[n * img_in..][..img_in], &dy[n * img_out..][..img_out]);
        for px in dyi.chunks_exact(co) {
            for j in 0..width {
                s[taps * FILTER_BLOCK + j] += px[lo + j];
            }
        }
        taps_of(d, |o, i, tap| {
            for j in 0..width {
                s[tap * FILTER_BLOCK + j] += xi[i * c + (lo + j) / m] * dyi[o * co + lo + j];
            }
        });
    }
}

//! Pooling on NHWC activations, vectorised along channels: max pooling (recording the argmax
//! for the backward pass), average pooling with TensorFlow's semantics (padded cells are
//! not counted), and global average pooling. Any window, stride and padding.

mod simd;

pub use crate::desc::{Pool2d, NO_ARGMAX};
use crate::error::Result;
use crate::geometry::Padding;
use crate::Ctx;
use rayon::prelude::*;

/// Max pooling: `y` gets each window's maximum per channel, `argmax` (same shape as `y`)
/// the index of that maximum within its image (`(iy * w + ix) * c + ch`), or
/// [`NO_ARGMAX`] for a window entirely in the padding (whose output is 0). Ties go to the
/// first maximum in row-major window order.
pub fn max_pool_forward(ctx: &Ctx, p: &Pool2d, x: &[f32], y: &mut [f32], argmax: &mut [u32]) -> Result<()> {
    let isa = ctx.isa.check()?;
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
pub fn max_pool_backward(ctx: &Ctx, p: &Pool2d, dy: &[f32], argmax: &[u32], dx: &mut [f32]) -> Result<()> {
    let isa = ctx.isa.check()?;
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
    p.check(dx.len(), dy.len())?;
    if dx.is_empty() {
        return Ok(());
    }
    // Every pixel takes its image's one window: written in one pass, as `0 + g / count`,
    // the bits of [`avg_pool_backward`]'s zeroed sum (without its zeroing pass).
    let inv = 1.0 / (p.h * p.w) as f32;
    dx.par_chunks_mut(p.h * p.w * p.c).zip(dy.par_chunks(p.c)).for_each(|(dxi, g)| {
        for px in dxi.chunks_exact_mut(p.c) {
            px.iter_mut().zip(g).for_each(|(d, v)| *d = 0.0 + v * inv);
        }
    });
    Ok(())
}

//! Naive pooling from the definition (window bounds recomputed per cell, f64 sums).

use crate::desc::{Pool2d, NO_ARGMAX};
use crate::error::Result;

/// Calls `f(n, oy, ox, cells)` with the in-image cells `(iy, ix)` of each output's window.
fn for_each_window(p: &Pool2d, mut f: impl FnMut(usize, usize, usize, &[(usize, usize)])) {
    let mut cells = Vec::new();
    for n in 0..p.n {
        for oy in 0..p.ho {
            for ox in 0..p.wo {
                cells.clear();
                for ky in 0..p.kh {
                    for kx in 0..p.kw {
                        let iy = (oy * p.sh + ky) as isize - p.pad_top as isize;
                        let ix = (ox * p.sw + kx) as isize - p.pad_left as isize;
                        if iy >= 0 && ix >= 0 && (iy as usize) < p.h && (ix as usize) < p.w {
                            cells.push((iy as usize, ix as usize));
                        }
                    }
                }
                f(n, oy, ox, &cells);
            }
        }
    }
}

/// Max pooling with argmax (first maximum wins; index within the image).
pub fn max_pool_forward(p: &Pool2d, x: &[f32], y: &mut [f32], argmax: &mut [u32]) -> Result<()> {
    p.check(x.len(), y.len())?;
    p.check(x.len(), argmax.len())?;
    let (img_in, img_out) = (p.h * p.w * p.c, p.ho * p.wo * p.c);
    for_each_window(p, |n, oy, ox, cells| {
        for ch in 0..p.c {
            let o = n * img_out + (oy * p.wo + ox) * p.c + ch;
            let mut best: Option<(f32, usize)> = None;
            for &(iy, ix) in cells {
                let idx = (iy * p.w + ix) * p.c + ch;
                let v = x[n * img_in + idx];
                if best.is_none_or(|(b, _)| v > b) {
                    best = Some((v, idx));
                }
            }
            (y[o], argmax[o]) = best.map_or((0.0, NO_ARGMAX), |(v, i)| (v, i as u32));
        }
    });
    Ok(())
}

/// Max pooling backward: gradients routed to the argmax.
pub fn max_pool_backward(p: &Pool2d, dy: &[f32], argmax: &[u32], dx: &mut [f32]) -> Result<()> {
    p.check(dx.len(), dy.len())?;
    p.check(dx.len(), argmax.len())?;
    p.check_argmax(argmax)?;
    let (img_in, img_out) = (p.h * p.w * p.c, p.ho * p.wo * p.c);
    dx.fill(0.0);
    for (o, (&g, &a)) in dy.iter().zip(argmax).enumerate() {
        if a != NO_ARGMAX {
            dx[(o / img_out.max(1)) * img_in + a as usize] += g;
        }
    }
    Ok(())
}

/// Average pooling over in-image cells.
pub fn avg_pool_forward(p: &Pool2d, x: &[f32], y: &mut [f32]) -> Result<()> {
    p.check(x.len(), y.len())?;
    let img_in = p.h * p.w * p.c;
    for_each_window(p, |n, oy, ox, cells| {
        for ch in 0..p.c {
            let s: f64 = cells.iter().map(|&(iy, ix)| f64::from(x[n * img_in + (iy * p.w + ix) * p.c + ch])).sum();
            y[((n * p.ho + oy) * p.wo + ox) * p.c + ch] =
                if cells.is_empty() { 0.0 } else { (s / cells.len() as f64) as f32 };
        }
    });
    Ok(())
}

/// Average pooling backward.
pub fn avg_pool_backward(p: &Pool2d, dy: &[f32], dx: &mut [f32]) -> Result<()> {
    p.check(dx.len(), dy.len())?;
    let img_in = p.h * p.w * p.c;
    let mut acc = vec![0f64; dx.len()];
    for_each_window(p, |n, oy, ox, cells| {
        for ch in 0..p.c {
            let g = f64::from(dy[((n * p.ho + oy) * p.wo + ox) * p.c + ch]);
            for &(iy, ix) in cells {
                acc[n * img_in + (iy * p.w + ix) * p.c + ch] += g / cells.len() as f64;
            }
        }
    });
    dx.iter_mut().zip(acc).for_each(|(d, a)| *d = a as f32);
    Ok(())
}

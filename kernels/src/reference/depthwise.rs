//! Naive depthwise convolution in all three passes, from the definition, f64 accumulation.

use crate::desc::Depthwise2d;
use crate::error::Result;

/// Calls `f(n, oy, ox, tap, iy, ix)` for every output pixel and filter tap inside the input.
fn for_each_tap(d: &Depthwise2d, mut f: impl FnMut(usize, usize, usize, usize, usize, usize)) {
    let g = d.geometry();
    for n in 0..g.n {
        for oy in 0..g.ho {
            for ox in 0..g.wo {
                for ky in 0..g.kh {
                    let Some(iy) = g.in_y(oy, ky) else { continue };
                    for kx in 0..g.kw {
                        let Some(ix) = g.in_x(ox, kx) else { continue };
                        f(n, oy, ox, ky * g.kw + kx, iy, ix);
                    }
                }
            }
        }
    }
}

/// Forward: `y[n,oy,ox,ci*m+k] = bias[ci*m+k] + Σ x[n,iy,ix,ci] * w[ky,kx,ci,k]`.
pub fn depthwise_forward(d: &Depthwise2d, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) -> Result<()> {
    d.check(x.len(), w.len(), y.len())?;
    if let Some(b) = bias {
        d.check_bias(b.len())?;
    }
    let (g, c, co) = (d.geometry(), d.channels(), d.out_channels());
    let mut acc = vec![0f64; y.len()];
    for_each_tap(d, |n, oy, ox, tap, iy, ix| {
        for j in 0..co {
            let xv = f64::from(x[((n * g.h + iy) * g.w + ix) * c + j / d.multiplier()]);
            acc[((n * g.ho + oy) * g.wo + ox) * co + j] += xv * f64::from(w[tap * co + j]);
        }
    });
    for (i, (yv, a)) in y.iter_mut().zip(acc).enumerate() {
        *yv = (a + bias.map_or(0.0, |b| f64::from(b[i % co]))) as f32;
    }
    Ok(())
}

/// Backward-data: `dx[n,iy,ix,ci] = Σ dy[n,oy,ox,ci*m+k] * w[ky,kx,ci,k]` over every
/// (output pixel, tap, k) that reads `(iy, ix)`.
pub fn depthwise_backward_data(d: &Depthwise2d, dy: &[f32], w: &[f32], dx: &mut [f32]) -> Result<()> {
    d.check(dx.len(), w.len(), dy.len())?;
    let (g, c, co) = (d.geometry(), d.channels(), d.out_channels());
    let mut acc = vec![0f64; dx.len()];
    for_each_tap(d, |n, oy, ox, tap, iy, ix| {
        for j in 0..co {
            let gv = f64::from(dy[((n * g.ho + oy) * g.wo + ox) * co + j]);
            acc[((n * g.h + iy) * g.w + ix) * c + j / d.multiplier()] += gv * f64::from(w[tap * co + j]);
        }
    });
    dx.iter_mut().zip(acc).for_each(|(v, a)| *v = a as f32);
    Ok(())
}

/// Backward-filter: `dw[ky,kx,ci,k] = Σ x[n,iy,ix,ci] * dy[n,oy,ox,ci*m+k]`, and
/// `db[j] = Σ dy[.., j]`.
pub fn depthwise_backward_filter(
    d: &Depthwise2d,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
) -> Result<()> {
    d.check(x.len(), dw.len(), dy.len())?;
    let (g, c, co) = (d.geometry(), d.channels(), d.out_channels());
    let mut acc = vec![0f64; dw.len()];
    for_each_tap(d, |n, oy, ox, tap, iy, ix| {
        for j in 0..co {
            let xv = f64::from(x[((n * g.h + iy) * g.w + ix) * c + j / d.multiplier()]);
            acc[tap * co + j] += xv * f64::from(dy[((n * g.ho + oy) * g.wo + ox) * co + j]);
        }
    });
    dw.iter_mut().zip(acc).for_each(|(v, a)| *v = a as f32);
    if let Some(db) = db {
        d.check_bias(db.len())?;
        let mut sums = vec![0f64; co];
        dy.chunks_exact(co).for_each(|p| p.iter().zip(sums.iter_mut()).for_each(|(v, s)| *s += f64::from(*v)));
        db.iter_mut().zip(sums).for_each(|(v, s)| *v = s as f32);
    }
    Ok(())
}

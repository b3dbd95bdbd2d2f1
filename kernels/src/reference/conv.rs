//! Naive convolution in all three passes, straight from the definition, f64 accumulation.

use crate::desc::Conv2d;
use crate::error::Result;

/// Calls `f(n, oy, ox, ky, kx, iy, ix)` for every output pixel and filter tap that lands
/// inside the input (padding taps contribute nothing).
fn for_each_tap(c: &Conv2d, mut f: impl FnMut(usize, usize, usize, usize, usize, usize, usize)) {
    for n in 0..c.n {
        for oy in 0..c.ho {
            for ox in 0..c.wo {
                for ky in 0..c.kh {
                    let Some(iy) = c.in_y(oy, ky) else { continue };
                    for kx in 0..c.kw {
                        let Some(ix) = c.in_x(ox, kx) else { continue };
                        f(n, oy, ox, ky, kx, iy, ix);
                    }
                }
            }
        }
    }
}

/// Forward: `y[n,oy,ox,co] = relu?(bias[co] + Σ x[n,iy,ix,ci] * w[ky,kx,ci,co])`.
pub fn conv2d_forward(c: &Conv2d, x: &[f32], w: &[f32], bias: Option<&[f32]>, relu: bool, y: &mut [f32]) -> Result<()> {
    c.check(x.len(), w.len(), y.len())?;
    if let Some(b) = bias {
        Conv2d::check_len("bias length vs cout", b.len(), [c.cout, 1, 1, 1])?;
    }
    let mut acc = vec![0f64; y.len()];
    for_each_tap(c, |n, oy, ox, ky, kx, iy, ix| {
        let yo = ((n * c.ho + oy) * c.wo + ox) * c.cout;
        for ci in 0..c.cin {
            let xv = f64::from(x[((n * c.h + iy) * c.w + ix) * c.cin + ci]);
            let wo = ((ky * c.kw + kx) * c.cin + ci) * c.cout;
            for co in 0..c.cout {
                acc[yo + co] += xv * f64::from(w[wo + co]);
            }
        }
    });
    for (i, (yv, a)) in y.iter_mut().zip(acc).enumerate() {
        let mut v = a + bias.map_or(0.0, |b| f64::from(b[i % c.cout]));
        if relu {
            v = v.max(0.0);
        }
        *yv = v as f32;
    }
    Ok(())
}

/// Backward-data: `dx[n,iy,ix,ci] = Σ dy[n,oy,ox,co] * w[ky,kx,ci,co]` over every
/// (output pixel, tap) that reads `(iy, ix)`.
pub fn conv2d_backward_data(c: &Conv2d, dy: &[f32], w: &[f32], dx: &mut [f32]) -> Result<()> {
    c.check(dx.len(), w.len(), dy.len())?;
    let mut acc = vec![0f64; dx.len()];
    for_each_tap(c, |n, oy, ox, ky, kx, iy, ix| {
        let yo = ((n * c.ho + oy) * c.wo + ox) * c.cout;
        let xo = ((n * c.h + iy) * c.w + ix) * c.cin;
        for ci in 0..c.cin {
            let wo = ((ky * c.kw + kx) * c.cin + ci) * c.cout;
            acc[xo + ci] += (0..c.cout).map(|co| f64::from(dy[yo + co]) * f64::from(w[wo + co])).sum::<f64>();
        }
    });
    dx.iter_mut().zip(acc).for_each(|(d, a)| *d = a as f32);
    Ok(())
}

/// Backward-filter: `dw[ky,kx,ci,co] = Σ x[n,iy,ix,ci] * dy[n,oy,ox,co]`, and, if asked,
/// `db[co] = Σ dy[n,oy,ox,co]`.
pub fn conv2d_backward_filter(c: &Conv2d, x: &[f32], dy: &[f32], dw: &mut [f32], db: Option<&mut [f32]>) -> Result<()> {
    c.check(x.len(), dw.len(), dy.len())?;
    if let Some(db) = &db {
        Conv2d::check_len("bias gradient length vs cout", db.len(), [c.cout, 1, 1, 1])?;
    }
    let mut acc = vec![0f64; dw.len()];
    for_each_tap(c, |n, oy, ox, ky, kx, iy, ix| {
        let yo = ((n * c.ho + oy) * c.wo + ox) * c.cout;
        for ci in 0..c.cin {
            let xv = f64::from(x[((n * c.h + iy) * c.w + ix) * c.cin + ci]);
            let wo = ((ky * c.kw + kx) * c.cin + ci) * c.cout;
            for co in 0..c.cout {
                acc[wo + co] += xv * f64::from(dy[yo + co]);
            }
        }
    });
    dw.iter_mut().zip(acc).for_each(|(d, a)| *d = a as f32);
    if let Some(db) = db {
        for (co, d) in db.iter_mut().enumerate() {
            *d = dy.iter().skip(co).step_by(c.cout).map(|&v| f64::from(v)).sum::<f64>() as f32;
        }
    }
    Ok(())
}

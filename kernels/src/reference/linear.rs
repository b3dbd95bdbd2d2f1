//! Naive dense layer, f64 accumulation (weights `[outputs, inputs]`).

use crate::desc::Linear;
use crate::error::Result;

/// `y[s][j] = b[j] + Σ_i x[s][i] w[j][i]`.
pub fn linear_forward(l: &Linear, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) -> Result<()> {
    l.check(x.len(), w.len(), y.len())?;
    if let Some(b) = bias {
        l.check_bias("bias length vs outputs", b.len())?;
    }
    let (i_n, o_n) = (l.inputs(), l.outputs());
    for s in 0..l.n() {
        for j in 0..o_n {
            let dot: f64 = (0..i_n).map(|i| f64::from(x[s * i_n + i]) * f64::from(w[j * i_n + i])).sum();
            y[s * o_n + j] = (dot + bias.map_or(0.0, |b| f64::from(b[j]))) as f32;
        }
    }
    Ok(())
}

/// `dx[s][i] = Σ_j dy[s][j] w[j][i]`.
pub fn linear_backward_data(l: &Linear, dy: &[f32], w: &[f32], dx: &mut [f32]) -> Result<()> {
    l.check(dx.len(), w.len(), dy.len())?;
    let (i_n, o_n) = (l.inputs(), l.outputs());
    for s in 0..l.n() {
        for i in 0..i_n {
            dx[s * i_n + i] =
                (0..o_n).map(|j| f64::from(dy[s * o_n + j]) * f64::from(w[j * i_n + i])).sum::<f64>() as f32;
        }
    }
    Ok(())
}

/// `dw[j][i] = Σ_s dy[s][j] x[s][i]`, `db[j] = Σ_s dy[s][j]`.
pub fn linear_backward_weights(
    l: &Linear,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
) -> Result<()> {
    l.check(x.len(), dw.len(), dy.len())?;
    if let Some(db) = &db {
        l.check_bias("bias gradient length vs outputs", db.len())?;
    }
    let (n, i_n, o_n) = (l.n(), l.inputs(), l.outputs());
    for j in 0..o_n {
        for i in 0..i_n {
            dw[j * i_n + i] =
                (0..n).map(|s| f64::from(dy[s * o_n + j]) * f64::from(x[s * i_n + i])).sum::<f64>() as f32;
        }
    }
    if let Some(db) = db {
        for (j, d) in db.iter_mut().enumerate() {
            *d = (0..n).map(|s| f64::from(dy[s * o_n + j])).sum::<f64>() as f32;
        }
    }
    Ok(())
}

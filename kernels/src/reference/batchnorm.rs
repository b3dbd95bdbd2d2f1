//! Batch normalization in f64 from its definition (the optimized twin is `batchnorm`).

use crate::error::{Error, Result};

/// `(y, mean, var)` of training-mode batch normalization of `x` (`[rows, c]`) with `gamma`,
/// `beta`, `eps`; and, given `dy`, `(dx, dgamma, dbeta)` by the chain rule written out.
#[allow(clippy::type_complexity)]
pub fn batch_norm_training(
    x: &[f32],
    c: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    dy: &[f32],
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>)> {
    if c == 0 || !x.len().is_multiple_of(c) || x.len() != dy.len() || gamma.len() != c || beta.len() != c {
        return Err(Error::InvalidArgument("reference batch norm: inconsistent lengths".into()));
    }
    let rows = x.len() / c;
    let n = rows as f64;
    let (mut mean, mut var) = (vec![0f64; c], vec![0f64; c]);
    for r in 0..rows {
        for j in 0..c {
            mean[j] += f64::from(x[r * c + j]) / n;
        }
    }
    for r in 0..rows {
        for j in 0..c {
            var[j] += (f64::from(x[r * c + j]) - mean[j]).powi(2) / n;
        }
    }
    let inv: Vec<f64> = var.iter().map(|v| 1.0 / (v + f64::from(eps)).sqrt()).collect();
    let xh = |r: usize, j: usize| (f64::from(x[r * c + j]) - mean[j]) * inv[j];
    let mut y = vec![0f64; x.len()];
    let (mut dg, mut db) = (vec![0f64; c], vec![0f64; c]);
    for r in 0..rows {
        for j in 0..c {
            y[r * c + j] = f64::from(gamma[j]) * xh(r, j) + f64::from(beta[j]);
            db[j] += f64::from(dy[r * c + j]);
            dg[j] += f64::from(dy[r * c + j]) * xh(r, j);
        }
    }
    let mut dx = vec![0f64; x.len()];
    for r in 0..rows {
        for j in 0..c {
            dx[r * c + j] =
                f64::from(gamma[j]) * inv[j] * (f64::from(dy[r * c + j]) - db[j] / n - xh(r, j) * dg[j] / n);
        }
    }
    Ok((y, mean, var, dx, dg, db))
}

/// `Σ_i (x_i s_i + t_i or x_i)` per element in f64, then `max(·, 0)` with `relu`: each term
/// a `[rows, c]` value with an optional per-channel `(scale, shift)`.
#[allow(clippy::type_complexity)]
pub fn batch_norm_add(terms: &[(&[f32], Option<(&[f32], &[f32])>)], c: usize, relu: bool) -> Result<Vec<f64>> {
    let Some(((first, _), _)) = terms.split_first() else {
        return Err(Error::InvalidArgument("reference batch norm add: no terms".into()));
    };
    let len = first.len();
    let fits = |(x, a): &(&[f32], Option<(&[f32], &[f32])>)| {
        x.len() == len && a.is_none_or(|(s, t)| s.len() == c && t.len() == c)
    };
    if c == 0 || !len.is_multiple_of(c) || !terms.iter().all(fits) {
        return Err(Error::InvalidArgument("reference batch norm add: inconsistent lengths".into()));
    }
    let mut y = vec![0f64; len];
    for (x, affine) in terms {
        for (i, (o, &v)) in y.iter_mut().zip(x.iter()).enumerate() {
            *o += match affine {
                Some((s, t)) => f64::from(v) * f64::from(s[i % c]) + f64::from(t[i % c]),
                None => f64::from(v),
            };
        }
    }
    if relu {
        y.iter_mut().for_each(|v| *v = v.max(0.0));
    }
    Ok(y)
}

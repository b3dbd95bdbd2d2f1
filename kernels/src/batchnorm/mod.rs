//! Batch normalization over the last axis of `[rows, c]` data (NHWC activations flattened:
//! rows = n·h·w), in the form Keras and TensorFlow compute it:
//!
//! - moments: per-channel mean and biased variance over the rows;
//! - apply: `y = x · s + t` per channel, with `s = γ / √(σ² + ε)` and `t = β - μ s`
//!   (`tf.nn.batch_normalization`);
//! - backward (batch statistics): `dβ = Σ dy`, `dγ = Σ dy x̂`,
//!   `dx = γ/√(σ² + ε) · (dy - dβ/N - x̂ dγ/N)` with `x̂ = (x - μ)/√(σ² + ε)`.
//!
//! Every pass is vectorised along the channels (`simd.rs`, every ISA). Sums run over fixed
//! blocks of rows in parallel: within a block, in compensated f32 over groups of 16 rows
//! and then in f64; the blocks' partial sums are added in block order: results are
//! bit-identical for any thread count. The f64 twins are in `reference::batchnorm`.

mod simd;

use crate::error::{Error, Result};
use crate::Ctx;
use rayon::prelude::*;

/// Rows per block of the parallel sums.
const BLOCK_ROWS: usize = 1024;

fn check(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::ShapeMismatch { what, expected, got })
    }
}

fn rows_of(len: usize, c: usize) -> Result<usize> {
    if c == 0 || !len.is_multiple_of(c) {
        return Err(Error::InvalidArgument(format!("{len} values are not rows of {c} channels")));
    }
    Ok(len / c)
}

/// Per-channel sums of `f(block rows)` (each block's `[k, c]` partial sums in f64), added
/// in block order.
fn ordered_sums(rows: usize, c: usize, k: usize, f: impl Fn(std::ops::Range<usize>, &mut [f64]) + Sync) -> Vec<f64> {
    let blocks = rows.div_ceil(BLOCK_ROWS).max(1);
    let mut partial = vec![0f64; blocks * k * c];
    partial.par_chunks_mut(k * c).enumerate().for_each(|(b, p)| {
        f(b * BLOCK_ROWS..((b + 1) * BLOCK_ROWS).min(rows), p);
    });
    let mut total = vec![0f64; k * c];
    for p in partial.chunks_exact(k * c) {
        total.iter_mut().zip(p).for_each(|(t, v)| *t += v);
    }
    total
}

/// The per-channel mean and biased variance of `x` (`[rows, c]`), written to `mean` and
/// `var` (`[c]`).
pub fn batch_norm_moments(ctx: &Ctx, x: &[f32], c: usize, mean: &mut [f32], var: &mut [f32]) -> Result<()> {
    let isa = ctx.isa.check()?;
    let rows = rows_of(x.len(), c)?;
    check("mean length vs channels", c, mean.len())?;
    check("variance length vs channels", c, var.len())?;
    if rows == 0 {
        return Err(Error::InvalidArgument("the moments of no rows".into()));
    }
    // SAFETY (both passes): isa was checked; each block is whole rows of c.
    let sums = ordered_sums(rows, c, 1, |r, p| unsafe { simd::sum(isa, &x[r.start * c..r.end * c], c, p) });
    mean.iter_mut().zip(&sums).for_each(|(o, s)| *o = (s / rows as f64) as f32);
    // The deviations from the mean rounded to f32 (two passes: no cancellation).
    let sq = ordered_sums(rows, c, 1, |r, p| unsafe { simd::sq_dev(isa, &x[r.start * c..r.end * c], mean, c, p) });
    var.iter_mut().zip(&sq).for_each(|(o, s)| *o = (s / rows as f64) as f32);
    Ok(())
}

/// `y = x · scale + shift` per channel (`x`, `y` `[rows, c]`; `scale`, `shift` `[c]`).
pub fn batch_norm_apply(ctx: &Ctx, x: &[f32], scale: &[f32], shift: &[f32], y: &mut [f32]) -> Result<()> {
    let isa = ctx.isa.check()?;
    let c = scale.len();
    rows_of(x.len(), c)?;
    check("shift length vs channels", c, shift.len())?;
    check("output length vs input length", x.len(), y.len())?;
    y.par_chunks_mut(BLOCK_ROWS * c).zip(x.par_chunks(BLOCK_ROWS * c)).for_each(|(yb, xb)| {
        // SAFETY: isa was checked; xb and yb are the same whole rows of c.
        unsafe { simd::affine(isa, xb, scale, shift, c, yb) }
    });
    Ok(())
}

/// The backward pass with batch statistics: from `x` and `dy` (`[rows, c]`), the batch's
/// `mean` and `inv_std = 1/√(σ² + ε)`, and `gamma` (`[c]`), writes `dgamma` and `dbeta`
/// (`[c]`; added to what they hold with `accumulate`) and, if given, `dx`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    ctx: &Ctx,
    x: &[f32],
    dy: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
    dx: Option<&mut [f32]>,
    (dgamma, dbeta): (&mut [f32], &mut [f32]),
    accumulate: bool,
) -> Result<()> {
    let isa = ctx.isa.check()?;
    let c = mean.len();
    let rows = rows_of(x.len(), c)?;
    check("gradient length vs input length", x.len(), dy.len())?;
    for (what, len) in [("inverse std length", inv_std.len()), ("gamma length", gamma.len())] {
        check(what, c, len)?;
    }
    check("dgamma length vs channels", c, dgamma.len())?;
    check("dbeta length vs channels", c, dbeta.len())?;
    let sums = ordered_sums(rows, c, 2, |r, p| {
        let (xb, db) = (&x[r.start * c..r.end * c], &dy[r.start * c..r.end * c]);
        // SAFETY: isa was checked; xb and db are the same whole rows of c; mean and inv_std
        // have c floats (checked).
        unsafe { simd::backward_sums(isa, xb, db, mean, inv_std, c, p) }
    });
    let (sum_dy, sum_dyx) = sums.split_at(c);
    for j in 0..c {
        let (db, dg) = (sum_dy[j] as f32, sum_dyx[j] as f32);
        dbeta[j] = if accumulate { dbeta[j] + db } else { db };
        dgamma[j] = if accumulate { dgamma[j] + dg } else { dg };
    }
    if let Some(dx) = dx {
        check("input gradient length vs input length", x.len(), dx.len())?;
        let (md, mdx): (Vec<f32>, Vec<f32>) =
            (0..c).map(|j| ((sum_dy[j] / rows as f64) as f32, (sum_dyx[j] / rows as f64) as f32)).unzip();
        let g: Vec<f32> = gamma.iter().zip(inv_std).map(|(g, i)| g * i).collect();
        dx.par_chunks_mut(BLOCK_ROWS * c)
            .zip(x.par_chunks(BLOCK_ROWS * c).zip(dy.par_chunks(BLOCK_ROWS * c)))
            .for_each(|(ob, (xb, db))| {
                // SAFETY: isa was checked; the three are the same whole rows of c, the
                // constants have c floats.
                unsafe { simd::backward_dx(isa, xb, db, [mean, inv_std, &g, &md, &mdx], c, ob) }
            });
    }
    Ok(())
}

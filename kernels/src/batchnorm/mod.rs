//! Batch normalization over the last axis of `[rows, c]` data (NHWC activations flattened:
//! rows = n·h·w), in the form Keras and TensorFlow compute it:
//!
//! - moments: per-channel mean and biased variance over the rows (in one pass, shifted by an
//!   estimate of the mean);
//! - apply: `y = x · s + t` per channel, with `s = γ / √(σ² + ε)` and `t = β - μ s`
//!   (`tf.nn.batch_normalization`);
//! - backward (batch statistics): `dβ = Σ dy`, `dγ = Σ dy x̂`,
//!   `dx = γ/√(σ² + ε) · (dy - dβ/N - x̂ dγ/N)` with `x̂ = (x - μ)/√(σ² + ε)`.
//!
//! [`batch_norm_add`] applies normalizations inside a sum (a residual join: `relu(bn(x) +
//! h)`), so the normalized values are never written; its backward is the plain backward
//! pass on the sum's gradient.
//!
//! Apply and backward fuse a following ReLU (the conv → BN → ReLU blocks of residual
//! networks): the forward writes `max(x s + t, 0)` in the same pass, and the backward takes
//! the ReLU's output gradient and masks it where `x s + t > 0`, recomputed from `x` with the
//! forward's own operations (so exactly the forward's mask): the normalized value is never
//! stored and the ReLU's passes over memory (one each way) disappear.
//!
//! Every pass is vectorised along the channels (`simd.rs`, every ISA). Sums run over fixed
//! blocks of rows in parallel: within a block, in compensated f32 over groups of 256 rows
//! (two interleaved chains) and then in f64; the blocks' partial sums are added in block
//! order: results are bit-identical for any thread count. The f64 twins are in `reference::batchnorm`.

mod rows;
mod simd;

use crate::error::{Error, Result};
use crate::scratch::{with_scratch, Slot};
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

/// Rows whose mean shifts the moments' sums.
const SHIFT_ROWS: usize = 16;

/// One part's moments, for a batch whose parts are summed apart (each where it is in cache)
/// and joined afterwards: the part's rows and, per channel, the shift `K` (the mean of the
/// part's first 16 rows, in f64 rounded to f32) and the shifted sums `S1 = Σ (x - K)` and
/// `S2 = Σ (x - K)²` in f64. Written by [`batch_norm_part_moments`], joined by
/// [`batch_norm_combine`]; reusable from step to step without allocating.
#[derive(Debug, Clone, Default)]
pub struct PartMoments {
    rows: usize,
    shift: Vec<f32>,
    /// `[S1 | S2]`.
    sums: Vec<f64>,
}

impl PartMoments {
    /// The part's rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Its channels.
    pub fn channels(&self) -> usize {
        self.shift.len()
    }
    /// The shift `K` per channel (`[c]`).
    pub fn shift(&self) -> &[f32] {
        &self.shift
    }
    /// The shifted sums `[S1 | S2]` (`[2, c]`).
    pub fn sums(&self) -> &[f64] {
        &self.sums
    }
    /// A part's moments from their values (as [`PartMoments::rows`], [`PartMoments::shift`]
    /// and [`PartMoments::sums`] give them), for moments computed in another process
    /// (non-finite values pass through, as they would in this one). Errors when `sums` is
    /// not two per channel.
    pub fn from_values(rows: usize, shift: Vec<f32>, sums: Vec<f64>) -> Result<Self> {
        check("sums vs two per channel", 2 * shift.len(), sums.len())?;
        Ok(PartMoments { rows, shift, sums })
    }
}

/// The per-channel mean and biased variance of `x` (`[rows, c]`), written to `mean` and
/// `var` (`[c]`): [`batch_norm_part_moments`] of all the rows, [`batch_norm_combine`]d.
///
/// Why shifted sums: shifting by a value near the mean keeps `S2/N` within a small factor
/// of `σ²`, so the subtraction cancels almost nothing (unshifted, `E[x²] - E[x]²` loses
/// everything when `|μ| ≫ σ`); the result agrees with TensorFlow's two-pass `tf.nn.moments`
/// to an ulp or two, as the tests check against the f64 reference, and reads `x` once
/// instead of twice.
pub fn batch_norm_moments(ctx: &Ctx, x: &[f32], c: usize, mean: &mut [f32], var: &mut [f32]) -> Result<()> {
    let mut part = PartMoments::default();
    batch_norm_part_moments(ctx, x, c, &mut part)?;
    batch_norm_combine(&[&part], mean, var)
}

/// The moments of one part of a batch, `x` (`[rows, c]`, at least one row), into `out`
/// (resized to `c` channels).
pub fn batch_norm_part_moments(ctx: &Ctx, x: &[f32], c: usize, out: &mut PartMoments) -> Result<()> {
    let isa = ctx.isa.check()?;
    let rows = rows_of(x.len(), c)?;
    if rows == 0 {
        return Err(Error::InvalidArgument("the moments of no rows".into()));
    }
    let head = rows.min(SHIFT_ROWS);
    out.rows = rows;
    out.shift.clear();
    out.shift.extend((0..c).map(|j| ((0..head).map(|r| f64::from(x[r * c + j])).sum::<f64>() / head as f64) as f32));
    let shift = &out.shift;
    // SAFETY: isa was checked; each block is whole rows of c; shift has c floats.
    out.sums = ordered_sums(rows, c, 2, |r, p| unsafe { simd::moments(isa, &x[r.start * c..r.end * c], shift, c, p) });
    Ok(())
}

/// The mean and biased variance (`[c]` each) of the rows of all `parts` together, joined in
/// the order given (Chan, Golub and LeVeque's pairwise update, in f64): each part's mean
/// `K + S1/n` and squared deviations `M2 = S2 - S1²/n`, then per part
/// `δ = mean_p - mean`, `mean += δ n_p/(n + n_p)`, `M2 += M2_p + δ² n n_p/(n + n_p)`;
/// `σ² = M2/N`. The result depends on how the rows were split into parts and on their
/// order, never on anything else.
pub fn batch_norm_combine(parts: &[&PartMoments], mean: &mut [f32], var: &mut [f32]) -> Result<()> {
    let Some(first) = parts.first() else {
        return Err(Error::InvalidArgument("the moments of no parts".into()));
    };
    let c = first.channels();
    check("mean length vs channels", c, mean.len())?;
    check("variance length vs channels", c, var.len())?;
    for p in parts {
        check("part's channels vs the first part's", c, p.channels())?;
        if p.rows == 0 {
            return Err(Error::InvalidArgument("the moments of a part of no rows".into()));
        }
    }
    for j in 0..c {
        let (mut n, mut mu, mut m2) = (0f64, 0f64, 0f64);
        for p in parts {
            let np = p.rows as f64;
            let (s1, s2) = (p.sums[j], p.sums[c + j]);
            let mu_p = f64::from(p.shift[j]) + s1 / np;
            let m2_p = s2 - s1 * s1 / np;
            if n == 0.0 {
                (n, mu, m2) = (np, mu_p, m2_p);
                continue;
            }
            let total = n + np;
            let delta = mu_p - mu;
            mu += delta * np / total;
            m2 += m2_p + delta * delta * n * np / total;
            n = total;
        }
        mean[j] = mu as f32;
        var[j] = (m2 / n).max(0.0) as f32;
    }
    Ok(())
}

/// `y = x · scale + shift` per channel (`x`, `y` `[rows, c]`; `scale`, `shift` `[c]`); with
/// `relu`, `y = max(x · scale + shift, 0)`.
pub fn batch_norm_apply(ctx: &Ctx, x: &[f32], scale: &[f32], shift: &[f32], relu: bool, y: &mut [f32]) -> Result<()> {
    let isa = ctx.isa.check()?;
    let c = scale.len();
    rows_of(x.len(), c)?;
    check("shift length vs channels", c, shift.len())?;
    check("output length vs input length", x.len(), y.len())?;
    y.par_chunks_mut(BLOCK_ROWS * c).zip(x.par_chunks(BLOCK_ROWS * c)).for_each(|(yb, xb)| {
        // SAFETY: isa was checked; xb and yb are the same whole rows of c.
        unsafe {
            if relu {
                rows::affine::<true>(isa, xb, scale, shift, c, yb)
            } else {
                rows::affine::<false>(isa, xb, scale, shift, c, yb)
            }
        }
    });
    Ok(())
}

/// One input of [`batch_norm_add`]: a value `[rows, c]`, normalized by `affine = (scale,
/// shift)` (each `[c]`; the forward of a batch normalization whose only consumer is the
/// sum) or taken as it is.
#[derive(Debug, Clone, Copy)]
pub struct AddTerm<'a> {
    /// The value, `[rows, c]`.
    pub x: &'a [f32],
    /// `y = x · scale + shift` per channel before the sum, or `None`.
    pub affine: Option<(&'a [f32], &'a [f32])>,
}

/// `y = Σ_i term_i` (then `max(·, 0)` with `relu`) over `[rows, c]` values with `c` channels,
/// in one pass: a residual join whose inputs come out of batch normalizations, without
/// writing the normalized values. Each term is `x · scale + shift` (multiply, then add, as
/// [`batch_norm_apply`]) or `x`, summed in the order given as
/// [`crate::elementwise::add_forward`] sums, so `y` is bit for bit the unfused passes'.
pub fn batch_norm_add(ctx: &Ctx, terms: &[AddTerm<'_>], c: usize, relu: bool, y: &mut [f32]) -> Result<()> {
    let isa = ctx.isa.check()?;
    if terms.is_empty() {
        return Err(Error::InvalidArgument("batch_norm_add needs at least one term".into()));
    }
    rows_of(y.len(), c)?;
    for t in terms {
        check("term length vs output length", y.len(), t.x.len())?;
        if let Some((s, sh)) = t.affine {
            check("scale length vs channels", c, s.len())?;
            check("shift length vs channels", c, sh.len())?;
        }
    }
    let block = BLOCK_ROWS * c;
    y.par_chunks_mut(block).enumerate().for_each(|(b, yb)| {
        // SAFETY: isa was checked; yb is whole rows of c (y is, and so is every block); every
        // term's x is as long as y (checked), so it holds b·block + yb.len() floats; the maps
        // have c floats (checked); terms is not empty (checked).
        unsafe {
            if relu {
                rows::add_affine::<true>(isa, terms, b * block, c, yb)
            } else {
                rows::add_affine::<false>(isa, terms, b * block, c, yb)
            }
        }
    });
    Ok(())
}

/// What the forward pass that a backward pass differentiates computed from `x`
/// (`[rows, c]`): the batch's `mean` and `inv_std = 1/√(σ² + ε)`, `gamma`, and, when a ReLU
/// followed in the same pass ([`batch_norm_apply`] with `relu`), its `(scale, shift)`
/// (each `[c]`).
#[derive(Debug, Clone, Copy)]
pub struct BatchNormSaved<'a> {
    /// The forward's input, `[rows, c]`.
    pub x: &'a [f32],
    /// The batch's per-channel mean.
    pub mean: &'a [f32],
    /// `1/√(σ² + ε)` of the batch's variance.
    pub inv_std: &'a [f32],
    /// γ (ones where the layer learns none).
    pub gamma: &'a [f32],
    /// The forward's scale and shift when a ReLU followed: the gradient passes where
    /// `x · scale + shift > 0`.
    pub relu: Option<(&'a [f32], &'a [f32])>,
}

/// The backward pass with batch statistics: from the forward's [`BatchNormSaved`] and `dy`
/// (`[rows, c]`: the gradient of the ReLU's output when one followed), writes `dgamma` and
/// `dbeta` (`[c]`; added to what they hold with `accumulate`) and, if given, `dx`:
/// [`batch_norm_backward_sums`], then [`batch_norm_backward_dx`] with their means.
pub fn batch_norm_backward(
    ctx: &Ctx,
    saved: BatchNormSaved<'_>,
    dy: &[f32],
    dx: Option<&mut [f32]>,
    (dgamma, dbeta): (&mut [f32], &mut [f32]),
    accumulate: bool,
) -> Result<()> {
    let c = saved.mean.len();
    check("dgamma length vs channels", c, dgamma.len())?;
    check("dbeta length vs channels", c, dbeta.len())?;
    let mut sums = vec![0f64; 2 * c];
    batch_norm_backward_sums(ctx, saved, dy, &mut sums)?;
    let (sum_dy, sum_dyx) = sums.split_at(c);
    for j in 0..c {
        let (db, dg) = (sum_dy[j] as f32, sum_dyx[j] as f32);
        dbeta[j] = if accumulate { dbeta[j] + db } else { db };
        dgamma[j] = if accumulate { dgamma[j] + dg } else { dg };
    }
    if let Some(dx) = dx {
        let rows = (saved.x.len() / c) as f64;
        let (md, mdx): (Vec<f32>, Vec<f32>) =
            (0..c).map(|j| ((sum_dy[j] / rows) as f32, (sum_dyx[j] / rows) as f32)).unzip();
        batch_norm_backward_dx(ctx, saved, dy, (&md, &mdx), dx)?;
    }
    Ok(())
}

/// Checks `saved` against `dy` (`[rows, c]`); returns the rows.
fn check_saved(saved: &BatchNormSaved<'_>, dy: &[f32]) -> Result<usize> {
    let BatchNormSaved { x, mean, inv_std, gamma, relu } = *saved;
    let c = mean.len();
    let rows = rows_of(x.len(), c)?;
    check("gradient length vs input length", x.len(), dy.len())?;
    for (what, len) in [("inverse std length", inv_std.len()), ("gamma length", gamma.len())] {
        check(what, c, len)?;
    }
    if let Some((s, t)) = relu {
        check("ReLU scale length vs channels", c, s.len())?;
        check("ReLU shift length vs channels", c, t.len())?;
    }
    Ok(rows)
}

/// The backward pass's two sums over the rows of `saved.x` (the whole batch, or one part of
/// it: parts' sums add up in f64): `sums = [Σ dy | Σ dy x̂]` (`2c`), with `dy` masked by the
/// ReLU when one followed. They are `dβ` and `dγ`, and their means over the batch's rows
/// are what [`batch_norm_backward_dx`] takes.
pub fn batch_norm_backward_sums(ctx: &Ctx, saved: BatchNormSaved<'_>, dy: &[f32], sums: &mut [f64]) -> Result<()> {
    let isa = ctx.isa.check()?;
    let rows = check_saved(&saved, dy)?;
    let BatchNormSaved { x, mean, inv_std, relu, .. } = saved;
    let c = mean.len();
    check("sums length vs channels", 2 * c, sums.len())?;
    let (s, t) = relu.unwrap_or((&[], &[]));
    let total = ordered_sums(rows, c, 2, |r, p| {
        let (xb, db) = (&x[r.start * c..r.end * c], &dy[r.start * c..r.end * c]);
        // SAFETY: isa was checked; xb and db are the same whole rows of c; mean, inv_std
        // and (read only with a ReLU) s and t have c floats (checked).
        unsafe {
            if relu.is_some() {
                simd::backward_sums::<true>(isa, xb, db, [mean, inv_std, s, t], c, p)
            } else {
                simd::backward_sums::<false>(isa, xb, db, [mean, inv_std, s, t], c, p)
            }
        }
    });
    sums.copy_from_slice(&total);
    Ok(())
}

/// The input gradient of the backward pass with batch statistics over the rows of
/// `saved.x` (the whole batch or one part of it): `dx = γ/√(σ² + ε) · (dy - mean_dy -
/// x̂ · mean_dyx)`, with `mean_dy = Σ dy / N` and `mean_dyx = Σ dy x̂ / N` (`[c]` each) over
/// the whole batch's `N` rows (from [`batch_norm_backward_sums`]), `dy` masked by the ReLU
/// when one followed.
pub fn batch_norm_backward_dx(
    ctx: &Ctx,
    saved: BatchNormSaved<'_>,
    dy: &[f32],
    (mean_dy, mean_dyx): (&[f32], &[f32]),
    dx: &mut [f32],
) -> Result<()> {
    let isa = ctx.isa.check()?;
    check_saved(&saved, dy)?;
    let BatchNormSaved { x, mean, inv_std, gamma, relu } = saved;
    let c = mean.len();
    check("mean of dy length vs channels", c, mean_dy.len())?;
    check("mean of dy x̂ length vs channels", c, mean_dyx.len())?;
    check("input gradient length vs input length", x.len(), dx.len())?;
    let (s, t) = relu.unwrap_or((&[], &[]));
    // dx = g (dy - md - (x - mean) inv mdx) = g dy + ((x - mean) b + d) with g = γ inv,
    // b = -g inv mdx and d = -g md: two FMAs per element (the kernel's form), each
    // constant rounded once from f64. In this thread's scratch: the pass runs per part of
    // a batch, and would otherwise allocate three vectors each time.
    with_scratch(Slot::Constants, 3 * c, |gbd| {
        let (g, bd) = gbd.split_at_mut(c);
        let (b, d) = bd.split_at_mut(c);
        for j in 0..c {
            g[j] = gamma[j] * inv_std[j];
            let (gamma, inv) = (f64::from(gamma[j]), f64::from(inv_std[j]));
            b[j] = (-gamma * inv.powi(2) * f64::from(mean_dyx[j])) as f32;
            d[j] = (-gamma * inv * f64::from(mean_dy[j])) as f32;
        }
        let k = [mean, &*b, &*d, &*g, s, t];
        dx.par_chunks_mut(BLOCK_ROWS * c)
            .zip(x.par_chunks(BLOCK_ROWS * c).zip(dy.par_chunks(BLOCK_ROWS * c)))
            .for_each(|(ob, (xb, db))| {
                // SAFETY: isa was checked; the three are the same whole rows of c, the
                // constants read have c floats.
                unsafe {
                    if relu.is_some() {
                        rows::backward_dx::<true>(isa, xb, db, k, c, ob)
                    } else {
                        rows::backward_dx::<false>(isa, xb, db, k, c, ob)
                    }
                }
            });
    });
    Ok(())
}

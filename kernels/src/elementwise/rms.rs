//! The update of Keras's RMSprop and Adagrad, one kernel for both: a running sum of squared
//! gradients `s ← decay·s + gain·g²` and the step `w ← w − (lr·g)/√(s + ε)`, in TensorFlow's
//! flush-to-zero arithmetic as [`super::adam_update`] is (the module [`super::flush`] says
//! why).
//!
//! Keras's `RMSprop` (no momentum, not centered) is `decay = ρ`, `gain = 1 − ρ`; Keras's
//! `Adagrad` is `decay = gain = 1` (its `accumulator + g²`: a product by one is exact, with
//! or without flushing, so the one formula gives Adagrad's bits).

use super::flush::{pow2_bits, product_threshold, quotient_flushed, within, MAX_EPSILON};
use super::{check_gradients, check_same, flush_subnormal, SharedGradient};
use crate::arch::simd::F32x;
use crate::error::{Error, Result};

/// The constants of one step of [`rms_update`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RmsParams {
    /// Learning rate.
    pub lr: f32,
    /// What the running sum keeps of itself each step (RMSprop's ρ; Adagrad's 1).
    pub decay: f32,
    /// What it takes of the squared gradient (RMSprop's `1 − ρ`; Adagrad's 1).
    pub gain: f32,
    /// Denominator fuzz, added under the square root.
    pub eps: f32,
}

impl RmsParams {
    /// Keras's `RMSprop(learning_rate, rho, epsilon)`: `ρ` rounded to f32, and `1 − ρ`
    /// computed in double precision and rounded once, as Keras computes it from the Python
    /// float.
    pub fn rmsprop(lr: f32, rho: f64, eps: f32) -> Self {
        RmsParams { lr, decay: rho as f32, gain: (1.0 - rho) as f32, eps }
    }

    /// Keras's `Adagrad(learning_rate, epsilon)` (the accumulator's initial value is the
    /// caller's, in the running sum it hands over).
    pub fn adagrad(lr: f32, eps: f32) -> Self {
        RmsParams { lr, decay: 1.0, gain: 1.0, eps }
    }
}

/// One step in place on `param` and the running sum `s`, exactly as Keras writes it:
/// `s = decay·s + gain·(g·g)`, `param -= (lr·g)/√(s + ε)`, every operand and every result
/// that would be subnormal zero of its sign (TensorFlow's flush-to-zero; x86's rule for
/// tiny products and quotients). Separate multiplies and adds and correctly rounded square
/// roots and divisions: every ISA, the scalar tail and any thread count give the same bits.
/// Vectorised on `ctx`'s ISA and split across threads for large tensors. An error for
/// lengths that differ, or ε outside (0, 2^100] or a negative or non-finite decay or gain.
pub fn rms_update(ctx: &crate::Ctx, p: &RmsParams, param: &mut [f32], grad: &[f32], s: &mut [f32]) -> Result<()> {
    check_gradients(param.len(), grad.len(), &[])?;
    // The gradient is only read: `SUMMED` false never writes through the pointer.
    step::<false>(ctx, p, (param, s), (SharedGradient(grad.as_ptr().cast_mut()), &[]))
}

/// [`rms_update`] on the gradient `grad + more[0] + more[1] + …`, summed elementwise in
/// that order (the bits of [`super::accumulate_in_order`] followed by [`rms_update`]), which
/// is left in `grad`: the gradients of a batch's shards summed inside the step's loop.
pub fn rms_update_summed(
    ctx: &crate::Ctx,
    p: &RmsParams,
    param: &mut [f32],
    grad: &mut [f32],
    more: &[&[f32]],
    s: &mut [f32],
) -> Result<()> {
    check_gradients(param.len(), grad.len(), more)?;
    step::<true>(ctx, p, (param, s), (SharedGradient(grad.as_mut_ptr()), more))
}

/// The checks and the chunked, parallel step: the gradient is `param.len()` floats at `g`
/// plus, elementwise in order, those of `more`; with `SUMMED` the sum is written back.
fn step<const SUMMED: bool>(
    ctx: &crate::Ctx,
    p: &RmsParams,
    (param, s): (&mut [f32], &mut [f32]),
    (g, more): (SharedGradient, &[&[f32]]),
) -> Result<()> {
    check_same("running sum length vs parameter length", param.len(), s.len())?;
    if !(p.eps > 0.0 && p.eps <= MAX_EPSILON) {
        return Err(Error::InvalidArgument(format!("RMS step epsilon {:e} is not in (0, 2^100]", p.eps)));
    }
    for (name, x) in [("decay", p.decay), ("gain", p.gain)] {
        if !(x.is_finite() && x >= 0.0) {
            return Err(Error::InvalidArgument(format!("RMS step {name} {x} must be finite, >= 0")));
        }
    }
    let isa = ctx.isa.check()?;
    let k = RmsConstants::new(p);
    const CHUNK: usize = 8 * 1024;
    use rayon::prelude::*;
    param.par_chunks_mut(CHUNK).zip(s.par_chunks_mut(CHUNK)).enumerate().for_each(|(c, (w, s))| {
        let at = c * CHUNK;
        // SAFETY: `isa` was checked above; the chunks of w and s have one length, and the
        // gradient and every `more` slice hold `param.len()` floats (checked by the
        // callers), of which the chunk's from `at` are read (and with SUMMED written) by
        // this task only.
        unsafe { rms_vectors::<SUMMED>(isa, &k, w, g.at(at), (more, at), s) }
    });
    Ok(())
}

/// The bounds of the plain path: per vector, every gradient, running sum and weight is zero
/// or has a magnitude in these ranges (bits, inclusive; the weight's has no upper bound).
/// Within them, with `decay` and `gain` in [2^-20, 1], |lr| ≥ 2^-40 and 2^-60 ≤ ε ≤ 2^10, no
/// operation meets or makes a subnormal, so IEEE arithmetic is TensorFlow's: `g²` and `s`
/// lie in [2^-80, 2^38], so both products of the new `s` are zero or in [2^-100, 2^38] and
/// multiples of 2^-123, and so is their sum (even for a negative `s` restored from a file:
/// a non-zero multiple of 2^-123 is normal), at most 2^39; `s + ε` is then a multiple of
/// 2^-123 too, so `√(s + ε)` is zero, NaN or in [2^-62, 2^20]; `lr·g` is zero or at least
/// 2^-80, the quotient zero or at least 2^-100 (or infinite); and the new weight is `w`
/// less a term under half of `w`, two terms ≥ 2^-41 (whose difference is a multiple of
/// 2^-64), or the term alone.
const PLAIN_G: (u32, u32) = (pow2_bits(-40), pow2_bits(19));
const PLAIN_S: (u32, u32) = (pow2_bits(-80), pow2_bits(38));
const PLAIN_W: u32 = pow2_bits(-40);

/// A step's constants, flushed as TensorFlow reads them, with the operand thresholds of the
/// careful path's products.
struct RmsConstants {
    /// `[decay, gain, lr, ε]`.
    k: [f32; 4],
    /// Operand thresholds (bits) for `decay·s`, `g·g`, `gain·g²`, `lr·g`.
    below: [u32; 4],
    /// Whether the plain path may run at all.
    plain: bool,
}

impl RmsConstants {
    fn new(p: &RmsParams) -> Self {
        let k = [p.decay, p.gain, p.lr, p.eps].map(flush_subnormal);
        let [decay, gain, lr, eps] = k;
        let below = [
            product_threshold(Some(decay)),
            product_threshold(None),
            product_threshold(Some(gain)),
            product_threshold(Some(lr)),
        ];
        let plain = within(decay, -20, 0) && within(gain, -20, 0) && within(lr.abs(), -40, 127) && within(eps, -60, 10);
        RmsConstants { k, below, plain }
    }
}

/// The step on `w` and its running sum `s`, a vector of `V` at a time (the last one
/// partial): a vector within [`PLAIN_G`] and its siblings in plain IEEE arithmetic, any
/// other on the careful path, which flushes every operand and result as TensorFlow does and
/// zeroes a product's operand below its threshold before the product, so no subnormal
/// reaches the floating-point units. The gradient is `g` plus, in order, the floats from
/// `at` of every slice of `more`; with `SUMMED` the sum is stored back at `g`.
///
/// # Safety
/// The ISA of `V` is enabled; `w.len()` floats at `g` are readable (and, with `SUMMED`,
/// writable, and no other reference reaches them); `s` is as long as `w`, and every `more`
/// slice holds `at + w.len()` floats.
#[inline(always)]
unsafe fn rms_vectors_body<V: F32x, const SUMMED: bool>(
    k: &RmsConstants,
    w: &mut [f32],
    g: *mut f32,
    (more, at): (&[&[f32]], usize),
    s: &mut [f32],
) {
    // SAFETY: registers only; the ISA of V is enabled (the contract).
    let [decay, gain, lr, e] = k.k.map(|x| unsafe { V::splat(x) });
    let [td, tsq, tg, tl] = k.below;
    let mut i = 0;
    while i < w.len() {
        let n = V::LANES.min(w.len() - i);
        // SAFETY: n floats from i in each slice; registers otherwise.
        unsafe {
            let ld = |p: *const f32| if n == V::LANES { V::load(p.add(i)) } else { V::load_partial(p.add(i), n) };
            let st = |x: V, p: *mut f32| if n == V::LANES { x.store(p.add(i)) } else { x.store_partial(p.add(i), n) };
            let mut gv = ld(g);
            if SUMMED {
                for x in more {
                    gv = gv.add(ld(x.as_ptr().add(at)));
                }
                st(gv, g);
            }
            let (sv, wv) = (ld(s.as_ptr()), ld(w.as_ptr()));
            let plain = k.plain
                && !(gv.any_outside(PLAIN_G.0, PLAIN_G.1)
                    | sv.any_outside(PLAIN_S.0, PLAIN_S.1)
                    | wv.any_below(PLAIN_W));
            let (sn, wn) = if plain {
                // Keras's operations, in its order; no FMA contraction.
                let sn = decay.mul(sv).add(gain.mul(gv.mul(gv)));
                (sn, wv.sub(lr.mul(gv).div(sn.add(e).sqrt())))
            } else {
                let (gv, sv, wv) = (gv.flush(), sv.flush(), wv.flush());
                let gs = gv.flush_below(tsq);
                let kept = sv.flush_below(td).mul(decay);
                let taken = gs.mul(gs).flush_below(tg).mul(gain);
                // A sum of normal floats is exact when tiny: flushing it is x86's result.
                let sn = kept.add(taken).flush();
                let den = sn.add(e).flush().sqrt();
                let q = quotient_flushed(gv.flush_below(tl).mul(lr), den);
                (sn, wv.sub(q).flush())
            };
            st(sn, s.as_mut_ptr());
            st(wn, w.as_mut_ptr());
        }
        i += n;
    }
}

crate::arch::simd::simd_dispatch! {
    /// [`rms_vectors_body`] on `isa`.
    unsafe fn rms_vectors<const SUMMED: bool>(k: &RmsConstants, w: &mut [f32], g: *mut f32, more: (&[&[f32]], usize), s: &mut [f32]) => rms_vectors_body
}

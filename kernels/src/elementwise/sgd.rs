//! The update of Keras's SGD, with and without (Nesterov) momentum, in TensorFlow's
//! flush-to-zero arithmetic as [`super::adam_update`] is (the module [`super::flush`] says
//! why): Keras writes it as
//!
//! - no momentum: `w ← w − g·lr`;
//! - momentum `μ`: `m ← m·μ − g·lr`, then `w ← w + m`, or with Nesterov `w ← w + (m·μ − g·lr)`
//!   with the new `m`.
//!
//! A velocity that decays for a unit which stopped receiving gradient (`m·μ` each step)
//! enters the subnormal range: IEEE arithmetic keeps it there at a few ulps, each of its
//! products a microcode assist on x86, where TensorFlow holds zero.

use super::flush::{pow2_bits, product_threshold, within};
use super::{check_gradients, check_same, flush_subnormal, SharedGradient};
use crate::arch::simd::F32x;
use crate::error::{Error, Result};

/// The constants of one step of [`sgd_update`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdParams {
    /// Learning rate.
    pub lr: f32,
    /// Momentum `μ` in `[0, 1]`; used only with a velocity.
    pub momentum: f32,
    /// Nesterov momentum (with a velocity).
    pub nesterov: bool,
}

/// One step in place on `param` (and, with momentum, its velocity), exactly as Keras writes
/// it (see the module): with `velocity` `None`, `w −= g·lr`; with a velocity, `m = m·μ −
/// g·lr` and `w += m` (Nesterov: `w += m·μ − g·lr`). Every operand and every result that
/// would be subnormal is zero of its sign (TensorFlow's flush-to-zero; x86's rule for tiny
/// products). Separate multiplies and adds: every ISA, the scalar tail and any thread count
/// give the same bits. Vectorised on `ctx`'s ISA and split across threads for large
/// tensors. An error for lengths that differ, a momentum outside `[0, 1]`, or a non-zero
/// momentum without a velocity (Keras keeps none only for momentum 0; with one, momentum 0
/// leaves `−g·lr` in it and the weight Keras's).
pub fn sgd_update(
    ctx: &crate::Ctx,
    p: &SgdParams,
    param: &mut [f32],
    grad: &[f32],
    velocity: Option<&mut [f32]>,
) -> Result<()> {
    check_gradients(param.len(), grad.len(), &[])?;
    // The gradient is only read: `SUMMED` false never writes through the pointer.
    step::<false>(ctx, p, (param, velocity), (SharedGradient(grad.as_ptr().cast_mut()), &[]))
}

/// [`sgd_update`] on the gradient `grad + more[0] + more[1] + …`, summed elementwise in that
/// order (the bits of [`super::accumulate_in_order`] followed by [`sgd_update`]), which is
/// left in `grad`: the gradients of a batch's shards summed inside the step's loop.
pub fn sgd_update_summed(
    ctx: &crate::Ctx,
    p: &SgdParams,
    param: &mut [f32],
    grad: &mut [f32],
    more: &[&[f32]],
    velocity: Option<&mut [f32]>,
) -> Result<()> {
    check_gradients(param.len(), grad.len(), more)?;
    step::<true>(ctx, p, (param, velocity), (SharedGradient(grad.as_mut_ptr()), more))
}

/// The checks and the chunked, parallel step: the gradient is `param.len()` floats at `g`
/// plus, elementwise in order, those of `more`; with `SUMMED` the sum is written back.
fn step<const SUMMED: bool>(
    ctx: &crate::Ctx,
    p: &SgdParams,
    (param, velocity): (&mut [f32], Option<&mut [f32]>),
    (g, more): (SharedGradient, &[&[f32]]),
) -> Result<()> {
    if !(0.0..=1.0).contains(&p.momentum) {
        return Err(Error::InvalidArgument(format!("SGD momentum {} is not in [0, 1]", p.momentum)));
    }
    if let Some(v) = &velocity {
        check_same("velocity length vs parameter length", param.len(), v.len())?;
    } else if p.momentum != 0.0 {
        return Err(Error::InvalidArgument(format!("SGD momentum {} needs a velocity", p.momentum)));
    }
    let isa = ctx.isa.check()?;
    let k = SgdConstants::new(p);
    const CHUNK: usize = 8 * 1024;
    use rayon::prelude::*;
    // SAFETY (of each call below): `isa` was checked above; the chunks of w and m have one
    // length, and the gradient and every `more` slice hold `param.len()` floats (checked by
    // the callers), of which the chunk's from `at` are read (and with SUMMED written) by
    // this task only.
    match velocity {
        Some(m) => param.par_chunks_mut(CHUNK).zip(m.par_chunks_mut(CHUNK)).enumerate().for_each(|(c, (w, m))| {
            let at = c * CHUNK;
            // SAFETY: as above; `m` is as long as `w`.
            unsafe {
                if k.nesterov {
                    sgd_vectors::<SUMMED, true, true>(isa, &k, w, g.at(at), (more, at), m)
                } else {
                    sgd_vectors::<SUMMED, true, false>(isa, &k, w, g.at(at), (more, at), m)
                }
            }
        }),
        None => param.par_chunks_mut(CHUNK).enumerate().for_each(|(c, w)| {
            let at = c * CHUNK;
            // SAFETY: as above; without MOMENTUM the empty velocity is never read.
            unsafe { sgd_vectors::<SUMMED, false, false>(isa, &k, w, g.at(at), (more, at), &mut []) }
        }),
    }
    Ok(())
}

/// The lower bounds of the plain path (bits): per vector, every gradient, velocity and weight
/// is zero or at least this large in magnitude. Within them, with `μ` in [2^-20, 1] and
/// |lr| ≥ 2^-40, IEEE arithmetic gives TensorFlow's bits: `g·lr` and `m·μ` are zero or at
/// least 2^-100, as is the weight, and a sum of two normal-or-zero floats one of which is at
/// least 2^-100 is zero or normal (a subnormal sum is exact and below 2^-126, so the other
/// operand lies within 2^-126 of the first, and both are then multiples of 2^-124). The
/// one operand left, Nesterov's `m·μ` of the new velocity, may be tiny where that velocity
/// cancelled to a few ulps of 2^-123; it is then subtracted from a `g·lr` of at least
/// 2^-100 (the cancellation needs one), below half its ulp, so zero or the subnormal give
/// the same difference. No upper bounds: an overflow is infinite with or without flushing.
const PLAIN_G: u32 = pow2_bits(-60);
const PLAIN_M: u32 = pow2_bits(-80);
const PLAIN_W: u32 = pow2_bits(-100);

/// A step's constants, flushed as TensorFlow reads them, with the operand thresholds of the
/// careful path's products.
struct SgdConstants {
    /// `[lr, μ]`.
    k: [f32; 2],
    /// Operand thresholds (bits) for `g·lr` and `m·μ`.
    below: [u32; 2],
    /// Whether the plain path may run at all: the learning rate and `μ` within its bounds.
    plain_lr: bool,
    plain_mu: bool,
    nesterov: bool,
}

impl SgdConstants {
    fn new(p: &SgdParams) -> Self {
        let k = [p.lr, p.momentum].map(flush_subnormal);
        let [lr, mu] = k;
        let below = [product_threshold(Some(lr)), product_threshold(Some(mu))];
        SgdConstants {
            k,
            below,
            plain_lr: within(lr.abs(), -40, 127),
            // μ = 0 (a velocity kept at momentum 0) takes the careful path.
            plain_mu: within(mu, -20, 0),
            nesterov: p.nesterov,
        }
    }
}

/// The step on `w` (and with `MOMENTUM` its velocity `m`), a vector of `V` at a time (the
/// last one partial): a vector within [`PLAIN_G`] and its siblings in plain IEEE arithmetic,
/// any other on the careful path, which flushes every operand and result as TensorFlow
/// does and zeroes a product's operand below its threshold before the product, so no
/// subnormal reaches the floating-point units. The gradient is `g` plus, in order, the
/// floats from `at` of every slice of `more`; with `SUMMED` the sum is stored back at `g`.
/// Without `MOMENTUM`, `w −= g·lr` and the plain path's bounds hold with `μ` = 1.
///
/// # Safety
/// The ISA of `V` is enabled; `w.len()` floats at `g` are readable (and, with `SUMMED`,
/// writable, and no other reference reaches them); with `MOMENTUM`, `m` is as long as `w`;
/// every `more` slice holds `at + w.len()` floats.
#[inline(always)]
unsafe fn sgd_vectors_body<V: F32x, const SUMMED: bool, const MOMENTUM: bool, const NESTEROV: bool>(
    k: &SgdConstants,
    w: &mut [f32],
    g: *mut f32,
    (more, at): (&[&[f32]], usize),
    m: &mut [f32],
) {
    // SAFETY: registers only; the ISA of V is enabled (the contract).
    let [lr, mu] = k.k.map(|x| unsafe { V::splat(x) });
    let [tl, tm] = k.below;
    let plain_k = k.plain_lr && (!MOMENTUM || k.plain_mu);
    let mut i = 0;
    while i < w.len() {
        let n = V::LANES.min(w.len() - i);
        // SAFETY: n floats from i in each slice (m only with MOMENTUM); registers otherwise.
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
            let wv = ld(w.as_ptr());
            let mv = if MOMENTUM { ld(m.as_ptr()) } else { V::zero() };
            let inputs_plain =
                plain_k && !(gv.any_below(PLAIN_G) | wv.any_below(PLAIN_W) | (MOMENTUM && mv.any_below(PLAIN_M)));
            // Keras's operations, in its order; no FMA contraction. `None`: the careful path.
            // Nothing stops LLVM from computing this arithmetic before the check (it has no
            // side effects in LLVM's model), and on tiny values that costs a microcode assist
            // per operation: the `optimizer` bench's `tiny` cases show it. (Session 51: with
            // the gradient's loads in a helper shared with Adam's loop, LLVM did, and tiny
            // gradients ran 10-15x slower.)
            let mut plain = None;
            if inputs_plain {
                let step = gv.mul(lr);
                if !MOMENTUM {
                    plain = Some((mv, wv.sub(step)));
                } else {
                    let mn = mv.mul(mu).sub(step);
                    let add = if NESTEROV { mn.mul(mu).sub(step) } else { mn };
                    plain = Some((mn, wv.add(add)));
                }
            }
            let (mn, wn) = match plain {
                Some(r) => r,
                None => {
                    let (gv, mv, wv) = (gv.flush(), mv.flush(), wv.flush());
                    let step = gv.flush_below(tl).mul(lr);
                    if MOMENTUM {
                        // A sum of normal floats is exact when tiny: flushing it is x86's
                        // result.
                        let mn = mv.flush_below(tm).mul(mu).sub(step).flush();
                        let add = if NESTEROV { mn.flush_below(tm).mul(mu).sub(step).flush() } else { mn };
                        (mn, wv.add(add).flush())
                    } else {
                        (mv, wv.sub(step).flush())
                    }
                }
            };
            if MOMENTUM {
                st(mn, m.as_mut_ptr());
            }
            st(wn, w.as_mut_ptr());
        }
        i += n;
    }
}

crate::arch::simd::simd_dispatch! {
    /// [`sgd_vectors_body`] on `isa`.
    unsafe fn sgd_vectors<const SUMMED: bool, const MOMENTUM: bool, const NESTEROV: bool>(k: &SgdConstants, w: &mut [f32], g: *mut f32, more: (&[&[f32]], usize), m: &mut [f32]) => sgd_vectors_body
}

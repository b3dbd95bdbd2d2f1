//! Adam's update, in Keras's exact form.

use super::flush::{pow2_bits, product_threshold, quotient_flushed, within, MAX_EPSILON};
use super::{check_gradients, check_same, flush_subnormal, SharedGradient};
use crate::arch::simd::F32x;
use crate::error::{Error, Result};

/// Adam's hyper-parameters (Keras defaults). The betas are double precision, as Keras
/// holds them (Python floats): Keras computes `1 - β` from them in double precision and
/// rounds the result to f32 once (0.1 and 0.001 for the defaults), while `βᵗ` is taken of
/// the betas rounded to f32. [`AdamParams::one_minus_betas`] and [`adam_alpha`] follow that.
#[derive(Debug, Clone, Copy)]
pub struct AdamParams {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator fuzz.
    pub eps: f32,
    /// AdamW's decoupled weight decay `wd`: before the step, `param -= (param·wd)·lr`
    /// (Keras's `AdamW._apply_weight_decay`, in the same arithmetic as the step). `None`:
    /// Adam.
    pub weight_decay: Option<f32>,
}

impl Default for AdamParams {
    fn default() -> Self {
        AdamParams { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-7, weight_decay: None }
    }
}

impl AdamParams {
    /// `(1 - β1, 1 - β2)` as Keras computes them: in double precision, rounded to f32 once.
    pub fn one_minus_betas(&self) -> (f32, f32) {
        ((1.0 - self.beta1) as f32, (1.0 - self.beta2) as f32)
    }
}

/// One Adam step at (1-based) step `t`, in place on `param`, `m`, `v`, exactly as Keras
/// writes it: `m += (g - m)(1 - β1)`, `v += (g² - v)(1 - β2)` (the constants of
/// [`AdamParams::one_minus_betas`]), `α = lr·√(1 - β2ᵗ)/(1 - β1ᵗ)` (powers of the β's
/// rounded to f32, in f32),
/// `param -= α·m/(√v + ε)`, and in TensorFlow's arithmetic: every operand and every result
/// that would be subnormal is zero of its sign ([`flush_subnormal`],
/// whose module says why). Vectorised on `ctx`'s ISA (a square root and a division
/// per element: 16 lanes where AVX-512 is, not the baseline's 4), with separate multiplies
/// and adds and correctly rounded square roots and divisions, so every ISA and the scalar
/// tail give the same bits; large tensors are split across threads (elementwise, so the
/// result never depends on them). With [`AdamParams::weight_decay`], AdamW's decay first.
/// An error for ε outside (0, 2^100] or a negative or non-finite weight decay.
pub fn adam_update(
    ctx: &crate::Ctx,
    p: &AdamParams,
    t: u32,
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) -> Result<()> {
    check_gradients(param.len(), grad.len(), &[])?;
    // The gradient is only read: `SUMMED` false never writes through the pointer.
    step::<false>(ctx, p, t, (param, m, v), (SharedGradient(grad.as_ptr().cast_mut()), &[]))
}

/// [`adam_update`] on the gradient `grad + more[0] + more[1] + …`, summed elementwise in
/// that order (the bits of [`super::accumulate_in_order`] followed by [`adam_update`]),
/// which is left in `grad`. For gradients that arrive in parts (the shards of a batch):
/// the sum's loads and adds run in the step's loop, beside its square roots and divisions,
/// instead of in a pass of their own over every part.
#[allow(clippy::too_many_arguments)]
pub fn adam_update_summed(
    ctx: &crate::Ctx,
    p: &AdamParams,
    t: u32,
    param: &mut [f32],
    grad: &mut [f32],
    more: &[&[f32]],
    m: &mut [f32],
    v: &mut [f32],
) -> Result<()> {
    check_gradients(param.len(), grad.len(), more)?;
    step::<true>(ctx, p, t, (param, m, v), (SharedGradient(grad.as_mut_ptr()), more))
}

/// The checks and the chunked, parallel step of [`adam_update`] and [`adam_update_summed`]:
/// the gradient is `param.len()` floats at `g` (its length checked by the callers) plus,
/// elementwise in order, those of `more` (each as long); with `SUMMED` the sum is written
/// back at `g`.
fn step<const SUMMED: bool>(
    ctx: &crate::Ctx,
    p: &AdamParams,
    t: u32,
    (param, m, v): (&mut [f32], &mut [f32], &mut [f32]),
    (g, more): (SharedGradient, &[&[f32]]),
) -> Result<()> {
    check_same("first moment length vs parameter length", param.len(), m.len())?;
    check_same("second moment length vs parameter length", param.len(), v.len())?;
    if t == 0 {
        return Err(Error::InvalidArgument("Adam step t is 1-based; got 0".into()));
    }
    if !(p.eps > 0.0 && p.eps <= MAX_EPSILON) {
        return Err(Error::InvalidArgument(format!("Adam epsilon {:e} is not in (0, 2^100]", p.eps)));
    }
    if let Some(wd) = p.weight_decay.filter(|wd| !(wd.is_finite() && *wd >= 0.0)) {
        return Err(Error::InvalidArgument(format!("AdamW weight decay {wd} must be finite, >= 0")));
    }
    let isa = ctx.isa.check()?;
    let (c1, c2) = p.one_minus_betas();
    let mut k = StepConstants::new([c1, c2, adam_alpha(p, t), p.eps]);
    if let Some(wd) = p.weight_decay {
        k.add_decay(wd, p.lr);
    }
    const CHUNK: usize = 8 * 1024;
    use rayon::prelude::*;
    param.par_chunks_mut(CHUNK).zip(m.par_chunks_mut(CHUNK)).zip(v.par_chunks_mut(CHUNK)).enumerate().for_each(
        |(c, ((w, m), v))| {
            let at = c * CHUNK;
            // SAFETY: `isa` was checked above; the chunks of w, m, v have one length, and
            // the gradient and every `more` slice hold `param.len()` floats (checked by the
            // callers), of which the chunk's from `at` are read (and with SUMMED written)
            // by this task only.
            unsafe { adam_vectors::<SUMMED>(isa, &k, w, g.at(at), (more, at), m, v) }
        },
    );
    Ok(())
}

/// Adam's step size at step `t`: `lr·√(1 - β2ᵗ)/(1 - β1ᵗ)` in f32, the powers of the betas
/// rounded to f32 (Keras casts them to the variable's dtype before `power`).
pub fn adam_alpha(p: &AdamParams, t: u32) -> f32 {
    let tf = t as f32;
    let (b1, b2) = (p.beta1 as f32, p.beta2 as f32);
    p.lr * (1.0 - b2.powf(tf)).sqrt() / (1.0 - b1.powf(tf))
}

/// The bounds of the plain path ([`StepConstants::plain`]): per vector, every gradient,
/// moment and weight is zero or has a magnitude in these ranges (bits, inclusive; the
/// moment's and the weight's have no upper bound: infinities and NaN give the same in both
/// paths). Within them no operation of the step meets or makes a subnormal, so IEEE
/// arithmetic is TensorFlow's: with `1 - β1`, `1 - β2` in [2^-20, 1], |α| ≥ 2^-40 and
/// 2^-60 ≤ ε ≤ 2^10, a
/// non-zero `g - m` is a multiple of 2^-63 (the spacing of floats ≥ 2^-40), `(g - m)(1 - β1)`
/// at least 2^-83 and the new `m` at least 2^-64 (it is `m` plus a term under half of `m`,
/// or two terms ≥ 2^-41, or the term alone where `m` is 0, ≥ 2^-60); `g²` and `v` lie in
/// [2^-80, 2^38], so a non-zero `g² - v` is at least 2^-103, the term `(g² - v)(1 - β2)` at
/// least 2^-123 and the new `v` at least that and at most about 2^38; so `√v + ε` is at most
/// 2^20, `α m` at least 2^-104 and the quotient at least 2^-124; and the new weight is `w`
/// less a term under half of `w`, or two terms ≥ 2^-41, or the term alone.
const PLAIN_G: (u32, u32) = (pow2_bits(-40), pow2_bits(19));
const PLAIN_M: u32 = pow2_bits(-40);
const PLAIN_V: (u32, u32) = (pow2_bits(-80), pow2_bits(38));
const PLAIN_W: u32 = pow2_bits(-40);

/// An Adam step's constants, flushed as TensorFlow reads them, with the thresholds below
/// which the careful path zeroes an operand before a multiplication so that the product is
/// never subnormal (the zero of the right sign, as flush-to-zero gives).
struct StepConstants {
    /// `[1 - β1, 1 - β2, α, ε]`.
    k: [f32; 4],
    /// Operand thresholds (bits) for `(g - m)(1 - β1)`, `g·g`, `(g² - v)(1 - β2)`, `α m`.
    below: [u32; 4],
    /// Whether the plain path may run at all (the constants are within its bounds).
    plain: bool,
    /// AdamW's decay: `[wd, lr]` (flushed) and the operand thresholds of `w·wd` and
    /// `(w·wd)·lr`.
    decay: Option<([f32; 2], [u32; 2])>,
}

impl StepConstants {
    fn new(k: [f32; 4]) -> Self {
        let k = k.map(flush_subnormal);
        let [c1, c2, alpha, eps] = k;
        let below = [
            product_threshold(Some(c1)),
            product_threshold(None),
            product_threshold(Some(c2)),
            product_threshold(Some(alpha)),
        ];
        let plain = within(c1, -20, 0) && within(c2, -20, 0) && within(alpha.abs(), -40, 127) && within(eps, -60, 10);
        StepConstants { k, below, plain, decay: None }
    }

    /// Adds AdamW's decay by `wd` at learning rate `lr`. Its plain form needs `wd` in
    /// [2^-20, 1] and |lr| in [2^-40, 2^127]: then for a weight zero or of magnitude at
    /// least 2^-40 (the step's own bound) `w·wd` is at least 2^-60 and `(w·wd)·lr` at least
    /// 2^-100 (or infinite), and `w` less it is `w` less a term under half of `w`, or two
    /// terms ≥ 2^-41 (a multiple of 2^-64), or zero: never subnormal. The decayed weight
    /// must then lie within the step's bound too, which the kernel checks per vector.
    fn add_decay(&mut self, wd: f32, lr: f32) {
        let [wd, lr] = [wd, lr].map(flush_subnormal);
        self.plain &= within(wd, -20, 0) && within(lr.abs(), -40, 127);
        self.decay = Some(([wd, lr], [product_threshold(Some(wd)), product_threshold(Some(lr))]));
    }
}

/// [`adam_update`]'s step on `w` and its moments, a vector of `V` at a time (the last one
/// partial). A vector whose values lie within [`PLAIN_G`] and its siblings runs in plain
/// IEEE arithmetic, which is TensorFlow's there; any other runs the careful path, which
/// flushes every operand and result as TensorFlow does and never lets a subnormal reach
/// the floating-point units: operands of a multiplication below its threshold are zeroed
/// before it, and the quotient's tininess is decided on a scaled copy.
///
/// The gradient is `g` plus, in order, the floats from `at` of every slice of `more`; with
/// `SUMMED` the sum is stored back at `g`.
///
/// # Safety
/// The ISA of `V` is enabled; `w.len()` floats at `g` are readable (and, with `SUMMED`,
/// writable, and no other reference reaches them); `m` and `v` are as long as `w`, and
/// every `more` slice holds `at + w.len()` floats.
#[inline(always)]
unsafe fn adam_vectors_body<V: F32x, const SUMMED: bool>(
    k: &StepConstants,
    w: &mut [f32],
    g: *mut f32,
    (more, at): (&[&[f32]], usize),
    m: &mut [f32],
    v: &mut [f32],
) {
    // SAFETY: registers only; the ISA of V is enabled (the contract).
    let [c1, c2, a, e] = k.k.map(|x| unsafe { V::splat(x) });
    let [t1, tsq, t2, ta] = k.below;
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
            let (mv, vv, w0) = (ld(m.as_ptr()), ld(v.as_ptr()), ld(w.as_ptr()));
            let mut plain = k.plain
                && !(gv.any_outside(PLAIN_G.0, PLAIN_G.1)
                    | mv.any_below(PLAIN_M)
                    | vv.any_outside(PLAIN_V.0, PLAIN_V.1)
                    | w0.any_below(PLAIN_W));
            // The weight the step starts from: AdamW's decayed one (Keras's operations).
            let mut wv = w0;
            if let (true, Some(([wd, lr], _))) = (plain, k.decay) {
                wv = w0.sub(w0.mul(V::splat(wd)).mul(V::splat(lr)));
                plain = !wv.any_below(PLAIN_W);
            }
            let (mn, vn, wn) = if plain {
                // Separate multiply and add (no FMA contraction): Keras's operations.
                let mn = mv.add(gv.sub(mv).mul(c1));
                let vn = vv.add(gv.mul(gv).sub(vv).mul(c2));
                (mn, vn, wv.sub(a.mul(mn).div(vn.sqrt().add(e))))
            } else {
                let (gv, mv, vv) = (gv.flush(), mv.flush(), vv.flush());
                let mut wv = w0.flush();
                if let Some(([wd, lr], [twd, tlr])) = k.decay {
                    let term = wv.flush_below(twd).mul(V::splat(wd)).flush_below(tlr).mul(V::splat(lr));
                    wv = wv.sub(term).flush();
                }
                // A difference is exact when tiny; flushing it below the product's
                // threshold flushes it and keeps the product normal or zero.
                let mn = mv.add(gv.sub(mv).flush_below(t1).mul(c1)).flush();
                let gs = gv.flush_below(tsq);
                let vn = vv.add(gs.mul(gs).sub(vv).flush_below(t2).mul(c2)).flush();
                // √v and √v + ε are zero or normal: the root of a normal is normal, and a
                // sum of non-negative values is zero or at least the larger.
                let den = vn.sqrt().add(e);
                let q = quotient_flushed(mn.flush_below(ta).mul(a), den);
                (mn, vn, wv.sub(q).flush())
            };
            st(mn, m.as_mut_ptr());
            st(vn, v.as_mut_ptr());
            st(wn, w.as_mut_ptr());
        }
        i += n;
    }
}

crate::arch::simd::simd_dispatch! {
    /// [`adam_vectors_body`] on `isa`.
    unsafe fn adam_vectors<const SUMMED: bool>(k: &StepConstants, w: &mut [f32], g: *mut f32, more: (&[&[f32]], usize), m: &mut [f32], v: &mut [f32]) => adam_vectors_body
}

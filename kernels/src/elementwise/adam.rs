//! Adam's update, in Keras's exact form.

use super::check_same;
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
}

impl Default for AdamParams {
    fn default() -> Self {
        AdamParams { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-7 }
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
/// `param -= α·m/(√v + ε)`. Vectorised on `ctx`'s ISA (a square root and a division
/// per element: 16 lanes where AVX-512 is, not the baseline's 4), with separate multiplies
/// and adds and correctly rounded square roots and divisions, so every ISA and the scalar
/// tail give the same bits; large tensors are split across threads (elementwise, so the
/// result never depends on them).
pub fn adam_update(
    ctx: &crate::Ctx,
    p: &AdamParams,
    t: u32,
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) -> Result<()> {
    check_same("gradient length vs parameter length", param.len(), grad.len())?;
    check_same("first moment length vs parameter length", param.len(), m.len())?;
    check_same("second moment length vs parameter length", param.len(), v.len())?;
    if t == 0 {
        return Err(Error::InvalidArgument("Adam step t is 1-based; got 0".into()));
    }
    let isa = ctx.isa.check()?;
    let alpha = adam_alpha(p, t);
    const CHUNK: usize = 8 * 1024;
    use rayon::prelude::*;
    param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .for_each(|(((w, g), m), v)| adam_chunk(isa, p, alpha, w, g, m, v));
    Ok(())
}

/// Adam's step size at step `t`: `lr·√(1 - β2ᵗ)/(1 - β1ᵗ)` in f32, the powers of the betas
/// rounded to f32 (Keras casts them to the variable's dtype before `power`).
pub fn adam_alpha(p: &AdamParams, t: u32) -> f32 {
    let tf = t as f32;
    let (b1, b2) = (p.beta1 as f32, p.beta2 as f32);
    p.lr * (1.0 - b2.powf(tf)).sqrt() / (1.0 - b1.powf(tf))
}

fn adam_chunk(isa: crate::Isa, p: &AdamParams, alpha: f32, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    let (c1, c2) = p.one_minus_betas();
    // SAFETY: `isa` was checked by `adam_update`; the four slices have one length (checked
    // there, chunked alike).
    unsafe { adam_vectors(isa, [c1, c2, alpha, p.eps], w, g, m, v) };
}

/// [`adam_update`]'s step on `w` and its moments, `k` = `[1 - β1, 1 - β2, α, ε]`: whole
/// vectors of `V`, then the tail in scalars with the same operations in the same order.
///
/// # Safety
/// The ISA of `V` is enabled; `g`, `m`, `v` are as long as `w`.
#[inline(always)]
unsafe fn adam_vectors_body<V: crate::arch::simd::F32x>(
    k: [f32; 4],
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) {
    let full = w.len() / V::LANES * V::LANES;
    // SAFETY: every index is below `full <= len` of each slice; registers otherwise.
    unsafe {
        let [c1, c2, a, e] = k.map(|x| V::splat(x));
        for i in (0..full).step_by(V::LANES) {
            let gv = V::load(g.as_ptr().add(i));
            let mv = V::load(m.as_ptr().add(i));
            let vv = V::load(v.as_ptr().add(i));
            let wv = V::load(w.as_ptr().add(i));
            // Separate multiply and add (no FMA contraction), as the scalar tail.
            let mv = mv.add(gv.sub(mv).mul(c1));
            let vv = vv.add(gv.mul(gv).sub(vv).mul(c2));
            let wn = wv.sub(a.mul(mv).div(vv.sqrt().add(e)));
            mv.store(m.as_mut_ptr().add(i));
            vv.store(v.as_mut_ptr().add(i));
            wn.store(w.as_mut_ptr().add(i));
        }
    }
    let [c1, c2, alpha, eps] = k;
    for i in full..w.len() {
        m[i] += (g[i] - m[i]) * c1;
        v[i] += (g[i] * g[i] - v[i]) * c2;
        w[i] -= alpha * m[i] / (v[i].sqrt() + eps);
    }
}

crate::arch::simd::simd_dispatch! {
    /// [`adam_vectors_body`] on `isa`.
    unsafe fn adam_vectors(k: [f32; 4], w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) => adam_vectors_body
}

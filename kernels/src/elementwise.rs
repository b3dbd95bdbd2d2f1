//! The elementwise pieces a CNN needs, on rows of `channels` values (NHWC activations or
//! `[batch, features]` matrices): bias, ReLU, softmax with cross-entropy, and Adam.
//! Memory-bound loops written so LLVM vectorises them for any target; every reduction runs
//! in a fixed order, so results never depend on threads.

use crate::error::{Error, Result};

fn check_rows(what: &'static str, len: usize, channels: usize) -> Result<usize> {
    if channels == 0 {
        return Err(Error::InvalidArgument(format!("{what}: channel count must be at least 1")));
    }
    if !len.is_multiple_of(channels) {
        return Err(Error::ShapeMismatch { what, expected: len.div_ceil(channels) * channels, got: len });
    }
    Ok(len / channels)
}

fn check_same(what: &'static str, a: usize, b: usize) -> Result<()> {
    if a != b {
        return Err(Error::ShapeMismatch { what, expected: a, got: b });
    }
    Ok(())
}

/// `x[r][c] += bias[c]` for every row `r` (channels = `bias.len()`).
pub fn bias_add(x: &mut [f32], bias: &[f32]) -> Result<()> {
    check_rows("activation length vs a multiple of bias length", x.len(), bias.len())?;
    for row in x.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
    }
    Ok(())
}

/// Rows per block of [`bias_grad`]: a block's column sums are one fixed-order pass.
const BIAS_GRAD_BLOCK_FLOATS: usize = 64 * 1024;

/// `db[c] = Σ_r dy[r][c]`: the bias gradient. Rows are summed in fixed blocks (in order
/// within a block), the block sums then in block order, so the result never depends on
/// the number of threads.
pub fn bias_grad(dy: &[f32], channels: usize, db: &mut [f32]) -> Result<()> {
    let rows = check_rows("gradient length vs a multiple of channels", dy.len(), channels)?;
    check_same("bias gradient length vs channels", channels, db.len())?;
    let isa = crate::arch::default_isa();
    let block = (BIAS_GRAD_BLOCK_FLOATS / channels).max(1) * channels;
    let blocks = rows.div_ceil(block / channels);
    crate::scratch::with_scratch(crate::scratch::Slot::Aux, blocks * channels, |partial| {
        use rayon::prelude::*;
        partial.par_chunks_mut(channels).zip(dy.par_chunks(block)).for_each(|(out, rows)| {
            // SAFETY: `isa` is the checked default; rows is whole rows of `channels`, out holds
            // `channels` floats.
            unsafe { column_sums(isa, rows, channels, out) }
        });
        db.fill(0.0);
        for part in partial.chunks_exact(channels) {
            db.iter_mut().zip(part).for_each(|(d, p)| *d += p);
        }
    });
    Ok(())
}

/// `out[c0 + ..] = Σ_r x[r][c0 + ..]` for `NV` full vectors of columns from `c0`; even and
/// odd rows go to separate accumulators (two independent add chains), added at the end.
///
/// # Safety
/// `c0 + NV * LANES <= channels`; the rest as [`column_sums_body`].
#[inline(always)]
unsafe fn column_block<V: crate::arch::simd::F32x, const NV: usize>(
    x: &[f32],
    channels: usize,
    c0: usize,
    out: &mut [f32],
) {
    // SAFETY: every load is within one row of x at columns < c0 + NV*LANES <= channels.
    unsafe {
        let (mut even, mut odd) = ([V::zero(); NV], [V::zero(); NV]);
        let pairs = x.chunks_exact(2 * channels);
        let last = pairs.remainder();
        for pair in pairs {
            let (p, q) = (pair.as_ptr().add(c0), pair.as_ptr().add(channels + c0));
            for v in 0..NV {
                even[v] = even[v].add(V::load(p.add(v * V::LANES)));
                odd[v] = odd[v].add(V::load(q.add(v * V::LANES)));
            }
        }
        if !last.is_empty() {
            for (v, e) in even.iter_mut().enumerate() {
                *e = e.add(V::load(last.as_ptr().add(c0 + v * V::LANES)));
            }
        }
        for v in 0..NV {
            even[v].add(odd[v]).store(out.as_mut_ptr().add(c0 + v * V::LANES));
        }
    }
}

/// `out[c] = Σ_r x[r][c]` over the rows of `x` in a fixed order, blocks of columns held in
/// registers across all rows.
///
/// # Safety
/// `x.len()` is a multiple of `channels`, `out` holds `channels` floats; the ISA of `V` is
/// enabled.
#[inline(always)]
unsafe fn column_sums_body<V: crate::arch::simd::F32x>(x: &[f32], channels: usize, out: &mut [f32]) {
    assert!(out.len() >= channels && x.len().is_multiple_of(channels));
    let full = channels / V::LANES * V::LANES;
    let mut c0 = 0;
    // SAFETY: each block stays below `full <= channels`; the tail is loaded and stored partially.
    unsafe {
        while c0 + 4 * V::LANES <= full {
            column_block::<V, 4>(x, channels, c0, out);
            c0 += 4 * V::LANES;
        }
        while c0 + V::LANES <= full {
            column_block::<V, 1>(x, channels, c0, out);
            c0 += V::LANES;
        }
        if c0 < channels {
            let w = channels - c0;
            let mut acc = V::zero();
            for row in x.chunks_exact(channels) {
                acc = acc.add(V::load_partial(row.as_ptr().add(c0), w));
            }
            acc.store_partial(out.as_mut_ptr().add(c0), w);
        }
    }
}

crate::arch::simd::simd_dispatch! {
    /// [`column_sums_body`] on `isa`.
    unsafe fn column_sums(x: &[f32], channels: usize, out: &mut [f32]) => column_sums_body
}

/// Floats per task of the parallel elementwise passes (fixed: the split never depends on
/// the thread count, though these passes' results do not depend on the split anyway).
const ADD_CHUNK: usize = 16 * 1024;

/// Floats of `y` that [`accumulate_in_order`] keeps in L1 (8 KiB) while it adds every `x`.
const L1_WINDOW: usize = 2048;

/// `y = x₀ + x₁ + …` elementwise (added in that order), then `max(y, 0)` with `relu`: one
/// pass over memory, in chunks across the current rayon pool (Keras's `Add`, and `Add`
/// followed by a ReLU fused).
pub fn add_forward(xs: &[&[f32]], relu: bool, y: &mut [f32]) -> Result<()> {
    use rayon::prelude::*;
    if xs.is_empty() {
        return Err(Error::InvalidArgument("add_forward needs at least one input".into()));
    }
    for x in xs {
        check_same("add input length vs output length", y.len(), x.len())?;
    }
    y.par_chunks_mut(ADD_CHUNK).enumerate().for_each(|(k, yc)| {
        let at = k * ADD_CHUNK;
        add_chunk(xs, at, relu, yc);
    });
    Ok(())
}

/// [`add_forward`] on `y`, the elements of the inputs from `at` on.
fn add_chunk(xs: &[&[f32]], at: usize, relu: bool, y: &mut [f32]) {
    use wide::f32x8;
    let lane = |x: &[f32], i: usize| f32x8::from(<[f32; 8]>::try_from(&x[at + i..at + i + 8]).expect("8 lanes"));
    let full = y.len() / 8 * 8;
    for i in (0..full).step_by(8) {
        let mut acc = lane(xs[0], i);
        for x in &xs[1..] {
            acc += lane(x, i);
        }
        if relu {
            acc = acc.max(f32x8::ZERO);
        }
        y[i..i + 8].copy_from_slice(&acc.to_array());
    }
    for i in full..y.len() {
        let mut acc = xs[0][at + i];
        for x in &xs[1..] {
            acc += x[at + i];
        }
        y[i] = if relu { acc.max(0.0) } else { acc };
    }
}

/// `y += x` elementwise, in chunks across the current rayon pool, vectorised on `ctx`'s ISA
/// (plain additions: the same bits on every ISA and thread count). Gradients of a value
/// with several consumers are summed with it, in the consumers' fixed order.
pub fn accumulate(ctx: &crate::Ctx, y: &mut [f32], x: &[f32]) -> Result<()> {
    accumulate_in_order(ctx, y, &[x])
}

/// `y += xs[0]; y += xs[1]; ...` elementwise, in that order (the bits of [`accumulate`]
/// called once per `x`), in one pass over `y`: each chunk of `y` takes every `x` while it
/// is in L1, instead of `y` going through memory once per `x`. The shards' gradient arenas
/// are summed so. In chunks across the current rayon pool, vectorised on `ctx`'s ISA;
/// errors when an `x` is not as long as `y`.
pub fn accumulate_in_order(ctx: &crate::Ctx, y: &mut [f32], xs: &[&[f32]]) -> Result<()> {
    use rayon::prelude::*;
    for x in xs {
        check_same("accumulated length vs accumulator length", y.len(), x.len())?;
    }
    let isa = ctx.isa.check()?;
    y.par_chunks_mut(ADD_CHUNK).enumerate().for_each(|(k, yc)| {
        for (j, yw) in yc.chunks_mut(L1_WINDOW).enumerate() {
            let at = k * ADD_CHUNK + j * L1_WINDOW;
            for x in xs {
                // SAFETY: `isa` was checked; the window of x has the window's length.
                unsafe { accumulate_chunk(isa, yw, &x[at..at + yw.len()]) }
            }
        }
    });
    Ok(())
}

/// `y += x` elementwise on the calling thread, vectorised on `isa` (the same bits as
/// [`accumulate`]): for kernels that sum partial results of their own, where a plain loop
/// is compiled for the baseline ISA (four lanes on x86-64) and showed up in profiles.
///
/// # Panics
/// If the lengths differ (callers pass slices of one partial's length), or `isa` is not
/// available (callers pass a checked one).
pub(crate) fn add_assign(isa: crate::arch::Isa, y: &mut [f32], x: &[f32]) {
    assert!(y.len() == x.len() && isa.is_available(), "add_assign: lengths differ or the ISA is missing");
    // SAFETY: `isa` is available (asserted); the slices have one length.
    unsafe { accumulate_chunk(isa, y, x) }
}

/// `y += x` on vectors of `V`, the tail in scalars.
///
/// # Safety
/// The ISA of `V` is enabled; `x` is as long as `y`.
#[inline(always)]
unsafe fn accumulate_body<V: crate::arch::simd::F32x>(y: &mut [f32], x: &[f32]) {
    let full = y.len() / V::LANES * V::LANES;
    // SAFETY: every vector is below `full <= len` of both slices.
    unsafe {
        for i in (0..full).step_by(V::LANES) {
            V::load(y.as_ptr().add(i)).add(V::load(x.as_ptr().add(i))).store(y.as_mut_ptr().add(i));
        }
    }
    y[full..].iter_mut().zip(&x[full..]).for_each(|(a, b)| *a += b);
}

crate::arch::simd::simd_dispatch! {
    /// [`accumulate_body`] on `isa`.
    unsafe fn accumulate_chunk(y: &mut [f32], x: &[f32]) => accumulate_body
}

/// `x = max(x, 0)` in place.
pub fn relu_forward(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// `dx = dy` where the forward output `y > 0`, else 0 (in place on `dy`).
pub fn relu_backward(y: &[f32], dy: &mut [f32]) -> Result<()> {
    check_same("relu output length vs gradient length", y.len(), dy.len())?;
    dy.iter_mut().zip(y).for_each(|(d, &v)| *d = if v > 0.0 { *d } else { 0.0 });
    Ok(())
}

/// Row-wise softmax in place, numerically stable (the row maximum is subtracted first).
pub fn softmax(x: &mut [f32], classes: usize) -> Result<()> {
    check_rows("logits length vs a multiple of classes", x.len(), classes)?;
    for row in x.chunks_exact_mut(classes) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        row.iter_mut().for_each(|v| {
            *v = (*v - max).exp();
            sum += *v;
        });
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|v| *v *= inv);
    }
    Ok(())
}

/// Softmax + sparse categorical cross-entropy over a batch of logits `[rows, classes]`.
/// Returns the mean loss and writes `dlogits = (softmax - onehot(label)) / rows`, the
/// gradient of that mean. Labels must be `< classes`.
pub fn softmax_cross_entropy(logits: &[f32], labels: &[u32], classes: usize, dlogits: &mut [f32]) -> Result<f32> {
    let rows = check_rows("logits length vs a multiple of classes", logits.len(), classes)?;
    let scale = 1.0 / rows.max(1) as f32;
    let sum = softmax_cross_entropy_sum(logits, labels, classes, scale, dlogits)?;
    Ok((sum / rows.max(1) as f64) as f32)
}

/// [`softmax_cross_entropy`] for part of a batch: returns the *sum* of the rows' losses
/// and writes `dlogits = (softmax - onehot(label)) * grad_scale` (`1 / batch` for the
/// gradient of the whole batch's mean).
pub fn softmax_cross_entropy_sum(
    logits: &[f32],
    labels: &[u32],
    classes: usize,
    grad_scale: f32,
    dlogits: &mut [f32],
) -> Result<f64> {
    let rows = check_rows("logits length vs a multiple of classes", logits.len(), classes)?;
    check_same("label count vs logit rows", rows, labels.len())?;
    check_same("gradient length vs logits length", logits.len(), dlogits.len())?;
    if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l as usize >= classes) {
        return Err(Error::InvalidArgument(format!("label {l} at row {i} is not below the class count {classes}")));
    }
    dlogits.copy_from_slice(logits);
    softmax(dlogits, classes)?;
    let scale = grad_scale;
    let mut loss = 0.0f64;
    for (row, (&l, lg)) in dlogits.chunks_exact_mut(classes).zip(labels.iter().zip(logits.chunks_exact(classes))) {
        // log softmax computed from the logits (log-sum-exp), not from a rounded probability.
        let max = lg.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = max + lg.iter().map(|v| (v - max).exp()).sum::<f32>().ln();
        loss += f64::from(lse - lg[l as usize]);
        row[l as usize] -= 1.0;
        row.iter_mut().for_each(|v| *v *= scale);
    }
    Ok(loss)
}

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

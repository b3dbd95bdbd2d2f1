//! The activations vectorised over [`F32x`], written once for every ISA. The transcendental
//! functions are polynomials in the vector registers:
//!
//! - `e^x` and `e^x - 1`: `x = n ln 2 + r` (Cody–Waite split of ln 2, `|r| <= ln 2 / 2`),
//!   `e^r - 1 = r + r² P(r)` with Cephes's `expf` polynomial, then
//!   `e^x = 2^n (1 + q)` and `e^x - 1 = 2^n q + (2^n - 1)` (exact for `n = 0`, so small `x`
//!   keeps its relative accuracy); arguments below -87.34 (where `expf` goes subnormal)
//!   give 0, above 88.37 they are clamped there.
//! - `tanh`: Cephes's odd polynomial below |x| = 0.625, `q / (q + 2)` with `q = e^{2|x|} - 1`
//!   above.
//! - `ln(1 + u)` for `u` in `[0, 1]` (softplus): `2 atanh(s)`, `s = u / (2 + u) <= 1/3`, as
//!   its series to `s^15`.
//! - Φ (gelu): Cephes's `erff` polynomial below |z| = 1, its `erfcf` forms
//!   `e^{-z²} P(1/z²) / z` above (so the lower tail keeps its relative accuracy).
//!
//! Each is within a few ulps of the correctly rounded value (tested against the f64
//! reference per ISA); a sigmoid is `1 / (1 + t)` or `t / (1 + t)` with `t = e^{-|x|}`, so
//! both tails keep their relative accuracy.

use super::{Act, LEAKY_SLOPE, SELU_ALPHA, SELU_SCALE};
use crate::arch::simd::{simd_dispatch, F32x};

const LOG2E: f32 = core::f32::consts::LOG2_E;
/// ln 2 = LN2_HI + LN2_LO, LN2_HI with few mantissa bits so `n * LN2_HI` is exact.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// `e^x` is 0 below (flushing what `expf` returns as subnormals) and clamped above (where
/// `n` would leave the normal exponents).
const EXP_LO: f32 = -87.336_55;
const EXP_HI: f32 = 88.376_26;
/// Cephes `expf`: `e^r = 1 + r + r² (((((P0 r + P1) r + P2) r + P3) r + P4) r + P5)`.
const EXP_P: [f32; 6] = [1.9875693e-4, 1.3981999e-3, 8.333452e-3, 4.1665796e-2, 1.6666666e-1, 5e-1];
/// Cephes `tanhf` below 0.625: `x + x³ ((((T0 z + T1) z + T2) z + T3) z + T4)`, `z = x²`.
const TANH_T: [f32; 5] = [-5.7049887e-3, 2.063909e-2, -5.3739715e-2, 1.3331442e-1, -3.333328e-1];
/// Cephes `erff` below 1: `erf(z) = z T(z²)` (the last coefficient is Cephes's fit, an ulp
/// below 2/√π).
#[allow(clippy::approx_constant)]
const ERF_T: [f32; 7] =
    [7.853_861_4e-5, -8.010_193_6e-4, 5.188_327_6e-3, -2.685_381_2e-2, 1.128_358_5e-1, -3.761_262_6e-1, 1.128_379_1];
/// Cephes `erfcf` from 1 to 2: `erfc(z) = e^{-z²} P(1/z²) / z`.
const ERFC_P: [f32; 9] = [
    2.326_82e-2,
    -1.387_039_4e-1,
    3.687_424_7e-1,
    -5.824_733e-1,
    6.210_004_6e-1,
    -4.944_515_3e-1,
    3.404_88e-1,
    -2.741_127e-1,
    5.638_259_4e-1,
];
/// Cephes `erfcf` from 2 up: `erfc(z) = e^{-z²} R(1/z²) / z`.
const ERFC_R: [f32; 8] =
    [-1.047_766_4e1, 1.297_72e1, -7.495_518_7, 2.921_019, -1.015_265_3, 4.218_463_4e-1, -2.820_767_4e-1, 5.641_895e-1];
/// `1 / sqrt(2 pi)`.
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// Horner's rule, highest power first.
#[inline(always)]
unsafe fn horner<V: F32x>(x: V, c: &[f32]) -> V {
    // SAFETY: registers only; the caller enabled the ISA.
    unsafe {
        let mut p = V::splat(c[0]);
        for &k in &c[1..] {
            p = p.fma(x, V::splat(k));
        }
        p
    }
}

/// `(q, 2^n)` with `e^x = 2^n (1 + q)`, `x` clamped to `[EXP_LO, EXP_HI]`.
#[inline(always)]
unsafe fn exp_parts<V: F32x>(x: V) -> (V, V) {
    // SAFETY: registers only; the caller enabled the ISA.
    unsafe {
        let x = x.max(V::splat(EXP_LO)).min(V::splat(EXP_HI));
        let n = x.mul(V::splat(LOG2E)).round();
        let r = n.fma(V::splat(-LN2_HI), x);
        let r = n.fma(V::splat(-LN2_LO), r);
        let q = horner(r, &EXP_P).fma(r.mul(r), r);
        (q, n.pow2i())
    }
}

/// `e^x`; 0 below [`EXP_LO`].
#[inline(always)]
unsafe fn exp<V: F32x>(x: V) -> V {
    // SAFETY: registers only; the caller enabled the ISA.
    unsafe {
        let (q, p) = exp_parts(x);
        V::splat(EXP_LO).select_gt(x, V::zero(), p.fma(q, p))
    }
}

/// `e^x - 1`.
#[inline(always)]
unsafe fn expm1<V: F32x>(x: V) -> V {
    // SAFETY: registers only; the caller enabled the ISA.
    unsafe {
        let (q, p) = exp_parts(x);
        p.fma(q, p.sub(V::splat(1.0)))
    }
}

/// `|x|`.
#[inline(always)]
unsafe fn abs<V: F32x>(x: V) -> V {
    // SAFETY: registers only; the caller enabled the ISA.
    unsafe { x.max(V::zero().sub(x)) }
}

/// The logistic function.
#[inline(always)]
unsafe fn sigmoid<V: F32x>(x: V) -> V {
    // SAFETY: registers only; the caller enabled the ISA.
    unsafe {
        let t = exp(V::zero().sub(abs(x)));
        let d = V::splat(1.0).add(t);
        x.select_gt(V::zero(), V::splat(1.0).div(d), t.div(d))
    }
}

#[inline(always)]
unsafe fn tanh<V: F32x>(x: V) -> V {
    // SAFETY: registers only; the caller enabled the ISA.
    unsafe {
        let z = x.mul(x);
        let small = horner(z, &TANH_T).mul(z).fma(x, x);
        let a = abs(x);
        let q = expm1(a.add(a));
        let big = q.div(q.add(V::splat(2.0)));
        // tanh is odd: the sign of x onto |tanh|.
        let big = x.select_gt(V::zero(), big, V::zero().sub(big));
        a.select_gt(V::splat(0.625), big, small)
    }
}

/// `ln(1 + u)` for `u` in `[0, 1]`: `2 s Σ s^{2k} / (2k + 1)`, `s = u / (2 + u)`.
#[inline(always)]
unsafe fn log1p_unit<V: F32x>(u: V) -> V {
    const C: [f32; 8] = [1.0 / 15.0, 1.0 / 13.0, 1.0 / 11.0, 1.0 / 9.0, 1.0 / 7.0, 1.0 / 5.0, 1.0 / 3.0, 1.0];
    // SAFETY: registers only; the caller enabled the ISA.
    unsafe {
        let s = u.div(V::splat(2.0).add(u));
        let p = horner(s.mul(s), &C);
        s.add(s).mul(p)
    }
}

/// Φ(x) = erfc(-x / √2) / 2: `(1 + erf(z)) / 2` for |z| < 1, else from `erfc(|z|)`, which
/// keeps the relative accuracy of the lower tail (where `1 + erf` would cancel).
#[inline(always)]
unsafe fn phi<V: F32x>(x: V) -> V {
    // SAFETY: registers only; the caller enabled the ISA.
    unsafe {
        let (half, one) = (V::splat(0.5), V::splat(1.0));
        let z = x.mul(V::splat(core::f32::consts::FRAC_1_SQRT_2));
        let a = abs(z);
        let central = half.fma(z.mul(horner(z.mul(z), &ERF_T)), half);
        // Past |z| = 10, erfc(|z|) is below f32's range: clamp so 1/z² stays finite.
        let ac = a.min(V::splat(10.0));
        let q = one.div(ac);
        let y = q.mul(q);
        let poly = V::splat(2.0).select_gt(ac, horner(y, &ERFC_P), horner(y, &ERFC_R));
        let erfc = exp(V::zero().sub(ac.mul(ac))).mul(q).mul(poly);
        let erfc = a.select_gt(V::splat(10.0), V::zero(), erfc);
        let tail = z.select_gt(V::zero(), one.sub(half.mul(erfc)), half.mul(erfc));
        one.select_gt(a, central, tail)
    }
}

/// `f(x)`.
#[inline(always)]
unsafe fn apply<V: F32x>(a: Act, x: V) -> V {
    // SAFETY: registers only; the caller enabled the ISA.
    unsafe {
        let zero = V::zero();
        match a {
            Act::Linear => x,
            Act::Relu => x.max(zero),
            Act::Sigmoid => sigmoid(x),
            Act::Tanh => tanh(x),
            Act::Elu => x.select_gt(zero, x, expm1(x)),
            Act::Selu => V::splat(SELU_SCALE).mul(x.select_gt(zero, x, V::splat(SELU_ALPHA).mul(expm1(x)))),
            Act::Gelu => x.mul(phi(x)),
            Act::Silu => x.mul(sigmoid(x)),
            Act::LeakyRelu => x.select_gt(zero, x, V::splat(LEAKY_SLOPE).mul(x)),
            Act::Softplus => x.max(zero).add(log1p_unit(exp(zero.sub(abs(x))))),
        }
    }
}

/// `f'(x)` from `x` and `y = f(x)`, the scalar formulas of [`Act::derivative`].
#[inline(always)]
unsafe fn derivative<V: F32x>(a: Act, x: V, y: V) -> V {
    // SAFETY: registers only; the caller enabled the ISA.
    unsafe {
        let (zero, one) = (V::zero(), V::splat(1.0));
        match a {
            Act::Linear => one,
            Act::Relu => x.select_gt(zero, one, zero),
            Act::Sigmoid => y.mul(one.sub(y)),
            Act::Tanh => y.mul(y).fma(V::splat(-1.0), one),
            Act::Elu => x.select_gt(zero, one, y.add(one)),
            // x >= 0 takes the linear side: not (0 > x).
            Act::Selu => zero.select_gt(x, y.add(V::splat(SELU_SCALE * SELU_ALPHA)), V::splat(SELU_SCALE)),
            Act::Gelu => {
                let pdf = exp(V::splat(-0.5).mul(x).mul(x)).mul(V::splat(INV_SQRT_2PI));
                x.fma(pdf, phi(x))
            }
            Act::Silu => {
                let s = sigmoid(x);
                s.mul(x.fma(one.sub(s), one))
            }
            Act::LeakyRelu => x.select_gt(zero, one, V::splat(LEAKY_SLOPE)),
            Act::Softplus => sigmoid(x),
        }
    }
}

/// `y[i] = f(x[i])` over `len` floats; `y` may be `x` (in place).
///
/// # Safety
/// The ISA of `V` is enabled; `x` is readable and `y` writable for `len` floats, and they
/// are the same pointer or do not overlap.
#[inline(always)]
unsafe fn forward_body<V: F32x>(a: Act, x: *const f32, y: *mut f32, len: usize) {
    let full = len - len % V::LANES;
    // SAFETY: i + LANES <= full <= len for the whole vectors, the tail is len - full floats;
    // each vector is loaded before the store that may overwrite it.
    unsafe {
        for i in (0..full).step_by(V::LANES) {
            apply(a, V::load(x.add(i))).store(y.add(i));
        }
        if full < len {
            let n = len - full;
            apply(a, V::load_partial(x.add(full), n)).store_partial(y.add(full), n);
        }
    }
}

/// `dx[i] = dy[i] f'(x[i])` (`y = f(x)`) over `len` floats; `dx` may be `dy` (in place).
///
/// # Safety
/// The ISA of `V` is enabled; `x`, `y`, `dy` are readable and `dx` writable for `len`
/// floats, `dx` is `dy` or overlaps none of them.
#[inline(always)]
unsafe fn backward_body<V: F32x>(a: Act, x: *const f32, y: *const f32, dy: *const f32, dx: *mut f32, len: usize) {
    let full = len - len % V::LANES;
    // SAFETY: as in the forward.
    unsafe {
        for i in (0..full).step_by(V::LANES) {
            let d = derivative(a, V::load(x.add(i)), V::load(y.add(i)));
            V::load(dy.add(i)).mul(d).store(dx.add(i));
        }
        if full < len {
            let n = len - full;
            let d = derivative(a, V::load_partial(x.add(full), n), V::load_partial(y.add(full), n));
            V::load_partial(dy.add(full), n).mul(d).store_partial(dx.add(full), n);
        }
    }
}

simd_dispatch! {
    /// [`forward_body`] on `isa`.
    pub(super) unsafe fn forward(a: Act, x: *const f32, y: *mut f32, len: usize) => forward_body
}
simd_dispatch! {
    /// [`backward_body`] on `isa`.
    pub(super) unsafe fn backward(a: Act, x: *const f32, y: *const f32, dy: *const f32, dx: *mut f32, len: usize)
        => backward_body
}

//! Helpers shared by the integration tests: operand generation and error bounds.
#![allow(dead_code)]

use ember_kernels::conv::{ConvAlgo, Padding};
use proptest::prelude::*;

/// Unit roundoff bound used by every tolerance: f32 machine epsilon (2^-23).
pub const EPS: f64 = f32::EPSILON as f64;

/// A dimension in `0..=300`, half the time within one of a multiple of a tile size
/// (MR/NR of some kernel), where edge handling is most likely to go wrong.
pub fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..=300,
        (1usize..=12, prop::sample::select(vec![4usize, 6, 8, 12, 14, 16, 28, 32]), -1i64..=1)
            .prop_map(|(q, t, d)| ((q * t) as i64 + d).clamp(0, 300) as usize),
    ]
}

/// A scalar coefficient: the special values 0, 1, -1 or something arbitrary.
pub fn coeff() -> impl Strategy<Value = f32> {
    prop_oneof![Just(0.0f32), Just(1.0f32), Just(-1.0f32), -2.0f32..2.0]
}

pub use ember_kernels::reference::fill_uniform as fill;

/// Asserts `|got - want| <= tol[i]` elementwise, reporting the worst offender.
pub fn assert_close(got: &[f32], want: &[f32], tol: &[f64], what: &str) {
    assert_eq!(got.len(), want.len());
    for i in 0..got.len() {
        let (g, w) = (f64::from(got[i]), f64::from(want[i]));
        assert!(
            (g - w).abs() <= tol[i] || (g.is_nan() && w.is_nan()),
            "{what}: element {i}: got {g}, want {w}, |diff| {} > tol {}",
            (g - w).abs(),
            tol[i]
        );
    }
}

/// Proptest case count: `PROPTEST_CASES` when set (the QEMU run lowers it), else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Padding: valid, TensorFlow same, or explicit 0..3 on each side.
pub fn padding() -> impl Strategy<Value = Padding> {
    prop_oneof![
        Just(Padding::Valid),
        Just(Padding::Same),
        (0usize..3, 0usize..3, 0usize..3, 0usize..3).prop_map(|(top, bottom, left, right)| Padding::Explicit {
            top,
            bottom,
            left,
            right
        }),
    ]
}

/// Winograd's measured extra allowance for the concrete algorithm `algo`, in units of ε·M
/// (M the largest Σ|terms| of the tensor): 4x the worst error `winograd_error` measures,
/// rounded up to a power of two (see the convolution tests' module docs); 0 otherwise.
pub fn winograd_extra(algo: ConvAlgo) -> usize {
    match algo {
        ConvAlgo::Winograd2x3 => 8,
        ConvAlgo::Winograd4x3 => 128,
        _ => 0,
    }
}

/// `(terms + 2)·ε·mag[i] + extra·ε·max(mag)` per element: an f32 sum of `terms` products
/// with magnitudes `mag`, plus an algorithm's extra allowance.
pub fn tol(mag: &[f32], terms: usize, extra: usize) -> Vec<f64> {
    let floor = extra as f64 * EPS * mag.iter().fold(0f64, |m, &v| m.max(f64::from(v)));
    mag.iter().map(|&m| (terms as f64 + 2.0) * EPS * f64::from(m) + floor + 1e-30).collect()
}

/// TensorFlow's view of an operand: a subnormal is zero of its sign (denormals-are-zero).
pub fn daz(x: f32) -> f32 {
    if x.is_subnormal() {
        0.0f32.copysign(x)
    } else {
        x
    }
}

/// An operation's result under x86's flush-to-zero, from its value in f64 (exact for
/// products of two f32, and rounding through f64 first is innocuous for one f32 operation):
/// zero of its sign when the value rounded to 24 bits with an unbounded exponent is below
/// the smallest normal (found in the normal range, 2^100 up), else the value rounded to f32;
/// and whether it is one that IEEE arithmetic rounds up to the smallest normal and x86
/// flushes.
pub fn ftz_window(r: f64) -> (f32, bool) {
    let scaled = (r * 2f64.powi(100)) as f32;
    if scaled.abs() < f32::MIN_POSITIVE * 2f32.powi(100) {
        let window = (r as f32).abs() == f32::MIN_POSITIVE;
        (if r.is_sign_negative() { -0.0 } else { 0.0 }, window)
    } else {
        (r as f32, false)
    }
}

/// Values of magnitude `10^e` for `e` uniform in `[lo, hi]`, signs alternating with the
/// draws: tiny ones square to subnormals or are subnormal themselves.
pub fn tiny(seed: u64, len: usize, (lo, hi): (f32, f32)) -> Vec<f32> {
    fill(seed, len)
        .iter()
        .zip(fill(seed + 1000, len))
        .map(|(&u, s)| 10f32.powf(lo + (u + 1.0) / 2.0 * (hi - lo)).copysign(s))
        .collect()
}

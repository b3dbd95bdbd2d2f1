//! TensorFlow's flush-to-zero, one value at a time, and the pieces the optimizers' careful
//! paths build it from (products' thresholds, a quotient's tininess): Adam's and the
//! RMS family's arithmetic follow it.
//!
//! TensorFlow runs its CPU kernels with the MXCSR's flush-to-zero and denormals-are-zero
//! bits set: a subnormal operand counts as zero of its sign, and a result
//! that would be subnormal is zero of its sign. Keras's optimizer steps are sequences of
//! such operations, so where a gradient or a moment is tiny (a gradient of 1e-20 squares to
//! the subnormal 1e-40; a first moment of a unit that stopped receiving gradient decays
//! into the subnormal range and, in IEEE arithmetic, stops there at a few ulps) Keras holds
//! zeros where IEEE arithmetic holds subnormals. Ember cannot set those bits (LLVM assumes
//! the default floating-point environment, and changing it under compiled code is undefined
//! behaviour), so where it follows TensorFlow (Adam's step) it flushes each operand and
//! result itself. One subtlety: x86 decides that a result is tiny after rounding it to 24
//! bits with an unbounded exponent, so a product or quotient whose exact value lies in the
//! quarter ulp below the smallest normal that IEEE rounds up to it is still zero there
//! (checked against TensorFlow in session 42): Adam's kernel computes products' thresholds
//! and quotients' tininess by that rule. The other gain: x86 cores take a microcode assist of
//! tens to hundreds of cycles for a multiply, divide or square root that reads or makes a
//! subnormal, and a step of Adam over a layer whose units had died ran 8-22x slower for it
//! (BENCHMARKS.md, sessions 41 and 42).

use crate::arch::simd::F32x;

/// `x` if it is zero, normal, infinite or NaN; zero of its sign if it is subnormal.
#[inline]
pub fn flush_subnormal(x: f32) -> f32 {
    crate::arch::simd::flush_lane_below(x, crate::arch::simd::MIN_NORMAL_BITS)
}

/// The bits of `2^e` (`-126 <= e <= 127`).
pub(super) const fn pow2_bits(e: i32) -> u32 {
    ((e + 127) as u32) << 23
}

/// The largest ε the optimizers' steps take: [`quotient_flushed`] decides tininess exactly
/// for denominators up to about 2^105, and their square roots (`√v`, `√(s + ε)`) are at most
/// 2^64.
pub(super) const MAX_EPSILON: f32 = f32::from_bits(pow2_bits(100));

/// Whether `x` lies in `[2^lo, 2^hi]` (false for NaN): the optimizers' tests of their
/// constants against a plain path's bounds.
pub(super) fn within(x: f32, lo: i32, hi: i32) -> bool {
    x >= 2f32.powi(lo) && x <= 2f32.powi(hi)
}

/// Whether x86's flush-to-zero zeroes the product `x·c`: its exact value (in f64: 24-bit
/// factors) rounded to 24 bits with an unbounded exponent is below the smallest normal.
/// x86 detects a tiny result after that rounding, so a product that IEEE arithmetic rounds
/// up to the smallest normal from just below it is still zero under flush-to-zero
/// (TensorFlow agrees: checked in session 42).
pub(super) fn product_is_tiny(x: f32, c: f32) -> bool {
    // 2^100 moves the product into f32's normal range, where the cast rounds to 24 bits.
    let scaled = (f64::from(x) * f64::from(c)).abs() * 2f64.powi(100);
    (scaled as f32) < f32::MIN_POSITIVE * 2f32.powi(100)
}

/// The smallest magnitude (as bits) whose product with `c` (with itself for `c` = `None`)
/// is not tiny; at least the smallest normal's, since the operand is flushed too.
pub(super) fn product_threshold(c: Option<f32>) -> u32 {
    let tiny = |b: u32| {
        let x = f32::from_bits(b);
        product_is_tiny(x, c.unwrap_or(x))
    };
    // The predicate is monotone in the magnitude: bisect the finite values.
    let (mut lo, mut hi) = (0u32, f32::INFINITY.to_bits());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if tiny(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo.max(f32::MIN_POSITIVE.to_bits())
}

/// `num / den` under flush-to-zero, for `num` zero or normal and `den` positive (or NaN):
/// the quotient is tiny exactly when that of `num` clamped to ±2^-20 and scaled by 2^100 is
/// below 2^-26 (the clamp cannot hide a tiny quotient: `den` is at most about 2^64 + ε, so
/// a numerator beyond 2^-20 gives one far above the smallest normal), computed in the
/// normal range where IEEE rounding is x86's unbounded one. Tiny quotients' numerators are
/// zeroed (keeping their sign) before the real division, so it never makes a subnormal.
///
/// # Safety
/// The ISA of `V` is enabled.
#[inline(always)]
pub(super) unsafe fn quotient_flushed<V: F32x>(num: V, den: V) -> V {
    // SAFETY: arithmetic only.
    unsafe {
        let clamp = V::splat(2f32.powi(-20));
        let scaled = num.min(clamp).max(V::zero().sub(clamp)).mul(V::splat(2f32.powi(100))).div(den);
        let magnitude = scaled.max(V::zero().sub(scaled));
        // Every finite lane lies below this threshold.
        let signed_zero = num.flush_below(0x7fff_ffff);
        V::splat(2f32.powi(-26)).select_gt(magnitude, signed_zero, num).div(den)
    }
}

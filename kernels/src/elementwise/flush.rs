//! TensorFlow's flush-to-zero, one value at a time: Adam's arithmetic follows it.
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

/// `x` if it is zero, normal, infinite or NaN; zero of its sign if it is subnormal.
#[inline]
pub fn flush_subnormal(x: f32) -> f32 {
    crate::arch::simd::flush_lane_below(x, crate::arch::simd::MIN_NORMAL_BITS)
}

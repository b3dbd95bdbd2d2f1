//! Dropout's keep mask: element `i` of a mask with key `k` is dropped when the top 24 bits
//! of `lowbias32(lowbias32(i ^ k₀) ^ k₁)` (Wellons's bijective 32-bit hash; `k₀`, `k₁` the
//! key's low and high halves) fall below `threshold`, and `scale` otherwise. A counter-based
//! hash: no generator state, so the mask of a sample is the same however a batch is split,
//! and the loop vectorises. The arithmetic is 32-bit integer multiplies and shifts, which
//! the x86-64 baseline (SSE2) has no vector form of (`pmulld` is SSE4.1): here the loop is
//! compiled under each ISA's `#[target_feature]` wrapper, where LLVM vectorises it with
//! AVX2's or AVX-512's integer multiplies. Integer arithmetic: every ISA gives the same
//! bits; `reference::dropout_mask` is the definition written apart.

use crate::arch::simd::{simd_dispatch, F32x};
use crate::error::Result;
use crate::Ctx;

/// Wellons's `lowbias32` integer hash.
#[inline(always)]
fn lowbias32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

/// The mask loop (`V` only picks the `#[target_feature]` wrapper it is compiled in).
///
/// # Safety
/// The ISA of `V` is enabled.
#[inline(always)]
unsafe fn mask_body<V: F32x>(key: u64, threshold: u32, scale: f32, mask: &mut [f32]) {
    let (k0, k1) = (key as u32, (key >> 32) as u32);
    for (i, m) in mask.iter_mut().enumerate() {
        let h = lowbias32(lowbias32(i as u32 ^ k0) ^ k1) >> 8;
        *m = if h < threshold { 0.0 } else { scale };
    }
}

simd_dispatch! {
    /// [`mask_body`] on `isa`.
    unsafe fn mask(key: u64, threshold: u32, scale: f32, mask: &mut [f32]) => mask_body
}

/// Writes dropout's keep mask for `key` into `mask` (`[len]`, len below 2^32): `0` where
/// the element is dropped (hash below `threshold`, a fraction of 2^24), `scale` where kept.
pub fn dropout_mask(ctx: &Ctx, key: u64, threshold: u32, scale: f32, out: &mut [f32]) -> Result<()> {
    let isa = ctx.isa.check()?;
    if u32::try_from(out.len()).is_err() {
        return Err(crate::Error::InvalidArgument(format!("a dropout mask of {} elements (at most 2^32)", out.len())));
    }
    // SAFETY: `isa` was checked.
    unsafe { mask(isa, key, threshold, scale, out) };
    Ok(())
}

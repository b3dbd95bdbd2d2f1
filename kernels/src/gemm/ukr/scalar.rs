//! Portable fallback microkernel: plain Rust on fixed-size arrays, which LLVM keeps in
//! registers and vectorises for the baseline target (SSE2 on x86-64, NEON on AArch64).

use super::store_tile_generic;
use super::UkrArgs;

/// `f32-gemm-MRxNR-scalar`.
///
/// # Safety
/// The [`super::UkrFn`] contract.
#[inline(always)]
unsafe fn ukr_generic<const MR: usize, const NR: usize>(args: &UkrArgs) {
    let mut acc = [[0.0f32; NR]; MR];
    // SAFETY: the contract guarantees kc*MR floats at `a` and kc*NR floats at `b`.
    let (a, b) = unsafe {
        (core::slice::from_raw_parts(args.a, args.kc * MR), core::slice::from_raw_parts(args.b, args.kc * NR))
    };
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        for i in 0..MR {
            for j in 0..NR {
                acc[i][j] += ap[i] * bp[j];
            }
        }
    }
    let tile: &[f32] = acc.as_flattened();
    // SAFETY: forwarded contract.
    unsafe { store_tile_generic(tile, NR, args) }
}

/// `f32-gemm-4x8-scalar`.
///
/// # Safety
/// The [`super::UkrFn`] contract.
pub(crate) unsafe fn ukr_4x8(args: &UkrArgs) {
    // SAFETY: forwarded contract.
    unsafe { ukr_generic::<4, 8>(args) }
}

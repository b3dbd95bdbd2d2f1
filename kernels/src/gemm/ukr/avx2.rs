//! AVX2 + FMA3 microkernels: `MR` rows x `NV` 8-lane vectors, packed (B panels aligned, A
//! broadcast from its packed panel) and unpacked ("nopack": A and B read in place). Full
//! tiles with unit column stride store straight from registers; edge tiles go through a
//! stack tile. AVX2 has sixteen vector registers: a tile's `MR·NV` accumulators, its `NV`
//! B vectors and one broadcast must fit in them.

use super::store_tile_generic;
use super::UkrArgs;
use core::arch::x86_64::*;

/// # Safety
/// The [`super::UkrFn`] contract; the CPU must support AVX2 and FMA.
#[inline(always)]
unsafe fn ukr_generic<const MR: usize, const NV: usize>(args: &UkrArgs) {
    // SAFETY: the contract guarantees kc*MR floats at `a`, kc*NV*8 aligned floats at `b`,
    // the m x n tile of C (plus bias) in bounds, and AVX2+FMA on this CPU.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); NV]; MR];
        let (mut a, mut b) = (args.a, args.b);
        for _ in 0..args.kc {
            let mut bv = [_mm256_setzero_ps(); NV];
            for (v, bvv) in bv.iter_mut().enumerate() {
                *bvv = _mm256_load_ps(b.add(8 * v));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*a.add(i));
                for (accv, bvv) in row.iter_mut().zip(bv.iter()) {
                    *accv = _mm256_fmadd_ps(av, *bvv, *accv);
                }
            }
            a = a.add(MR);
            b = b.add(8 * NV);
        }
        store_acc(&acc, args);
    }
}

/// Stores an accumulator tile: a whole tile with unit column stride straight from the
/// registers (without the scaling when alpha is 1 and beta 0, as Winograd's per-position
/// products are); an edge or strided tile through a stack copy.
///
/// # Safety
/// The C and bias parts of the [`super::UkrFn`] contract; AVX2 and FMA.
#[inline(always)]
unsafe fn store_acc<const MR: usize, const NV: usize>(acc: &[[__m256; NV]; MR], args: &UkrArgs) {
    // SAFETY: the m x n tile of C (and n bias floats) are in bounds; AVX2+FMA are enabled.
    unsafe {
        if args.csc != 1 || args.m != MR || args.n != 8 * NV {
            let mut buf = [[[0.0f32; 8]; NV]; MR];
            for (brow, row) in buf.iter_mut().zip(acc) {
                for (b, &r) in brow.iter_mut().zip(row) {
                    _mm256_storeu_ps(b.as_mut_ptr(), r);
                }
            }
            store_tile_generic(buf.as_flattened().as_flattened(), 8 * NV, args);
            return;
        }
        if args.alpha == 1.0 && args.beta == 0.0 && args.bias.is_null() && !args.relu {
            for (i, row) in acc.iter().enumerate() {
                let crow = args.c.add(i * args.rsc);
                for (v, &r) in row.iter().enumerate() {
                    _mm256_storeu_ps(crow.add(8 * v), r);
                }
            }
            return;
        }
        let alpha = _mm256_set1_ps(args.alpha);
        let beta = _mm256_set1_ps(args.beta);
        let zero = _mm256_setzero_ps();
        for (i, row) in acc.iter().enumerate() {
            let crow = args.c.add(i * args.rsc);
            for (v, accv) in row.iter().enumerate() {
                let cp = crow.add(8 * v);
                let mut r = _mm256_mul_ps(*accv, alpha);
                if args.beta != 0.0 {
                    r = _mm256_fmadd_ps(beta, _mm256_loadu_ps(cp), r);
                }
                if !args.bias.is_null() {
                    r = _mm256_add_ps(r, _mm256_loadu_ps(args.bias.add(8 * v)));
                }
                if args.relu {
                    r = _mm256_max_ps(r, zero);
                }
                _mm256_storeu_ps(cp, r);
            }
        }
    }
}

macro_rules! avx2_kernel {
    ($name:ident, $mr:literal, $nv:literal) => {
        /// An AVX2+FMA microkernel; its tile is in its name.
        ///
        /// # Safety
        /// The [`super::UkrFn`] contract; the CPU must support AVX2 and FMA.
        #[target_feature(enable = "avx2,fma")]
        pub(crate) unsafe fn $name(args: &UkrArgs) {
            // SAFETY: forwarded contract; this function's target features are enabled.
            unsafe { ukr_generic::<$mr, $nv>(args) }
        }
    };
}

avx2_kernel!(ukr_6x16, 6, 2);
avx2_kernel!(ukr_12x8, 12, 1);

/// The unpacked ("nopack") variant, as `avx512::ukr_nopack_generic`: reads A in place
/// (element `(i, p)` at `a + i*rsa + p*csa`, broadcast) and B rows in place (row `p` at
/// `b + p*rsb`, unit column stride, masked to `n` columns), over the whole depth `kc`. For
/// skinny products, where packing would cost as much as the arithmetic (Winograd's
/// per-position products). Rows past `m` re-read row `m - 1`.
///
/// Unlike AVX-512's there is no variant reading A from a packed panel: on a Zen 3 the
/// packing (a scalar transpose) cost Winograd's products more than the in-place broadcasts
/// it replaces (resnet example, `perf` samples: packing A plus the packed-A kernel 24,068,
/// the in-place kernel 19,601 for the same products).
///
/// # Safety
/// The [`super::UkrFn`] contract with A and B described by the strides instead of packed
/// panels: every `(i < m, p < kc)` of A and `(p < kc, j < n)` of B readable.
#[inline(always)]
unsafe fn ukr_nopack_generic<const MR: usize, const NV: usize>(args: &UkrArgs) {
    // SAFETY: forwarded contract; FULL only when B's rows have all 8·NV columns.
    unsafe {
        // Whole-width B rows load without masks (the masked load is a slower instruction).
        if args.n == 8 * NV {
            ukr_nopack_loop::<MR, NV, true>(args)
        } else {
            ukr_nopack_loop::<MR, NV, false>(args)
        }
    }
}

/// One [`ukr_nopack_body`] behind a `#[target_feature]` boundary of its own, so that each
/// variant keeps its tile in registers (as in `avx512::ukr_nopack_loop`).
///
/// # Safety
/// See [`ukr_nopack_body`]; the CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn ukr_nopack_loop<const MR: usize, const NV: usize, const FULL: bool>(args: &UkrArgs) {
    // SAFETY: forwarded contract; this function's target features are enabled.
    unsafe { ukr_nopack_body::<MR, NV, FULL>(args) }
}

/// [`ukr_nopack_generic`]'s loop; with `FULL`, B's rows have all `8·NV` columns.
///
/// # Safety
/// See [`ukr_nopack_generic`]; `FULL` only when `n == 8·NV`.
#[inline(always)]
unsafe fn ukr_nopack_body<const MR: usize, const NV: usize, const FULL: bool>(args: &UkrArgs) {
    // SAFETY: rows are clamped below m and B loads are masked to the first n columns (or
    // whole, with FULL, when n covers them), so every address read is an element of A or B
    // that the contract says is readable (a masked-off lane is not accessed and cannot fault).
    unsafe {
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mut masks = [_mm256_setzero_si256(); NV];
        for (v, mk) in masks.iter_mut().enumerate() {
            let cols = args.n.saturating_sub(8 * v).min(8) as i32;
            *mk = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), lane);
        }
        let mut rows = [args.a; MR];
        for (i, r) in rows.iter_mut().enumerate() {
            *r = args.a.add(i.min(args.m - 1) * args.rsa);
        }
        let mut acc = [[_mm256_setzero_ps(); NV]; MR];
        let mut b = args.b;
        let mut off = 0;
        for _ in 0..args.kc {
            let mut bv = [_mm256_setzero_ps(); NV];
            for (v, bvv) in bv.iter_mut().enumerate() {
                // `wrapping_add`: with an all-zero mask the vector may start past the end of
                // B, and an out-of-bounds `add` is UB even when nothing is loaded.
                *bvv = if FULL {
                    _mm256_loadu_ps(b.add(8 * v))
                } else {
                    _mm256_maskload_ps(b.wrapping_add(8 * v), masks[v])
                };
            }
            for (row, r) in acc.iter_mut().zip(rows.iter()) {
                let av = _mm256_broadcast_ss(&*r.add(off));
                for (accv, bvv) in row.iter_mut().zip(bv.iter()) {
                    *accv = _mm256_fmadd_ps(av, *bvv, *accv);
                }
            }
            off += args.csa;
            // After the last row this points `rsb` past it, possibly beyond the allocation.
            b = b.wrapping_add(args.rsb);
        }
        store_acc(&acc, args);
    }
}

macro_rules! avx2_nopack_kernel {
    ($name:ident, $mr:literal, $nv:literal) => {
        /// An AVX2+FMA unpacked microkernel; its tile is in its name.
        ///
        /// # Safety
        /// See [`ukr_nopack_generic`]; the CPU must support AVX2 and FMA.
        #[target_feature(enable = "avx2,fma")]
        pub(crate) unsafe fn $name(args: &UkrArgs) {
            // SAFETY: forwarded contract; this function's target features are enabled.
            unsafe { ukr_nopack_generic::<$mr, $nv>(args) }
        }
    };
}

avx2_nopack_kernel!(nopack_6x16, 6, 2);
avx2_nopack_kernel!(nopack_4x24, 4, 3);
avx2_nopack_kernel!(nopack_12x8, 12, 1);
avx2_nopack_kernel!(nopack_8x8, 8, 1);

//! AVX-512F microkernels: `MR` rows x `NV` 16-lane vectors. B rows are aligned vector
//! loads, A values broadcasts folded into the FMAs; C is stored with lane masks, so edge
//! columns need no scalar path when C has unit column stride.

use super::store_tile_generic;
use super::UkrArgs;
use core::arch::x86_64::*;

/// # Safety
/// The [`super::UkrFn`] contract; the CPU must support AVX-512F.
#[inline(always)]
unsafe fn ukr_generic<const MR: usize, const NV: usize>(args: &UkrArgs) {
    // SAFETY: the contract guarantees kc*MR floats at `a`, kc*NV*16 aligned floats at `b`,
    // the m x n tile of C (plus bias) in bounds, and AVX-512F on this CPU.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); NV]; MR];
        let (mut a, mut b) = (args.a, args.b);
        for _ in 0..args.kc {
            let mut bv = [_mm512_setzero_ps(); NV];
            for (v, bvv) in bv.iter_mut().enumerate() {
                *bvv = _mm512_load_ps(b.add(16 * v));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(i));
                for (accv, bvv) in row.iter_mut().zip(bv.iter()) {
                    *accv = _mm512_fmadd_ps(av, *bvv, *accv);
                }
            }
            a = a.add(MR);
            b = b.add(16 * NV);
        }

        store_acc(&acc, args);
    }
}

/// Stores an accumulator tile: a whole tile with unit column stride and no bias or ReLU
/// straight from the registers; otherwise through a stack copy of the tile, with masked
/// vector stores when C has unit column stride.
///
/// Every read of `acc` has constant indices (loops of constant trip count, unrolled): a row
/// loop bounded by the runtime `m` would index it dynamically and keep the whole tile in
/// memory, which cost a 1.8 KB memset and memcpy per call of the 14x32 kernels (~15% of a
/// 32-deep product, as Winograd's are).
///
/// # Safety
/// The C and bias parts of the [`super::UkrFn`] contract; AVX-512F.
#[inline(always)]
unsafe fn store_acc<const MR: usize, const NV: usize>(acc: &[[__m512; NV]; MR], args: &UkrArgs) {
    // SAFETY: the m x n tile of C (and n bias floats) are in bounds; AVX-512F is enabled.
    unsafe {
        let alpha = _mm512_set1_ps(args.alpha);
        if args.csc == 1 && args.m == MR && args.n == 16 * NV && args.bias.is_null() && !args.relu {
            // Winograd's per-position products (alpha 1, beta 0, 32-64 deep): the scaling
            // alone was 28 multiplies per 896 FMAs of a 14x32 tile.
            if args.alpha == 1.0 && args.beta == 0.0 {
                for (i, row) in acc.iter().enumerate() {
                    let crow = args.c.add(i * args.rsc);
                    for (v, &r) in row.iter().enumerate() {
                        _mm512_storeu_ps(crow.add(16 * v), r);
                    }
                }
                return;
            }
            let beta = _mm512_set1_ps(args.beta);
            for (i, row) in acc.iter().enumerate() {
                let crow = args.c.add(i * args.rsc);
                for (v, &r) in row.iter().enumerate() {
                    let cp = crow.add(16 * v);
                    let r = _mm512_mul_ps(r, alpha);
                    let r = if args.beta != 0.0 { _mm512_fmadd_ps(beta, _mm512_loadu_ps(cp), r) } else { r };
                    _mm512_storeu_ps(cp, r);
                }
            }
            return;
        }
        let mut buf = [[[0.0f32; 16]; NV]; MR];
        for (brow, row) in buf.iter_mut().zip(acc) {
            for (b, &r) in brow.iter_mut().zip(row) {
                _mm512_storeu_ps(b.as_mut_ptr(), r);
            }
        }
        if args.csc != 1 {
            store_tile_generic(buf.as_flattened().as_flattened(), 16 * NV, args);
            return;
        }

        let beta = _mm512_set1_ps(args.beta);
        let zero = _mm512_setzero_ps();
        let mut masks = [0u16; NV];
        for (v, mk) in masks.iter_mut().enumerate() {
            let cols = args.n.saturating_sub(16 * v).min(16);
            *mk = ((1u32 << cols) - 1) as u16;
        }
        for (i, row) in buf.iter().enumerate() {
            if i >= args.m {
                break;
            }
            let crow = args.c.add(i * args.rsc);
            for v in 0..NV {
                let mk = masks[v];
                if mk == 0 {
                    continue;
                }
                let cp = crow.add(16 * v);
                // Masked loads and stores are slow on some cores (Zen 4): use them only at edges.
                let full = mk == u16::MAX;
                let mut r = _mm512_mul_ps(_mm512_loadu_ps(row[v].as_ptr()), alpha);
                if args.beta != 0.0 {
                    let cv = if full { _mm512_loadu_ps(cp) } else { _mm512_maskz_loadu_ps(mk, cp) };
                    r = _mm512_fmadd_ps(beta, cv, r);
                }
                if !args.bias.is_null() {
                    r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mk, args.bias.add(16 * v)));
                }
                if args.relu {
                    r = _mm512_max_ps(r, zero);
                }
                if full {
                    _mm512_storeu_ps(cp, r);
                } else {
                    _mm512_mask_storeu_ps(cp, mk, r);
                }
            }
        }
    }
}

macro_rules! avx512_kernel {
    ($name:ident, $mr:literal, $nv:literal) => {
        /// An AVX-512 microkernel; its tile is in its name.
        ///
        /// # Safety
        /// The [`super::UkrFn`] contract; the CPU must support AVX-512F.
        #[target_feature(enable = "avx512f,avx2,fma")]
        pub(crate) unsafe fn $name(args: &UkrArgs) {
            // SAFETY: forwarded contract; this function's target features are enabled.
            unsafe { ukr_generic::<$mr, $nv>(args) }
        }
    };
}

avx512_kernel!(ukr_14x32, 14, 2);
avx512_kernel!(ukr_28x16, 28, 1);
avx512_kernel!(ukr_8x32, 8, 2);

/// The unpacked ("nopack") variant: reads A in place (element `(i, p)` at
/// `a + i*rsa + p*csa`, broadcast; or, with `PACKED_A`, from a packed `kc x MR` panel) and B rows in place (row `p` at `b + p*rsb`, unit column
/// stride, masked to `n` columns), over the whole depth `kc`. For skinny products, where
/// packing would cost as much as the arithmetic. Rows past `m` re-read row `m - 1`.
///
/// # Safety
/// The [`super::UkrFn`] contract with A and B described by the strides instead
/// of packed panels: every `(i < m, p < kc)` of A and `(p < kc, j < n)` of B readable.
#[inline(always)]
unsafe fn ukr_nopack_generic<const MR: usize, const NV: usize, const PACKED_A: bool>(args: &UkrArgs) {
    // SAFETY: forwarded contract; FULL only when B's rows have all 16·NV columns.
    unsafe {
        // Whole-width B rows load without masks: this loop is all loads and FMAs, and the
        // masked loads cost Zen 4 ~6% on resnet14_64's forward and backward-data (K = 64).
        if args.n == 16 * NV {
            ukr_nopack_loop::<MR, NV, PACKED_A, true>(args)
        } else {
            ukr_nopack_loop::<MR, NV, PACKED_A, false>(args)
        }
    }
}

/// One [`ukr_nopack_body`] behind a `#[target_feature]` boundary of its own: with both
/// variants inlined straight into the kernel, LLVM merged their stores and spilled all 28
/// accumulators of the 14x32 tile to the stack around the loop (+6% on a 32-deep product);
/// through this boundary each variant keeps its tile in registers (checked in `objdump`:
/// no zmm moves to or from the stack in `nopack_14x32`).
///
/// # Safety
/// See [`ukr_nopack_body`]; the CPU must support AVX-512F.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn ukr_nopack_loop<const MR: usize, const NV: usize, const PACKED_A: bool, const FULL: bool>(args: &UkrArgs) {
    // SAFETY: forwarded contract; this function's target features are enabled.
    unsafe { ukr_nopack_body::<MR, NV, PACKED_A, FULL>(args) }
}

/// [`ukr_nopack_generic`]'s loop; with `FULL`, B's rows have all `16·NV` columns.
///
/// # Safety
/// See [`ukr_nopack_generic`]; `FULL` only when `n == 16·NV`.
#[inline(always)]
unsafe fn ukr_nopack_body<const MR: usize, const NV: usize, const PACKED_A: bool, const FULL: bool>(args: &UkrArgs) {
    // SAFETY: rows are clamped below m and B loads are masked to the first n columns (or
    // whole, with FULL, when n covers them), so every address read is an element of A or B
    // that the contract says is readable.
    unsafe {
        let mut masks = [0u16; NV];
        for (v, mk) in masks.iter_mut().enumerate() {
            let cols = args.n.saturating_sub(16 * v).min(16);
            *mk = ((1u32 << cols) - 1) as u16;
        }
        let mut rows = [args.a; MR];
        for (i, r) in rows.iter_mut().enumerate() {
            *r = args.a.add(i.min(args.m - 1) * args.rsa);
        }
        let mut acc = [[_mm512_setzero_ps(); NV]; MR];
        let mut b = args.b;
        let mut off = 0;
        for _ in 0..args.kc {
            let mut bv = [_mm512_setzero_ps(); NV];
            for (v, bvv) in bv.iter_mut().enumerate() {
                // `wrapping_add`: with a zero mask the vector may start past the end of B,
                // and an out-of-bounds `add` is UB even when nothing is loaded.
                *bvv = if FULL {
                    _mm512_loadu_ps(b.add(16 * v))
                } else {
                    _mm512_maskz_loadu_ps(masks[v], b.wrapping_add(16 * v))
                };
            }
            for (i, (row, r)) in acc.iter_mut().zip(rows.iter()).enumerate() {
                // A packed into an MR-wide panel: immediate offsets, no row pointers.
                let av = _mm512_set1_ps(if PACKED_A { *args.a.add(off + i) } else { *r.add(off) });
                for (accv, bvv) in row.iter_mut().zip(bv.iter()) {
                    *accv = _mm512_fmadd_ps(av, *bvv, *accv);
                }
            }
            off += if PACKED_A { MR } else { args.csa };
            // After the last row this points `rsb` past it, possibly beyond the allocation.
            b = b.wrapping_add(args.rsb);
        }
        store_acc(&acc, args);
    }
}

macro_rules! avx512_nopack_kernel {
    ($name:ident, $packa:ident, $mr:literal, $nv:literal) => {
        /// An AVX-512 unpacked microkernel; its tile is in its name.
        ///
        /// # Safety
        /// See [`ukr_nopack_generic`]; the CPU must support AVX-512F.
        #[target_feature(enable = "avx512f,avx2,fma")]
        pub(crate) unsafe fn $name(args: &UkrArgs) {
            // SAFETY: forwarded contract; this function's target features are enabled.
            unsafe { ukr_nopack_generic::<$mr, $nv, false>(args) }
        }

        /// The same tile reading A from a packed panel (B still in place).
        ///
        /// # Safety
        /// See [`ukr_nopack_generic`]; the CPU must support AVX-512F.
        #[target_feature(enable = "avx512f,avx2,fma")]
        pub(crate) unsafe fn $packa(args: &UkrArgs) {
            // SAFETY: forwarded contract; this function's target features are enabled.
            unsafe { ukr_nopack_generic::<$mr, $nv, true>(args) }
        }
    };
}

avx512_nopack_kernel!(nopack_14x32, packa_14x32, 14, 2);
avx512_nopack_kernel!(nopack_10x32, packa_10x32, 10, 2);
avx512_nopack_kernel!(nopack_8x32, packa_8x32, 8, 2);
avx512_nopack_kernel!(nopack_28x16, packa_28x16, 28, 1);
avx512_nopack_kernel!(nopack_16x16, packa_16x16, 16, 1);
avx512_nopack_kernel!(nopack_6x64, packa_6x64, 6, 4);

//! AVX2 + FMA3 microkernels: `MR` rows x `NV` 8-lane vectors. Full tiles with unit column
//! stride store straight from registers; edge tiles go through a stack tile.

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

        if args.csc != 1 || args.m != MR || args.n != 8 * NV {
            let mut buf = [[[0.0f32; 8]; NV]; MR];
            for i in 0..MR {
                for v in 0..NV {
                    _mm256_storeu_ps(buf[i][v].as_mut_ptr(), acc[i][v]);
                }
            }
            store_tile_generic(buf.as_flattened().as_flattened(), 8 * NV, args);
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

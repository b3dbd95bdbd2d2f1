//! AArch64 NEON microkernels: `MR` rows x `NV` 4-lane vectors (32 registers hold e.g. an
//! 8x12 tile: 24 accumulators, 3 B vectors, A broadcast by element).

use super::store_tile_generic;
use super::UkrArgs;
use core::arch::aarch64::*;

/// # Safety
/// The [`super::UkrFn`] contract (NEON is always present on AArch64).
#[inline(always)]
unsafe fn ukr_generic<const MR: usize, const NV: usize>(args: &UkrArgs) {
    // SAFETY: the contract guarantees kc*MR floats at `a`, kc*NV*4 floats at `b` and the
    // m x n tile of C (plus bias) in bounds.
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); NV]; MR];
        let (mut a, mut b) = (args.a, args.b);
        for _ in 0..args.kc {
            let mut bv = [vdupq_n_f32(0.0); NV];
            for (v, bvv) in bv.iter_mut().enumerate() {
                *bvv = vld1q_f32(b.add(4 * v));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let av = *a.add(i);
                for (accv, bvv) in row.iter_mut().zip(bv.iter()) {
                    *accv = vfmaq_n_f32(*accv, *bvv, av);
                }
            }
            a = a.add(MR);
            b = b.add(4 * NV);
        }

        if args.csc != 1 || args.m != MR || args.n != 4 * NV {
            let mut buf = [[[0.0f32; 4]; NV]; MR];
            for i in 0..MR {
                for v in 0..NV {
                    vst1q_f32(buf[i][v].as_mut_ptr(), acc[i][v]);
                }
            }
            store_tile_generic(buf.as_flattened().as_flattened(), 4 * NV, args);
            return;
        }

        let zero = vdupq_n_f32(0.0);
        for (i, row) in acc.iter().enumerate() {
            let crow = args.c.add(i * args.rsc);
            for (v, accv) in row.iter().enumerate() {
                let cp = crow.add(4 * v);
                let mut r = vmulq_n_f32(*accv, args.alpha);
                if args.beta != 0.0 {
                    r = vfmaq_n_f32(r, vld1q_f32(cp), args.beta);
                }
                if !args.bias.is_null() {
                    r = vaddq_f32(r, vld1q_f32(args.bias.add(4 * v)));
                }
                if args.relu {
                    r = vmaxq_f32(r, zero);
                }
                vst1q_f32(cp, r);
            }
        }
    }
}

macro_rules! neon_kernel {
    ($name:ident, $mr:literal, $nv:literal) => {
        /// A NEON microkernel; its tile is in its name.
        ///
        /// # Safety
        /// The [`super::UkrFn`] contract.
        pub(crate) unsafe fn $name(args: &UkrArgs) {
            // SAFETY: forwarded contract.
            unsafe { ukr_generic::<$mr, $nv>(args) }
        }
    };
}

neon_kernel!(ukr_8x12, 8, 3);
neon_kernel!(ukr_12x8, 12, 2);

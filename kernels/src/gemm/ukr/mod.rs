//! Microkernels, one file per ISA. Each file contributes only register-tiled kernels that
//! follow the contract in [`super::kernel`]; the loops around them live in `driver`.

pub(crate) mod scalar;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;

use super::kernel::UkrArgs;

/// Stores the top-left `args.m x args.n` corner of a computed tile (row-major, row length
/// `nr`) into C with alpha/beta, bias and ReLU: the path for strided C and edge tiles.
///
/// # Safety
/// The C, bias pointers and sizes in `args` must satisfy the [`super::kernel::UkrFn`] contract.
#[inline(always)]
pub(crate) unsafe fn store_tile_generic(tile: &[f32], nr: usize, args: &UkrArgs) {
    for i in 0..args.m {
        for j in 0..args.n {
            let mut v = args.alpha * tile[i * nr + j];
            // SAFETY: (i, j) is inside the m x n tile the caller owns; bias holds n floats.
            unsafe {
                let c = args.c.add(i * args.rsc + j * args.csc);
                if args.beta != 0.0 {
                    v += args.beta * *c;
                }
                if !args.bias.is_null() {
                    v += *args.bias.add(j);
                }
                if args.relu {
                    v = v.max(0.0);
                }
                *c = v;
            }
        }
    }
}

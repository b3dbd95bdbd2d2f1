//! Microkernels, one file per ISA, and their contract ([`UkrArgs`], [`UkrFn`]). Each file
//! contributes only register-tiled kernels; the table of which ISA has which lives in
//! `kernel`, the loops around them in `driver`.
//!
//! A microkernel computes one `MR x NR` tile `C = alpha * A_panel * B_panel + beta * C` from
//! packed panels: `A_panel` is `kc` columns of `MR` contiguous values (column `p` at
//! `a[p * MR..]`), `B_panel` is `kc` rows of `NR` contiguous values (row `p` at
//! `b[p * NR..]`, 64-byte aligned). It always computes the full tile (the packers pad with
//! zeros) but stores only the top-left `m x n` corner, so edge tiles need no slow path.

pub(crate) mod scalar;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;

/// Arguments of one microkernel call. Plain data; the caller vouches for the pointers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UkrArgs {
    /// Depth of the panels.
    pub kc: usize,
    /// Packed A panel: `kc * MR` floats.
    pub a: *const f32,
    /// Packed B panel: `kc * NR` floats, 64-byte aligned.
    pub b: *const f32,
    /// Top-left element of the C tile.
    pub c: *mut f32,
    /// C row stride (elements).
    pub rsc: usize,
    /// C column stride (elements).
    pub csc: usize,
    /// Rows of the tile to store, `1..=MR`.
    pub m: usize,
    /// Columns of the tile to store, `1..=NR`.
    pub n: usize,
    pub alpha: f32,
    /// When 0, C is overwritten without being read (BLAS semantics: NaN in C is ignored).
    pub beta: f32,
    /// Per-column bias (`n` floats) added after scaling, or null.
    pub bias: *const f32,
    /// Clamp the result at 0 after the bias.
    pub relu: bool,
    /// Unpacked kernels only: A element `(i, p)` is at `a + i*rsa + p*csa`. (Only x86-64
    /// has unpacked kernels so far: elsewhere the driver sets these and nothing reads them.)
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub rsa: usize,
    /// Unpacked kernels only (see `rsa`).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub csa: usize,
    /// Unpacked kernels only: B row `p` starts at `b + p*rsb` (unit column stride).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub rsb: usize,
}

/// `unsafe` because it dereferences the pointers in [`UkrArgs`]: `a` must hold `kc * MR`
/// floats, `b` `kc * NR` floats (64-byte aligned), every `(i, j)` with `i < m`, `j < n` at
/// `c + i * rsc + j * csc` must be writable and owned by the caller, `bias` (if not null)
/// must hold `n` floats, and the CPU must support the kernel's ISA.
pub(crate) type UkrFn = unsafe fn(&UkrArgs);

/// Stores the top-left `args.m x args.n` corner of a computed tile (row-major, row length
/// `nr`) into C with alpha/beta, bias and ReLU: the path for strided C and edge tiles.
///
/// # Safety
/// The C, bias pointers and sizes in `args` must satisfy the [`UkrFn`] contract.
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

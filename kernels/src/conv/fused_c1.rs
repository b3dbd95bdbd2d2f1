//! The fused conv + bias + ReLU + 2x2 max-pool forward for one input channel and a 3x3
//! filter at stride 1 (`f32-cbrp-c1-3x3-*`): the first layer of a network on grey images.
//!
//! With one input channel, a pooling window's four convolution pixels read a 4x4 input
//! patch, and the whole filter is nine rows of `cout` weights. This kernel loads the nine
//! rows' vectors once per block of channels and image (on AVX-512 LLVM keeps part of them
//! on the stack, read as the FMAs' memory operands) and broadcasts each of the patch's 16
//! inputs once; the general kernel (`fused.rs`) broadcasts an input once per tap that reads
//! it (36 broadcasts per window where this does 16). Each sum accumulates its taps
//! in the same row-major order as the general kernel, with the same FMAs, so the results
//! are the general kernel's bit for bit; the epilogue is the shared [`pool_store`].

use super::fused::{pool_store, Geom};
use super::Conv2d;
use crate::arch::simd::{lanes, simd_dispatch, vector_registers, F32x};
use crate::arch::Isa;

/// Whether this kernel computes the convolution `c`.
pub(super) fn applies(c: &Conv2d) -> bool {
    c.cin == 1 && (c.kh, c.kw) == (3, 3) && (c.sh, c.sw) == (1, 1) && (c.dh, c.dw) == (1, 1)
}

/// Vectors of output channels per block: the 4 x NB accumulators, a broadcast and as many
/// of the 9 x NB filter vectors as possible should fit the registers (32 on AVX-512 and
/// NEON: two vectors; 16 on AVX2: one, which holds the whole filter).
pub(super) fn block_vectors(isa: Isa, cout: usize) -> usize {
    if vector_registers(isa) >= 32 && cout > lanes(isa) {
        2
    } else {
        1
    }
}

/// One image: the pooled output `y` and its argmax `a` (as [`super::fused`]'s forward).
///
/// # Safety
/// The ISA of `V` is enabled; `g` describes a canvas `x` of one input channel (`xps == 1`,
/// `yps` its row length) that covers every tap of convolution pixels `(0..2*hp, 0..2*wp)`;
/// `packed` is the packed filter, bias and channel numbers for `g.coutp` (a multiple of
/// `NB * LANES`); `y` and `a` hold `hp * wp * cout`.
#[inline(always)]
unsafe fn image_body<V: F32x, const NB: usize>(g: &Geom, x: &[f32], packed: &[f32], y: &mut [f32], a: &mut [u32]) {
    let l = V::LANES;
    assert!(g.cin == 1 && g.xps == 1 && g.coutp.is_multiple_of(NB * l) && packed.len() >= 11 * g.coutp);
    assert!(y.len() >= g.hp * g.wp * g.cout && a.len() >= y.len());
    // The last input read is row 2 hp + 1, column 2 wp + 1.
    assert!(g.hp > 0 && g.wp > 0 && x.len() > (2 * g.hp + 1) * g.yps + 2 * g.wp + 1);
    // SAFETY: filter rows, bias and channel numbers are read below 11 * coutp; inputs at
    // window base + (iy < 4) rows + (ix < 4) columns, inside x by the assertion above;
    // pool_store's contract holds for every pooled pixel and block.
    unsafe {
        for c0 in (0..g.coutp).step_by(NB * l) {
            let wp = packed.as_ptr().add(c0);
            let w: [[V; NB]; 9] =
                core::array::from_fn(|t| core::array::from_fn(|v| V::load(wp.add(t * g.coutp + v * l))));
            let (bias, chan) = (wp.add(9 * g.coutp), wp.add(10 * g.coutp));
            for py in 0..g.hp {
                for px in 0..g.wp {
                    let base = x.as_ptr().add(2 * py * g.yps + 2 * px);
                    let mut acc = [[V::zero(); NB]; 4];
                    // Input (iy, ix) of the patch meets tap (iy - cy, ix - cx) of window cell
                    // (cy, cx): row-major inputs visit each cell's taps in row-major order.
                    for iy in 0..4 {
                        for ix in 0..4 {
                            let xb = V::splat(*base.add(iy * g.yps + ix));
                            for (cell, accc) in acc.iter_mut().enumerate() {
                                let (cy, cx) = (cell / 2, cell % 2);
                                if (cy..cy + 3).contains(&iy) && (cx..cx + 3).contains(&ix) {
                                    let t = (iy - cy) * 3 + (ix - cx);
                                    for v in 0..NB {
                                        accc[v] = xb.fma(w[t][v], accc[v]);
                                    }
                                }
                            }
                        }
                    }
                    pool_store(g, &acc, (bias, chan), y, a, c0, (py, px));
                }
            }
        }
    }
}

simd_dispatch! {
    /// [`image_body`] on `isa`.
    unsafe fn image_nb<const NB: usize>(g: &Geom, x: &[f32], packed: &[f32], y: &mut [f32], a: &mut [u32]) => image_body
}

/// One image with `nb` ([`block_vectors`]) vectors per block.
///
/// # Safety
/// `isa` was checked; [`image_body`]'s contract for `NB = nb`.
pub(super) unsafe fn image(isa: Isa, nb: usize, g: &Geom, x: &[f32], packed: &[f32], y: &mut [f32], a: &mut [u32]) {
    // SAFETY: forwarded contract.
    unsafe {
        if nb == 2 {
            image_nb::<2>(isa, g, x, packed, y, a)
        } else {
            image_nb::<1>(isa, g, x, packed, y, a)
        }
    }
}

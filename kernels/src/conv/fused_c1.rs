//! The fused conv + bias + ReLU + 2x2 max-pool forward for one input channel and a 3x3
//! filter at stride 1 (`f32-cbrp-c1-3x3-*`): the first layer of a network on grey images,
//! on ISAs with 32 vector registers (AVX-512, NEON).
//!
//! With one input channel, a pooling window's four convolution pixels read a 4x4 input
//! patch, and the whole filter is nine taps of `cout` weights. This kernel loads the nine
//! taps' vectors once per block of channels and image and broadcasts each input of the
//! patch once (16 broadcasts per window; the general kernel, `fused.rs`, broadcasts an
//! input once per tap that reads it, 36). Each sum accumulates its taps in the same
//! row-major order as the general kernel, with the same FMAs, so the results are the
//! general kernel's bit for bit; the epilogue is the shared [`pool_store`].
//!
//! On 16-register ISAs (AVX2) the filter does not fit beside the accumulators, and the
//! general kernel's tile (a window's four cells by two vectors of channels: eight chains,
//! each filter vector loaded once per tap for four FMAs) is faster than this one streamed:
//! on Zen 3, `layers_1t/fwd/fused_pool/seed_conv1` 58.1-64.3 µs here (two windows per
//! step, the filter read as the FMAs' memory operands) against 51.5-52.8 µs there.

use super::fused::{pool_store, Geom};
use super::Conv2d;
use crate::arch::simd::{lanes, simd_dispatch, vector_registers, F32x};
use crate::arch::Isa;

/// Whether this kernel computes the convolution `c` on `isa`.
pub(super) fn applies(isa: Isa, c: &Conv2d) -> bool {
    vector_registers(isa) >= 32
        && c.cin == 1
        && (c.kh, c.kw) == (3, 3)
        && (c.sh, c.sw) == (1, 1)
        && (c.dh, c.dw) == (1, 1)
}

/// Vectors of output channels per block: the 4 x NB accumulators, a broadcast and the
/// 9 x NB filter vectors fit 32 registers at two vectors, which also gives the eight
/// chains of FMAs that two pipes of latency 4 need.
pub(super) fn block_vectors(isa: Isa, cout: usize) -> usize {
    if cout > lanes(isa) {
        2
    } else {
        1
    }
}

/// The four convolution sums (cells in row-major order) of the pooling window whose
/// top-left input is `base`, for `NB` vectors of channels of the filter `f` (`[ky][kx]`).
///
/// Input (iy, ix) of the 4x4 patch meets tap (iy - cy, ix - cx) of the cell at (cy, cx):
/// visiting inputs row-major visits each cell's taps in row-major order, the order of the
/// plain direct convolution, so every sum is its value bit for bit.
///
/// # Safety
/// The ISA of `V` is enabled; inputs `base + iy * yps + ix` for `iy < 4`, `ix < 4` are
/// readable.
#[inline(always)]
unsafe fn window_sums<V: F32x, const NB: usize>(base: *const f32, yps: usize, f: &[[[V; NB]; 3]; 3]) -> [[V; NB]; 4] {
    // SAFETY: the ISA of V is enabled and inputs iy < 4, ix < 4 are readable (the contract).
    unsafe {
        let mut acc = [[V::zero(); NB]; 4];
        for iy in 0..4 {
            for ix in 0..4 {
                let xb = V::splat(*base.add(iy * yps + ix));
                for (cell, accc) in acc.iter_mut().enumerate() {
                    let (cy, cx) = (cell / 2, cell % 2);
                    if (cy..cy + 3).contains(&iy) && (cx..cx + 3).contains(&ix) {
                        for v in 0..NB {
                            accc[v] = xb.fma(f[iy - cy][ix - cx][v], accc[v]);
                        }
                    }
                }
            }
        }
        acc
    }
}

/// One image: the pooled output `y` and its argmax `a` (as [`super::fused`]'s forward).
///
/// # Safety
/// The ISA of `V` is enabled; `g` describes a canvas `x` of one input channel (`xps == 1`,
/// `yps` its row length) that covers every tap of convolution pixels `(0..2*hp, 0..2*wp)`;
/// `packed` is the packed filter and bias for `g.coutp` (a multiple of
/// `NB * LANES`); `y` and `a` hold `hp * wp * cout`.
#[inline(always)]
unsafe fn image_body<V: F32x, const NB: usize>(g: &Geom, x: &[f32], packed: &[f32], y: &mut [f32], a: &mut [u32]) {
    let l = V::LANES;
    assert!(g.cin == 1 && g.xps == 1 && g.coutp.is_multiple_of(NB * l) && packed.len() >= 10 * g.coutp);
    assert!(y.len() >= g.hp * g.wp * g.cout && a.len() >= y.len());
    // The last input read is row 2 hp + 1, column 2 wp + 1.
    assert!(g.hp > 0 && g.wp > 0 && x.len() > (2 * g.hp + 1) * g.yps + 2 * g.wp + 1);
    // SAFETY: filter rows and the bias are read below 10 * coutp; the window
    // at pooled pixel (py, px) reads inputs at rows 2 py + (iy < 4) and columns 2 px +
    // (ix < 4), inside x by the assertion above; pool_store's contract holds for every
    // pooled pixel and block.
    unsafe {
        for c0 in (0..g.coutp).step_by(NB * l) {
            let wp = packed.as_ptr().add(c0);
            let f: [[[V; NB]; 3]; 3] = core::array::from_fn(|ky| {
                core::array::from_fn(|kx| core::array::from_fn(|v| V::load(wp.add((ky * 3 + kx) * g.coutp + v * l))))
            });
            let bias = wp.add(9 * g.coutp);
            for py in 0..g.hp {
                for px in 0..g.wp {
                    let acc = window_sums::<V, NB>(x.as_ptr().add(2 * py * g.yps + 2 * px), g.yps, &f);
                    pool_store(g, &acc, bias, y, a, c0, (py, px));
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
        match nb {
            2 => image_nb::<2>(isa, g, x, packed, y, a),
            _ => image_nb::<1>(isa, g, x, packed, y, a),
        }
    }
}

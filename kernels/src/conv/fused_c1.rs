//! The fused conv + bias + ReLU + 2x2 max-pool forward for one input channel and a 3x3
//! filter at stride 1 (`f32-cbrp-c1-3x3-*`): the first layer of a network on grey images.
//!
//! With one input channel, a pooling window's four convolution pixels read a 4x4 input
//! patch, and the whole filter is nine taps of `cout` weights. This kernel broadcasts each
//! input of the patch once (16 broadcasts per window; the general kernel, `fused.rs`,
//! broadcasts an input once per tap that reads it, 36). On 32-register ISAs it loads the
//! nine taps' vectors once per block of channels and image (on AVX-512 LLVM keeps part of
//! them on the stack, read as the FMAs' memory operands); on 16-register ISAs it takes two
//! windows per step ([`windows_per_step`]). Each sum accumulates its taps in the same
//! row-major order as the general kernel, with the same FMAs, so the results are the
//! general kernel's bit for bit; the epilogue is the shared [`pool_store`].

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

/// Pooled pixels per step. A window's four sums are four chains of nine dependent FMAs:
/// with one vector of channels that is four FMAs in flight, half of what two FMA pipes of
/// latency 4 need. On 16-register ISAs two adjacent windows go together (eight chains) and
/// the filter is read a row at a time where the FMAs need it, which leaves the registers to
/// the accumulators (LLVM hoists those reads out of the loop and keeps the nine vectors on
/// the stack as the FMAs' memory operands). On 32-register ISAs two vectors of channels
/// already give eight chains, and the whole filter stays in registers. Two windows per
/// step on AVX2 (Zen 3): `layers_1t/fwd/fused_pool/seed_conv1` 64.8-66.3 -> 58.2-58.8 µs.
pub(super) fn windows_per_step(isa: Isa) -> usize {
    if vector_registers(isa) >= 32 {
        1
    } else {
        2
    }
}

/// The four convolution sums (cells in row-major order) of `P` horizontally adjacent pooling
/// windows whose top-left input is `base`, for `NB` vectors of channels; `row(ky)` gives
/// filter row `ky` (three taps of `NB` vectors).
///
/// Input (iy, ix) of the `4 x (2P + 2)` patch meets tap (iy - cy, ix - cx) of the cell at
/// (cy, cx): visiting inputs row-major visits each cell's taps in row-major order, the
/// order of the plain direct convolution, so every sum is its value bit for bit.
///
/// # Safety
/// The ISA of `V` is enabled; inputs `base + iy * yps + ix` for `iy < 4`, `ix < 2P + 2`
/// are readable.
#[inline(always)]
unsafe fn window_sums<V: F32x, const NB: usize, const P: usize>(
    base: *const f32,
    yps: usize,
    row: impl Fn(usize) -> [[V; NB]; 3] + Copy,
) -> [[[V; NB]; 4]; P] {
    // SAFETY: the contract, for input rows 0..4.
    unsafe {
        let mut acc = [[[V::zero(); NB]; 4]; P];
        // One call per input row with the row as a constant: LLVM does not unroll a loop
        // over the rows at P = 2, and the tap selection below must fold away.
        input_row::<V, NB, P, 0>(base, row, &mut acc);
        input_row::<V, NB, P, 1>(base.add(yps), row, &mut acc);
        input_row::<V, NB, P, 2>(base.add(2 * yps), row, &mut acc);
        input_row::<V, NB, P, 3>(base.add(3 * yps), row, &mut acc);
        acc
    }
}

/// [`window_sums`]'s FMAs for input row `IY` (at `xrow`), which meets filter rows `IY - 1`
/// and `IY` (of those that exist).
///
/// # Safety
/// The ISA of `V` is enabled; `2P + 2` inputs at `xrow` are readable.
#[inline(always)]
unsafe fn input_row<V: F32x, const NB: usize, const P: usize, const IY: usize>(
    xrow: *const f32,
    row: impl Fn(usize) -> [[V; NB]; 3],
    acc: &mut [[[V; NB]; 4]; P],
) {
    // SAFETY: the contract (ix < 2P + 2).
    unsafe {
        let (lo, hi) = (IY.saturating_sub(1), IY.min(2));
        let rows = [row(lo), row(hi)];
        for ix in 0..2 * P + 2 {
            let xb = V::splat(*xrow.add(ix));
            for (w, wacc) in acc.iter_mut().enumerate() {
                for (cell, accc) in wacc.iter_mut().enumerate() {
                    let (cy, cx) = (cell / 2, 2 * w + cell % 2);
                    if (cy..cy + 3).contains(&IY) && (cx..cx + 3).contains(&ix) {
                        let taps = if IY - cy == lo { &rows[0] } else { &rows[1] };
                        for v in 0..NB {
                            accc[v] = xb.fma(taps[ix - cx][v], accc[v]);
                        }
                    }
                }
            }
        }
    }
}

/// One image: the pooled output `y` and its argmax `a` (as [`super::fused`]'s forward),
/// `P` ([`windows_per_step`]) windows of a row per step (a row's odd last one alone).
///
/// # Safety
/// The ISA of `V` is enabled; `g` describes a canvas `x` of one input channel (`xps == 1`,
/// `yps` its row length) that covers every tap of convolution pixels `(0..2*hp, 0..2*wp)`;
/// `packed` is the packed filter, bias and channel numbers for `g.coutp` (a multiple of
/// `NB * LANES`); `y` and `a` hold `hp * wp * cout`.
#[inline(always)]
unsafe fn image_body<V: F32x, const NB: usize, const P: usize>(
    g: &Geom,
    x: &[f32],
    packed: &[f32],
    y: &mut [f32],
    a: &mut [u32],
) {
    let l = V::LANES;
    assert!(g.cin == 1 && g.xps == 1 && g.coutp.is_multiple_of(NB * l) && packed.len() >= 11 * g.coutp);
    assert!(y.len() >= g.hp * g.wp * g.cout && a.len() >= y.len());
    // The last input read is row 2 hp + 1, column 2 wp + 1.
    assert!(g.hp > 0 && g.wp > 0 && x.len() > (2 * g.hp + 1) * g.yps + 2 * g.wp + 1);
    // SAFETY: filter rows, bias and channel numbers are read below 11 * coutp; a step of
    // `p` windows from pooled column px reads inputs at rows 2 py + (iy < 4) and columns
    // 2 px + (ix < 2p + 2), inside x by the assertion above as px + p <= wp; pool_store's
    // contract holds for every pooled pixel and block.
    unsafe {
        for c0 in (0..g.coutp).step_by(NB * l) {
            let wp = packed.as_ptr().add(c0);
            let load_row = |ky: usize| -> [[V; NB]; 3] {
                core::array::from_fn(|kx| core::array::from_fn(|v| V::load(wp.add((ky * 3 + kx) * g.coutp + v * l))))
            };
            // One window per step keeps the whole filter in registers; two stream its rows.
            let whole: [[[V; NB]; 3]; 3] =
                if P == 1 { core::array::from_fn(load_row) } else { [[[V::zero(); NB]; 3]; 3] };
            let row = |ky: usize| if P == 1 { whole[ky] } else { load_row(ky) };
            let (bias, chan) = (wp.add(9 * g.coutp), wp.add(10 * g.coutp));
            for py in 0..g.hp {
                let mut px = 0;
                while px < g.wp {
                    let base = x.as_ptr().add(2 * py * g.yps + 2 * px);
                    if px + P <= g.wp {
                        let sums = window_sums::<V, NB, P>(base, g.yps, row);
                        for (w, acc) in sums.iter().enumerate() {
                            pool_store(g, acc, (bias, chan), y, a, c0, (py, px + w));
                        }
                        px += P;
                    } else {
                        let [acc] = window_sums::<V, NB, 1>(base, g.yps, row);
                        pool_store(g, &acc, (bias, chan), y, a, c0, (py, px));
                        px += 1;
                    }
                }
            }
        }
    }
}

simd_dispatch! {
    /// [`image_body`] on `isa`.
    unsafe fn image_nb<const NB: usize, const P: usize>(g: &Geom, x: &[f32], packed: &[f32], y: &mut [f32], a: &mut [u32]) => image_body
}

/// One image with `nb` ([`block_vectors`]) vectors per block and [`windows_per_step`].
///
/// # Safety
/// `isa` was checked; [`image_body`]'s contract for `NB = nb`.
pub(super) unsafe fn image(isa: Isa, nb: usize, g: &Geom, x: &[f32], packed: &[f32], y: &mut [f32], a: &mut [u32]) {
    // SAFETY: forwarded contract.
    unsafe {
        match (nb, windows_per_step(isa)) {
            (2, _) => image_nb::<2, 1>(isa, g, x, packed, y, a),
            (_, 2) => image_nb::<1, 2>(isa, g, x, packed, y, a),
            _ => image_nb::<1, 1>(isa, g, x, packed, y, a),
        }
    }
}

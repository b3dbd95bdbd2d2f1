//! The dense forward: `y[s][j] = b[j] + Σ_i x[s][i] w[j][i]`, dot products along the inputs
//! with `S` samples x `J` outputs of accumulators in registers (four samples on 32-register
//! ISAs, two on 16; see [`forward_tile`]), each accumulator's lanes summed in a fixed order.
//! An output's sum is the same whatever tile computes it, so the tile changes only the
//! speed, never the bits.

use super::blocks::{forward_tile, output_blocks};
use super::{Linear, SAMPLES_PER_TASK};
use crate::arch::simd::{simd_dispatch, F32x};
use crate::arch::Isa;
use crate::error::Result;
use crate::scratch::{with_scratch, Slot};
use crate::Ctx;
use rayon::prelude::*;

/// Forward: `y = x · wᵀ + bias` (`x` `[n, inputs]`, `w` `[outputs, inputs]`, `bias`
/// `[outputs]`, `y` `[n, outputs]` overwritten).
pub fn linear_forward(ctx: &Ctx, l: &Linear, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) -> Result<()> {
    let isa = ctx.isa.check()?;
    l.check(x.len(), w.len(), y.len())?;
    if let Some(b) = bias {
        l.check_bias("bias length vs outputs", b.len())?;
    }
    if l.n == 0 {
        return Ok(());
    }
    let (i_n, o_n) = (l.inputs, l.outputs);
    let tile = forward_tile(isa, i_n);
    y.par_chunks_mut(SAMPLES_PER_TASK * o_n).zip(x.par_chunks(SAMPLES_PER_TASK * i_n)).for_each(|(yt, xt)| {
        for (yg, xg) in yt.chunks_mut(tile.samples * o_n).zip(xt.chunks(tile.samples * i_n)) {
            // A short last group goes two samples at a time (no tile of three).
            let per_tile = if yg.len() == tile.samples * o_n { tile.samples } else { 2 };
            for (ys, xs) in yg.chunks_mut(per_tile * o_n).zip(xg.chunks(per_tile * i_n)) {
                let samples = ys.len() / o_n;
                let mut run = |xs: &[f32], x_stride: usize| {
                    for (j0, width) in output_blocks(o_n, tile.width) {
                        let mut sums = [[0f32; 12]; 4];
                        // SAFETY: `isa` was checked; xs holds `samples` rows of i_n inputs
                        // x_stride apart; rows j0..j0+width of w exist (output_blocks stays
                        // below o_n).
                        unsafe { dot_block(isa, (xs, x_stride), &w[j0 * i_n..], i_n, samples, width, &mut sums) };
                        for s in 0..samples {
                            for j in 0..width {
                                ys[s * o_n + j0 + j] = sums[s][j] + bias.map_or(0.0, |b| b[j0 + j]);
                            }
                        }
                    }
                };
                if tile.x_stride == i_n {
                    run(xs, i_n);
                } else {
                    // Rows whose stride is a multiple of 1 KiB share L1 sets with one another
                    // and with the weight rows: copied x_stride apart, they spread out.
                    with_scratch(Slot::Lowered, samples * tile.x_stride, |buf| {
                        for (dst, src) in buf.chunks_mut(tile.x_stride).zip(xs.chunks(i_n)) {
                            dst[..i_n].copy_from_slice(src);
                        }
                        run(buf, tile.x_stride)
                    });
                }
            }
        }
    });
    Ok(())
}

/// `sums[s][j] = Σ_i x[s][i] w[j][i]` for `samples` (1, 2 or 4) rows of `x` (`x_stride`
/// apart) and `width` rows of `w`, dispatched to the instantiated tiles (four samples take
/// up to six outputs).
///
/// # Safety
/// The ISA is available; `x` holds `samples` rows of `inputs` floats `x_stride` apart, `w`
/// `width * inputs`.
#[allow(clippy::too_many_arguments)]
unsafe fn dot_block(
    isa: Isa,
    (x, x_stride): (&[f32], usize),
    w: &[f32],
    inputs: usize,
    samples: usize,
    width: usize,
    sums: &mut [[f32; 12]; 4],
) {
    assert!(
        x_stride >= inputs
            && x.len() >= (samples - 1) * x_stride + inputs
            && w.len() >= width * inputs
            && matches!(samples, 1 | 2 | 4)
            && (samples < 4 || width <= 6)
    );
    let x = (x, x_stride);
    // SAFETY: forwarded contract, bounds asserted above.
    unsafe {
        match (samples, width) {
            (4, 6) => dot_tile::<4, 6>(isa, x, w, inputs, sums),
            (4, 4) => dot_tile::<4, 4>(isa, x, w, inputs, sums),
            (4, 3) => dot_tile::<4, 3>(isa, x, w, inputs, sums),
            (4, 2) => dot_tile::<4, 2>(isa, x, w, inputs, sums),
            (4, _) => dot_tile::<4, 1>(isa, x, w, inputs, sums),
            (2, 12) => dot_tile::<2, 12>(isa, x, w, inputs, sums),
            (2, 10) => dot_tile::<2, 10>(isa, x, w, inputs, sums),
            (2, 8) => dot_tile::<2, 8>(isa, x, w, inputs, sums),
            (2, 6) => dot_tile::<2, 6>(isa, x, w, inputs, sums),
            (2, 4) => dot_tile::<2, 4>(isa, x, w, inputs, sums),
            (2, 3) => dot_tile::<2, 3>(isa, x, w, inputs, sums),
            (2, 2) => dot_tile::<2, 2>(isa, x, w, inputs, sums),
            (2, _) => dot_tile::<2, 1>(isa, x, w, inputs, sums),
            (_, 12) => dot_tile::<1, 12>(isa, x, w, inputs, sums),
            (_, 10) => dot_tile::<1, 10>(isa, x, w, inputs, sums),
            (_, 8) => dot_tile::<1, 8>(isa, x, w, inputs, sums),
            (_, 6) => dot_tile::<1, 6>(isa, x, w, inputs, sums),
            (_, 4) => dot_tile::<1, 4>(isa, x, w, inputs, sums),
            (_, 3) => dot_tile::<1, 3>(isa, x, w, inputs, sums),
            (_, 2) => dot_tile::<1, 2>(isa, x, w, inputs, sums),
            _ => dot_tile::<1, 1>(isa, x, w, inputs, sums),
        }
    }
}

/// `S` samples x `J` outputs of dot products along `inputs`; each accumulator's lanes are
/// summed in lane order, the tail (under one vector) added last in order.
///
/// # Safety
/// The ISA of `V` is enabled; `x` holds `S` rows of `inputs` floats `x_stride` apart, `w`
/// `J * inputs` floats.
#[inline(always)]
unsafe fn dot_tile_body<V: F32x, const S: usize, const J: usize>(
    (x, x_stride): (&[f32], usize),
    w: &[f32],
    inputs: usize,
    sums: &mut [[f32; 12]; 4],
) {
    assert!(x_stride >= inputs && x.len() >= (S - 1) * x_stride + inputs && w.len() >= J * inputs && S <= 4 && J <= 12);
    let l = V::LANES;
    let full = inputs / l * l;
    // SAFETY: every load is at an index below `full <= inputs` within a row of x or w.
    unsafe {
        let mut acc = [[V::zero(); J]; S];
        let (xp, wp) = (x.as_ptr(), w.as_ptr());
        for i in (0..full).step_by(l) {
            let xv: [V; S] = core::array::from_fn(|s| V::load(xp.add(s * x_stride + i)));
            #[allow(clippy::needless_range_loop)] // j indexes w's rows and acc's columns
            for j in 0..J {
                let wv = V::load(wp.add(j * inputs + i));
                for s in 0..S {
                    acc[s][j] = xv[s].fma(wv, acc[s][j]);
                }
            }
        }
        let mut lanes = [0f32; 16];
        for s in 0..S {
            for j in 0..J {
                acc[s][j].store(lanes.as_mut_ptr());
                let mut t = lanes[..l].iter().sum::<f32>();
                for i in full..inputs {
                    t += x[s * x_stride + i] * w[j * inputs + i];
                }
                sums[s][j] = t;
            }
        }
    }
}

simd_dispatch! {
    /// [`dot_tile_body`] on `isa`.
    unsafe fn dot_tile<const S: usize, const J: usize>(x: (&[f32], usize), w: &[f32], inputs: usize, sums: &mut [[f32; 12]; 4]) => dot_tile_body
}

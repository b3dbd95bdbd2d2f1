//! Fully connected (dense) layers with few outputs: `y = x · Wᵀ + b` for `x` `[n, inputs]`
//! and a weight matrix stored `[outputs, inputs]` (each output's weights contiguous), in
//! all three training passes. A classifier head (10 outputs over 5408 inputs) is a
//! poor GEMM — the output width is under one vector, so tiles are mostly padding — but a
//! good set of dot products and axpys along the long `inputs` axis: every kernel here
//! vectorises along `inputs` and keeps in registers either `J` outputs or four vectors of
//! inputs, each for two or four samples.
//!
//! - forward: `y[s][j] = b[j] + Σ_i x[s][i] w[j][i]` (dot products; `J` outputs x 4
//!   samples of accumulators on 32-register ISAs, x 2 on 16, lanes summed in a fixed
//!   order; `forward.rs`);
//! - backward-data: `dx[s][i] = Σ_j dy[s][j] w[j][i]` (axpys of weight rows; four
//!   samples a pass over `w` on 32-register ISAs, two on 16);
//! - backward-weights: `dw[j][i] = Σ_s dy[s][j] x[s][i]` (and `db[j] = Σ_s dy[s][j]`).
//!
//! Threads split samples (forward, backward-data) or blocks of inputs (backward-weights);
//! nothing is summed across threads, so results are bit-identical for any thread count.

use crate::arch::simd::{simd_dispatch, F32x};
pub use crate::desc::Linear;
use crate::error::Result;
use crate::Ctx;
use blocks::{max_outputs, output_blocks};
pub use forward::linear_forward;
use rayon::prelude::*;

mod blocks;
mod forward;

/// Samples per task of the forward pass (its tile on 32-register ISAs takes all four).
pub(super) const SAMPLES_PER_TASK: usize = 4;
/// Samples per task of the backward-data pass: its groups of four run one after another
/// over each chunk of inputs, so the chunk's weights come from L1 for all but the first.
const BACKWARD_DATA_SAMPLES_PER_TASK: usize = 16;
/// Inputs per chunk of a backward-data task: the chunk's weights (`outputs` rows of 1 KiB
/// each; 10 KiB for a classifier head) stay in L1 while every group of samples reads them.
const BACKWARD_DATA_INPUT_CHUNK: usize = 256;
/// Inputs per task of the backward-weights pass.
const INPUTS_PER_TASK: usize = 1024;

/// Backward-data: `dx = dy · w` (`dy` `[n, outputs]`, `w` `[outputs, inputs]`, `dx`
/// `[n, inputs]` overwritten).
pub fn linear_backward_data(ctx: &Ctx, l: &Linear, dy: &[f32], w: &[f32], dx: &mut [f32]) -> Result<()> {
    let isa = ctx.isa.check()?;
    l.check(dx.len(), w.len(), dy.len())?;
    if l.n == 0 {
        return Ok(());
    }
    let (i_n, o_n) = (l.inputs, l.outputs);
    let per_task = BACKWARD_DATA_SAMPLES_PER_TASK;
    dx.par_chunks_mut(per_task * i_n).zip(dy.par_chunks(per_task * o_n)).for_each(|(dxt, dyt)| {
        // SAFETY: `isa` was checked; dxt and dyt hold the same samples; w holds o_n rows of
        // i_n.
        unsafe { axpy_task(isa, dyt, w, i_n, o_n, dxt) }
    });
    Ok(())
}

/// One task of [`linear_backward_data`]: chunk by chunk of the inputs
/// ([`BACKWARD_DATA_INPUT_CHUNK`]), its samples four at a time where the ISA has 32 vector
/// registers (16 accumulators), else two at a time, and a last one alone. Each group of
/// samples streams the chunk's weight rows once, so more samples a group means fewer passes
/// over them, and the groups after the first find them in L1. At 1024 inputs the rows lie
/// 4 KiB apart and come from L2 (the L1 sets they map to hold a few of them): two samples a
/// pass ran that layer at 40-45% of the peak on Zen 4's AVX-512, four at 93%. On AVX2, four
/// samples with two vectors of inputs (the 16 registers' share) measured no faster than
/// two, so it keeps two. Every `dx[s][i]` sums over `j` in order in any group and chunk:
/// the bits do not depend on either.
///
/// # Safety
/// The ISA of `V` is enabled; `dy` holds `samples * outputs` floats, `dx` `samples *
/// inputs`, `w` `outputs * inputs`, for the same number of samples.
#[inline(always)]
unsafe fn axpy_task_body<V: F32x>(dy: &[f32], w: &[f32], inputs: usize, outputs: usize, dx: &mut [f32]) {
    assert!(inputs > 0 && dy.len() / outputs.max(1) >= dx.len() / inputs);
    let wide = if V::REGISTERS >= 32 { 4 } else { 2 };
    for start in (0..inputs).step_by(BACKWARD_DATA_INPUT_CHUNK) {
        let cols = start..(start + BACKWARD_DATA_INPUT_CHUNK).min(inputs);
        let (mut dx, mut dy) = (&mut *dx, dy);
        while !dx.is_empty() {
            let k = match (dx.len() / inputs).min(wide) {
                4 => 4,
                2 | 3 => 2,
                _ => 1,
            };
            let (hx, tx) = dx.split_at_mut(k * inputs);
            let (hy, ty) = dy.split_at(k * outputs);
            // SAFETY: hx and hy are the same k samples of dx and dy; w is whole.
            unsafe {
                match k {
                    4 => axpy_rows_body::<V, 4>(hy, w, inputs, outputs, hx, cols.clone()),
                    2 => axpy_rows_body::<V, 2>(hy, w, inputs, outputs, hx, cols.clone()),
                    _ => axpy_rows_body::<V, 1>(hy, w, inputs, outputs, hx, cols.clone()),
                }
            }
            (dx, dy) = (tx, ty);
        }
    }
}

simd_dispatch! {
    /// [`axpy_task_body`] on `isa`.
    unsafe fn axpy_task(dy: &[f32], w: &[f32], inputs: usize, outputs: usize, dx: &mut [f32]) => axpy_task_body
}

/// `dx[s][i] = Σ_j dy[s][j] w[j][i]` for `S` samples and the inputs `cols`: blocks of
/// four vectors of `i`, each summing over `j` in order into `4 x S` independent
/// accumulators (one chain per vector would wait on the FMA latency at every `j`), stored
/// once.
///
/// # Safety
/// The ISA of `V` is enabled; `dy` holds `S * outputs`, `w` `outputs * inputs`, `dx`
/// `S * inputs` floats; `cols` ends at or below `inputs`.
#[inline(always)]
unsafe fn axpy_rows_body<V: F32x, const S: usize>(
    dy: &[f32],
    w: &[f32],
    inputs: usize,
    outputs: usize,
    dx: &mut [f32],
    cols: std::ops::Range<usize>,
) {
    assert!(dy.len() >= S * outputs && w.len() >= outputs * inputs && dx.len() >= S * inputs);
    let l = V::LANES;
    assert!(cols.start <= cols.end && cols.end <= inputs);
    // Blocks of four vectors from `cols.start`, then single vectors, then single floats.
    let quad = cols.start + (cols.end - cols.start) / (4 * l) * (4 * l);
    let full = quad + (cols.end - quad) / l * l;
    // SAFETY: loads and stores at indices below `full <= cols.end <= inputs` within rows;
    // dy reads below S * outputs.
    unsafe {
        let (wp, dxp, dyp) = (w.as_ptr(), dx.as_mut_ptr(), dy.as_ptr());
        for i in (cols.start..quad).step_by(4 * l) {
            let mut acc = [[V::zero(); 4]; S];
            for j in 0..outputs {
                let wr = wp.add(j * inputs + i);
                let wv = [V::load(wr), V::load(wr.add(l)), V::load(wr.add(2 * l)), V::load(wr.add(3 * l))];
                for (s, accs) in acc.iter_mut().enumerate() {
                    let g = V::splat(*dyp.add(s * outputs + j));
                    for (a, &wq) in accs.iter_mut().zip(&wv) {
                        *a = g.fma(wq, *a);
                    }
                }
            }
            for (s, accs) in acc.iter().enumerate() {
                for (q, a) in accs.iter().enumerate() {
                    a.store(dxp.add(s * inputs + i + q * l));
                }
            }
        }
        for i in (quad..full).step_by(l) {
            let mut acc = [V::zero(); S];
            for j in 0..outputs {
                let wv = V::load(wp.add(j * inputs + i));
                for (s, a) in acc.iter_mut().enumerate() {
                    *a = V::splat(*dyp.add(s * outputs + j)).fma(wv, *a);
                }
            }
            for (s, a) in acc.iter().enumerate() {
                a.store(dxp.add(s * inputs + i));
            }
        }
    }
    for s in 0..S {
        for i in full..cols.end {
            dx[s * inputs + i] = (0..outputs).fold(0.0, |t, j| dy[s * outputs + j].mul_add(w[j * inputs + i], t));
        }
    }
}

/// Backward-weights: `dw = dyᵀ · x` (`dw` `[outputs, inputs]`, overwritten) and, if given,
/// `db[j] = Σ_s dy[s][j]`. With `accumulate`, both are added to what `dw` and `db` hold
/// (for batches processed in parts).
pub fn linear_backward_weights(
    ctx: &Ctx,
    l: &Linear,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    accumulate: bool,
) -> Result<()> {
    let isa = ctx.isa.check()?;
    l.check(x.len(), dw.len(), dy.len())?;
    let (n, i_n, o_n) = (l.n, l.inputs, l.outputs);
    if let Some(db) = db {
        l.check_bias("bias gradient length vs outputs", db.len())?;
        for (j, d) in db.iter_mut().enumerate() {
            *d = (0..n).fold(if accumulate { *d } else { 0.0 }, |t, s| t + dy[s * o_n + j]);
        }
    }
    // Tasks are column blocks of dw: inputs i0..i0+len of every row, handed out as
    // disjoint row pieces.
    let mut blocks: Vec<Vec<&mut [f32]>> =
        (0..i_n.div_ceil(INPUTS_PER_TASK)).map(|_| Vec::with_capacity(o_n)).collect();
    for row in dw.chunks_mut(i_n) {
        for (b, piece) in row.chunks_mut(INPUTS_PER_TASK).enumerate() {
            blocks[b].push(piece);
        }
    }
    blocks.into_par_iter().enumerate().for_each(|(b, mut rows)| {
        let i0 = b * INPUTS_PER_TASK;
        for (j0, width) in output_blocks(o_n, max_outputs(isa)) {
            let out = &mut rows[j0..j0 + width];
            // SAFETY: `isa` was checked; x holds n rows of i_n and dy n rows of o_n; the
            // pieces are columns i0.. of rows j0..j0+width of dw, all of one length.
            let t = WgradTile { x, dy, n, inputs: i_n, outputs: o_n, i0, j0, accumulate };
            unsafe {
                match width {
                    12 => wgrad_tile::<12>(isa, &t, out),
                    10 => wgrad_tile::<10>(isa, &t, out),
                    8 => wgrad_tile::<8>(isa, &t, out),
                    6 => wgrad_tile::<6>(isa, &t, out),
                    4 => wgrad_tile::<4>(isa, &t, out),
                    3 => wgrad_tile::<3>(isa, &t, out),
                    2 => wgrad_tile::<2>(isa, &t, out),
                    _ => wgrad_tile::<1>(isa, &t, out),
                }
            }
        }
    });
    Ok(())
}

/// What a backward-weights tile reads: all samples of `x` (`[n, inputs]`) and `dy`
/// (`[n, outputs]`), and where its piece of `dw` starts (input `i0`, output `j0`).
struct WgradTile<'a> {
    x: &'a [f32],
    dy: &'a [f32],
    n: usize,
    inputs: usize,
    outputs: usize,
    i0: usize,
    j0: usize,
    accumulate: bool,
}

/// `out[j][c] = Σ_s dy[s][j0 + j] x[s][i0 + c]` (added to `out` with `accumulate`) for `J`
/// rows of `dw` (each piece of the same length), samples summed in order.
///
/// # Safety
/// The ISA of `V` is enabled; `x` holds `n * inputs`, `dy` `n * outputs` floats;
/// `out.len() == J`, `j0 + J <= outputs`, `i0 + out[j].len() <= inputs`.
#[inline(always)]
unsafe fn wgrad_tile_body<V: F32x, const J: usize>(t: &WgradTile, out: &mut [&mut [f32]]) {
    let WgradTile { x, dy, n, inputs, outputs, i0, j0, accumulate } = *t;
    let len = out.first().map_or(0, |r| r.len());
    assert!(out.len() == J && j0 + J <= outputs && i0 + len <= inputs);
    assert!(x.len() >= n * inputs && dy.len() >= n * outputs && out.iter().all(|r| r.len() == len));
    let l = V::LANES;
    let full = len / l * l;
    let pairs = len / (2 * l) * (2 * l);
    // SAFETY: x loads at columns below i0 + full <= inputs of rows below n; stores below
    // `full` within each piece.
    unsafe {
        // Two vectors of inputs at a time: each broadcast of dy feeds two FMAs (with one,
        // the broadcasts were a load per FMA). Same order of sums per element.
        for c in (0..pairs).step_by(2 * l) {
            let mut acc: [[V; J]; 2] = core::array::from_fn(|h| {
                core::array::from_fn(|j| if accumulate { V::load(out[j].as_ptr().add(c + h * l)) } else { V::zero() })
            });
            for s in 0..n {
                let xr = x.as_ptr().add(s * inputs + i0 + c);
                let xv = [V::load(xr), V::load(xr.add(l))];
                let g = &dy[s * outputs + j0..s * outputs + j0 + J];
                for j in 0..J {
                    let gj = V::splat(g[j]);
                    acc[0][j] = gj.fma(xv[0], acc[0][j]);
                    acc[1][j] = gj.fma(xv[1], acc[1][j]);
                }
            }
            for j in 0..J {
                acc[0][j].store(out[j].as_mut_ptr().add(c));
                acc[1][j].store(out[j].as_mut_ptr().add(c + l));
            }
        }
        for c in (pairs..full).step_by(l) {
            let mut acc: [V; J] =
                core::array::from_fn(|j| if accumulate { V::load(out[j].as_ptr().add(c)) } else { V::zero() });
            for s in 0..n {
                let xv = V::load(x.as_ptr().add(s * inputs + i0 + c));
                let g = &dy[s * outputs + j0..s * outputs + j0 + J];
                for j in 0..J {
                    acc[j] = V::splat(g[j]).fma(xv, acc[j]);
                }
            }
            for (j, a) in acc.iter().enumerate() {
                a.store(out[j].as_mut_ptr().add(c));
            }
        }
    }
    for (j, row) in out.iter_mut().enumerate() {
        for c in full..len {
            let init = if accumulate { row[c] } else { 0.0 };
            row[c] = (0..n).fold(init, |t, s| dy[s * outputs + j0 + j].mul_add(x[s * inputs + i0 + c], t));
        }
    }
}

simd_dispatch! {
    /// [`wgrad_tile_body`] on `isa`.
    unsafe fn wgrad_tile<const J: usize>(t: &WgradTile, out: &mut [&mut [f32]]) => wgrad_tile_body
}

//! Winograd convolution F(M x M, 3 x 3) for 3x3 filters, stride 1, dilation 1 (M = 2 or 4).
//!
//! The output is cut into `M x M` tiles; with `α = M + 2` each tile needs `α²` products
//! per (input, output channel) pair instead of `9 M²` (2.25x fewer for F(2x2), 4x fewer for
//! F(4x4)). For a block of tiles: the input transform writes `α²` matrices `[tiles, cin]`
//! (interleaved tile-major, see [`transform`]), each multiplies the matching transformed
//! filter `[cin, cout]` on our GEMM, and the output transform turns the `α²` products
//! `[tiles, cout]` into output tiles with bias and ReLU.
//! Backward-data is the same on the transposed problem ([`super::pad::transposed`]), or
//! the adjoint of the forward's tiles where the output has fewer tiles ([`adjoint`]);
//! backward-filter differentiates the tile formula (`wgrad.rs`).
//!
//! Blocks are whole rows of tiles, so each owns a contiguous run of output rows; threads
//! split blocks and a block's arithmetic never depends on the split (bit-identical results
//! for any thread count).
//!
//! The filter's transform is made per call, or taken from the thread's cache of them
//! ([`filter_cache`]) when the caller names its weights' version (`Ctx::weights_version`):
//! the same bits either way.

mod adjoint;
mod filter_cache;
mod pooled;
mod transform;
mod wgrad;

pub(crate) use wgrad::backward_filter;

use super::pad::{flip_filter, transpose, transposed};
use super::{Conv2d, Extent, Gradient};
use crate::arch::Isa;
use crate::error::Result;
use crate::gemm::{sgemm_strided_batch, MatRef};
use crate::scratch::{with_scratch, Slot};
use filter_cache::{Form, Key};
use pooled::PoolGrid;
use rayon::prelude::*;
use transform::{Packing, Tiles};

/// Tiles per block at most (rounded down to whole tile rows): enough rows for the
/// per-position GEMMs to run near peak, few enough that a block's transformed input and
/// products stay in L2. Measured on the benchmark shapes (forward, F(4x4)): 24, 32, 48, 96,
/// 192 tiles; 48 was best or within noise of best on each.
const TILES_PER_BLOCK: usize = 48;

/// ...and at most this many bytes of transformed input and products together with the
/// transformed filter that every block's GEMMs read (half of a 2 MiB L2): a block's working
/// set stays in L2. Wide layers: 16 tiles of 256 channels each way are 1.2 MB; the 14x14
/// 64 -> 64 layer of the residual network has a 0.6 MB filter, beside which blocks of 48
/// tiles (0.9 MB) ran its forward and backward-data ~10% slower than blocks of 12-20.
const BLOCK_BYTES: usize = 1 << 20;

/// ...but at least this many tiles (when the pass has them): the tiles are the GEMMs' rows,
/// and a GEMM of a few rows wastes most of its 14-row microkernel.
const MIN_BLOCK_TILES: usize = 16;

/// Blocks a pass is cut into at least, where each can still have [`MIN_BLOCK_TILES`], so
/// that both cores get work when a pass runs alone on the machine.
const MIN_BLOCKS: usize = 2;

/// Tile rows per block for `tile_rows` rows of `tw` tiles with `per_tile` bytes of
/// transformed input and products each, beside `filter` bytes of transformed filter: blocks
/// as equal as whole rows allow, by the shape alone (never the thread count).
fn rows_per_block(tile_rows: usize, tw: usize, per_tile: usize, filter: usize) -> usize {
    let max_tiles = TILES_PER_BLOCK.min(BLOCK_BYTES.saturating_sub(filter) / per_tile.max(1)).max(MIN_BLOCK_TILES);
    let max_rows = (max_tiles / tw).max(1);
    let min_rows = MIN_BLOCK_TILES.div_ceil(tw);
    let blocks = tile_rows.div_ceil(max_rows).max(MIN_BLOCKS.min(tile_rows / min_rows)).max(1);
    tile_rows.div_ceil(blocks).max(1)
}

/// The `positions` per-position products of a block of `t` tiles: `out[pos] = lhs[pos] ·
/// filter[pos]`, where `lhs` holds `[t, k]` per position and `out` `[t, n]`, placed by
/// their [`Packing`]s, and `filter` is a transformed filter `[k][positions][n]` (rows
/// `positions·n` apart). Forward: `k = cin`, `n = cout`; the adjoint backward-data: `k =
/// cout`, `n = cin`.
fn position_products(
    isa: Isa,
    positions: usize,
    t: usize,
    (lhs, k, pl): (&[f32], usize, Packing),
    filter: &[f32],
    (out, n, po): (&mut [f32], usize, Packing),
) -> Result<()> {
    sgemm_strided_batch(
        isa,
        positions,
        1.0,
        (MatRef::new(lhs, t, k, pl.tile, 1)?, MatRef::new(filter, k, n, positions * n, 1)?),
        0.0,
        (t, n, po.tile, out),
        [pl.pos, n, po.pos],
    )
}

/// Output floats per task of a filter transform at least: a 32 -> 32 filter's (36,864 for
/// F(4x4)) is one task. Split a slab per input channel, it forked 32 tasks per call, and
/// the calls run per part of a batch inside threads that each run a shard: the forks cost
/// more than the transform.
const FILTER_TASK: usize = 1 << 16;

/// Runs `f` on the transformed filter (`[cin'][α²][cout']`, see [`transform_filter`]) of
/// `c`'s filter `w` in the form `form` reads it (`(cin', cout')` = `(cin, cout)` for the
/// forward, `(cout, cin)` for the two backward-data forms): this thread's kept transform
/// when `version` names `w`'s values and one was made for them, else made here (and kept
/// when `version` is given).
fn with_filter<const M: usize, R>(
    isa: Isa,
    c: &Conv2d,
    (w, version): (&[f32], Option<u64>),
    form: Form,
    f: impl FnOnce(&[f32]) -> R,
) -> R {
    let a = M + 2;
    let (cin, cout) = if form == Form::Forward { (c.cin, c.cout) } else { (c.cout, c.cin) };
    let len = a * a * cin * cout;
    let make = |u: &mut [f32]| match form {
        Form::Forward => transform_filter::<M>(isa, w, u, cin, cout),
        Form::Flipped => with_scratch(Slot::Flipped, w.len(), |wf| {
            flip_filter(isa, c, w, wf);
            transform_filter::<M>(isa, wf, u, cin, cout)
        }),
        Form::Transposed => with_scratch(Slot::Flipped, 9 * cin * cout, |wt| {
            for (src, dst) in w.chunks_exact(cin * cout).zip(wt.chunks_exact_mut(cin * cout)) {
                transpose(isa, src, cout, cin, dst);
            }
            transform_filter::<M>(isa, wt, u, cin, cout)
        }),
    };
    match version {
        Some(version) => {
            let key = Key { place: (w.as_ptr() as usize, w.len()), version, form, shape: (M, cin, cout) };
            filter_cache::with_transformed(key, len, make, f)
        }
        None => with_scratch(Slot::Filter, len, |u| {
            make(u);
            f(u)
        }),
    }
}

/// The transformed filter `u` (`[cin][α²][cout]`, one slab per input channel) of the 3x3
/// HWIO filter `w` (`[3, 3, cin, cout]`), in tasks of whole slabs.
fn transform_filter<const M: usize>(isa: Isa, w: &[f32], u: &mut [f32], cin: usize, cout: usize) {
    let slab = (M + 2) * (M + 2) * cout;
    assert!(w.len() >= 9 * cin * cout && u.len() == cin * slab, "winograd: filter shapes");
    let per_task = FILTER_TASK.div_ceil(slab.max(1)).max(1);
    u.par_chunks_mut(per_task * slab.max(1)).enumerate().for_each(|(task, us)| {
        // SAFETY: w holds the 3x3 HWIO filter (asserted), the chunk is whole slabs of input
        // channels from task·per_task on, below cin; `isa` was checked by the public entry
        // point.
        unsafe { transform::filter::<M>(isa, w, us, task * per_task, cin, cout) };
    });
}

/// Whether Winograd F(M x M, 3 x 3) computes `c`: 3x3 filter, stride 1, dilation 1.
pub(crate) fn applies(c: &Conv2d) -> bool {
    (c.kh, c.kw, c.sh, c.sw, c.dh, c.dw) == (3, 3, 1, 1, 1, 1)
}

/// Where a forward pass writes: the convolution output `[n, ho, wo, cout]` (after bias and
/// an optional ReLU; with `add`, added to what `y` holds instead, with neither), or its
/// ReLU'd 2x2/2 max pooling `[n, hp, wp, cout]` with the argmax of every pooled value (see
/// [`pooled`]).
enum Sink<'a> {
    Full { y: &'a mut [f32], relu: bool, add: bool },
    Pooled { y: &'a mut [f32], argmax: &'a mut [u32], grid: PoolGrid },
}

/// One block's part of a [`Sink`]: the rows its tile rows write.
enum BlockSink<'a> {
    Full(&'a mut [f32]),
    Pooled(&'a mut [f32], &'a mut [u32]),
}

/// The forward of geometry `g` (3x3, stride 1) into `sink`, with `x` (`[n, g.h, g.w,
/// g.cin]`) at `(top, left)` of the zero canvas (its padding; read in place) and `u` the
/// transformed filter (`[g.cin][α²][g.cout]`, [`with_filter`]).
fn run_forward<const M: usize>(
    isa: Isa,
    g: &Conv2d,
    (x, top, left): (&[f32], isize, isize),
    u: &[f32],
    bias: Option<&[f32]>,
    sink: Sink<'_>,
) -> Result<()> {
    let a = M + 2;
    // Tiles cover the output, or for a pooled sink the pooling windows: an odd last row or
    // column, which no window reads, would cost a whole row or column of tiles.
    let (eh, ew) = match &sink {
        Sink::Pooled { grid, .. } => (2 * grid.hp, 2 * grid.wp),
        Sink::Full { .. } => (g.ho, g.wo),
    };
    let (th, tw) = (eh.div_ceil(M), ew.div_ceil(M));
    let (cin, cout) = (g.cin, g.cout);
    // Blocks of whole tile rows; the output rows of consecutive tile rows are contiguous.
    let tile_rows = g.n * th;
    let rows_per_block = rows_per_block(tile_rows, tw, a * a * (cin + cout) * 4, a * a * cin * cout * 4);
    let firsts = (0..tile_rows).step_by(rows_per_block).map(|first| (first, rows_per_block.min(tile_rows - first)));
    // The rows (full or pooled) of the output that tile row `tr` writes.
    let full_rows = |tr: usize| M.min(g.ho - tr % th * M);
    let mut blocks = Vec::with_capacity(tile_rows.div_ceil(rows_per_block));
    let (relu, add, grid) = match sink {
        Sink::Full { y, relu, add } => {
            if y.is_empty() {
                return Ok(());
            }
            let mut rest = y;
            for (first, count) in firsts {
                let rows: usize = (first..first + count).map(full_rows).sum();
                let (head, tail) = rest.split_at_mut(rows * g.wo * cout);
                blocks.push((first, count, BlockSink::Full(head)));
                rest = tail;
            }
            (relu, add, None)
        }
        Sink::Pooled { y, argmax, grid } => {
            if y.is_empty() {
                return Ok(());
            }
            let pooled_rows = |tr: usize| (M / 2).min(grid.hp.saturating_sub(tr % th * M / 2));
            let (mut rest_y, mut rest_a) = (y, argmax);
            for (first, count) in firsts {
                let len = (first..first + count).map(pooled_rows).sum::<usize>() * grid.wp * cout;
                let (hy, ty) = rest_y.split_at_mut(len);
                let (ha, ta) = rest_a.split_at_mut(len);
                blocks.push((first, count, BlockSink::Pooled(hy, ha)));
                (rest_y, rest_a) = (ty, ta);
            }
            (true, false, Some(grid))
        }
    };
    assert!(x.len() >= g.n * g.h * g.w * g.cin, "winograd: input shorter than its geometry");
    assert!(u.len() == a * a * cin * cout, "winograd: transformed filter of another shape");
    blocks.into_par_iter().try_for_each(|(first, count, yb)| {
        let t = count * tw;
        let tiles = Tiles { first: first * tw, count: t, th, tw, h: g.h, w: g.w, c: cin, top, left };
        let (pv, pm) = (Packing::tile_major(a, cin), Packing::tile_major(a, cout));
        with_scratch(Slot::Lowered, pv.len(a, t, cin), |v| {
            with_scratch(Slot::Product, pm.len(a, t, cout), |m| {
                // SAFETY: x holds the whole batch (asserted above); v holds what pv
                // places.
                unsafe { transform::input::<M>(isa, x, &tiles, pv, v) };
                position_products(isa, a * a, t, (v, cin, pv), u, (m, cout, pm))?;
                let out = Tiles { h: g.ho, w: g.wo, c: cout, top: 0, left: 0, ..tiles };
                let bias = bias.unwrap_or(&[]);
                // SAFETY: m holds what pm places; the block's sink is exactly the
                // (full or pooled) output rows of its tile rows; bias has cout floats
                // (checked by the caller); M is even for a pooled sink.
                unsafe {
                    match (yb, grid.as_ref()) {
                        (BlockSink::Full(yb), _) => transform::output::<M>(isa, (m, pm), &out, bias, relu, add, yb),
                        (BlockSink::Pooled(yb, ab), Some(grid)) => {
                            pooled::output_pooled::<M>(isa, (m, pm), &out, grid, bias, (yb, ab))
                        }
                        (BlockSink::Pooled(..), None) => unreachable!("a pooled block has its grid"),
                    }
                }
                Ok(())
            })
        })
    })
}

/// Forward with F(M x M, 3 x 3). The caller checked [`applies`].
pub(crate) fn forward<const M: usize>(
    isa: Isa,
    c: &Conv2d,
    x: &[f32],
    w: (&[f32], Option<u64>),
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) -> Result<()> {
    let x = (x, c.pad_top as isize, c.pad_left as isize);
    with_filter::<M, _>(isa, c, w, Form::Forward, |u| {
        run_forward::<M>(isa, c, x, u, bias, Sink::Full { y, relu, add: false })
    })
}

/// `y = maxpool2x2(relu(conv(x, w) + bias))` with the argmax of every pooled output
/// (`y`, `argmax`: `[n, ho / 2, wo / 2, cout]`; the argmax as window cells, see
/// `conv::fused`), with F(M x M, 3 x 3), `M` even. The caller checked [`applies`] and the
/// lengths.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_pooled<const M: usize>(
    isa: Isa,
    c: &Conv2d,
    x: &[f32],
    w: (&[f32], Option<u64>),
    bias: Option<&[f32]>,
    y: &mut [f32],
    argmax: &mut [u32],
) -> Result<()> {
    const { assert!(M.is_multiple_of(2), "pooling windows tile only even tiles") };
    let grid = PoolGrid { hp: c.ho / 2, wp: c.wo / 2 };
    let sink = Sink::Pooled { y, argmax, grid };
    let x = (x, c.pad_top as isize, c.pad_left as isize);
    with_filter::<M, _>(isa, c, w, Form::Forward, |u| run_forward::<M>(isa, c, x, u, bias, sink))
}

/// Backward-data with F(M x M, 3 x 3): the forward of the transposed problem, or the
/// adjoint of the forward's tiles where that has fewer tiles ([`adjoint`]). `dy` is zero
/// outside the top-left `extent` (rows, columns) of each image (the adjoint tiles only
/// that). `dx` is overwritten, or with `accumulate` added to: each output pixel's sum plus
/// what it held, one rounding, as adding a separately computed gradient would give. The
/// caller checked [`applies`].
pub(crate) fn backward_data<const M: usize>(
    isa: Isa,
    c: &Conv2d,
    dy: Gradient,
    w: (&[f32], Option<u64>),
    dx: &mut [f32],
    extent: Extent,
    accumulate: bool,
) -> Result<()> {
    if adjoint::pays(c, M, extent) {
        return with_filter::<M, _>(isa, c, w, Form::Transposed, |ut| {
            adjoint::backward_data::<M>(isa, c, dy, ut, dx, extent, accumulate)
        });
    }
    let (g, pl) = transposed(c, c.h.div_ceil(M) * M, c.w.div_ceil(M) * M);
    dy.dense(|dy| {
        with_filter::<M, _>(isa, c, w, Form::Flipped, |u| {
            let sink = Sink::Full { y: dx, relu: false, add: accumulate };
            run_forward::<M>(isa, &g, (dy, pl.top, pl.left), u, None, sink)
        })
    })
}

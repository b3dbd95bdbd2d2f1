//! Backward-filter with Winograd F(M x M, 3 x 3): fewer multiplications for the filter
//! gradient, as for the other two passes.
//!
//! The forward computes each output tile as `Y = Aᵀ [U ⊙ V] A` with `U = G g Gᵀ` (the
//! filter) and `V = Bᵀ d B` (the input tile). Differentiating, the product's gradient is
//! `dM = A dY Aᵀ` for the tile's output gradient `dY`, `dU = Σ_tiles dM ⊙ V` (per transformed
//! position, a GEMM over the tiles: `[cin, tiles] x [tiles, cout]`), and `dg = Gᵀ dU G`. For
//! F(2x2) that is 16 products per tile and channel pair instead of 36 (2.25x fewer), for
//! F(4x4) 36 instead of 144 (4x).
//!
//! Determinism: tile rows are cut into blocks, and blocks into at most [`GROUPS`] groups, all
//! by the shape alone. A group sums its blocks in order into its own `dU` (GEMMs with
//! beta = 1 after the first), the groups' sums are added in group order, and each group's
//! GEMMs run on one thread: bit-identical results for any thread count.

// The 2-D transforms index their tile arrays by row and column counters on purpose.
#![allow(clippy::needless_range_loop)]

use super::transform::{self, channel_vectors, columns, upto6, Packing, Tiles};
use super::{Conv2d, Extent, Gradient};
use crate::arch::simd::{ld, st};
use crate::arch::simd::{simd_dispatch, F32x};
use crate::arch::Isa;
use crate::elementwise::add_assign;
use crate::error::Result;
use crate::gemm::{sgemm_strided_batch, MatRef};
use crate::scratch::{with_scratch, Slot};
use rayon::prelude::*;

/// Most groups a pass's tiles are summed in (each its own `α² x cin x cout` sum).
const GROUPS: usize = 8;

/// Bytes of transformed input and output gradient a block keeps (it should stay in L2
/// while its `α²` GEMMs read it)...
const BLOCK_BYTES: usize = 1 << 20;

/// ...unless that leaves fewer tiles than this: the tiles are the GEMMs' depth, and a
/// shallow GEMM spends its time writing its `cin x cout` result.
const MIN_BLOCK_TILES: usize = 64;

/// `A y` for one column: `α` values from the `M` output-gradient values `y` (the rest of the
/// array is ignored). `A` is the transpose of the output transform `Aᵀ` in
/// [`transform`]'s `at`.
#[inline(always)]
unsafe fn a_col<V: F32x, const M: usize>(y: [V; 6]) -> [V; 6] {
    // SAFETY: arithmetic only; the ISA of V is enabled by the caller.
    unsafe {
        let zero = V::zero();
        if M == 2 {
            return [y[0], y[0].add(y[1]), y[0].sub(y[1]), zero.sub(y[1]), zero, zero];
        }
        let (e, o) = (y[0].add(y[2]), y[1].add(y[3]));
        let e2 = V::splat(4.0).fma(y[2], y[0]);
        let o2 = V::splat(8.0).fma(y[3], V::splat(2.0).mul(y[1]));
        [y[0], e.add(o), e.sub(o), e2.add(o2), e2.sub(o2), y[3]]
    }
}

/// `Gᵀ u` for one column: the 3 filter taps' gradients from the `α` values `u`. `G` is the
/// filter transform of [`transform`]'s `gt`.
#[inline(always)]
unsafe fn gt_t<V: F32x, const M: usize>(u: [V; 6]) -> [V; 3] {
    // SAFETY: arithmetic only.
    unsafe {
        if M == 2 {
            let h = V::splat(0.5);
            let (s, d) = (h.mul(u[1].add(u[2])), h.mul(u[1].sub(u[2])));
            return [u[0].add(s), d, s.add(u[3])];
        }
        let (s12, d12) = (u[1].add(u[2]), u[2].sub(u[1]));
        let (s34, d34) = (u[3].add(u[4]), u[3].sub(u[4]));
        let sixth = V::splat(1.0 / 6.0);
        [
            V::splat(0.25).mul(u[0]).sub(sixth.mul(s12)).add(V::splat(1.0 / 24.0).mul(s34)),
            sixth.mul(d12).add(V::splat(1.0 / 12.0).mul(d34)),
            sixth.mul(s34.sub(s12)).add(u[5]),
        ]
    }
}

/// Output-gradient transform of a block: value `(t, i*α + j, ch)` placed by `pack` (see
/// [`Packing`]) is `(A dY Aᵀ)[i][j]` for each tile `t` of the block, `dY` its `M x M`
/// window of the gradient (`[n, ho, wo, c]` with `b.h = ho`, `b.w = wo`; dense, or built
/// from the pooled tensors), zero past the edges.
///
/// # Safety
/// `dy` is the whole `n x ho x wo x c` gradient the block's tiles lie in (dense: that many
/// floats; pooled: `[n, ho / 2, wo / 2, c]` each, `c` the convolution's `cout`); `m` holds
/// `pack.len(α, count, c)` floats; the ISA of `V` is enabled.
#[inline(always)]
unsafe fn grad_body<V: F32x, const M: usize>(dy: Gradient<'_>, b: &Tiles, pack: Packing, m: &mut [f32]) {
    // SAFETY: (both loads) rows and columns are clipped to the extent passed with them, so
    // every offset is of a pixel of an image of the block, inside the gradient by the
    // contract; nl channels from ch are < c.
    unsafe {
        match dy {
            Gradient::Dense(dy) => grad_tiles::<V, M>(b, (b.h, b.w), pack, &DenseLoad { dy: dy.as_ptr(), b }, m),
            Gradient::Pooled(p) => {
                let (hp, wp) = (p.cp.pool.ho, p.cp.pool.wo);
                let load =
                    PooledLoad { y: p.y.as_ptr(), g: p.dy.as_ptr(), argmax: p.argmax.as_ptr(), grid: (hp, wp), c: b.c };
                grad_tiles::<V, M>(b, (2 * hp, 2 * wp), pack, &load, m)
            }
        }
    }
}

/// How [`grad_tiles`] reads the output gradient: `nl` channels from `ch` of output pixel
/// `(oy, ox)` of image `n`. A trait with an always-inlined method rather than a closure:
/// the tile reads its 16 cells from written-out code, and a closure called from 16 sites
/// was not inlined (the pooled passes ran at half speed), while one call site in a loop
/// over the window kept the window in memory, zeroed by a `memset` per tile and vector
/// (3% of the convnet's step).
trait GradLoad<V: F32x> {
    /// # Safety
    /// `(n, oy, ox)` is a pixel of the gradient the load was made for, inside its extent;
    /// `ch + nl` is at most its channels, `nl <= LANES`; the ISA of `V` is enabled.
    unsafe fn at(&self, n: usize, oy: usize, ox: usize, ch: usize, nl: usize) -> V;
}

/// The dense gradient `[n, b.h, b.w, b.c]` at `dy`.
struct DenseLoad<'a> {
    dy: *const f32,
    b: &'a Tiles,
}

impl<V: F32x> GradLoad<V> for DenseLoad<'_> {
    #[inline(always)]
    unsafe fn at(&self, n: usize, oy: usize, ox: usize, ch: usize, nl: usize) -> V {
        let b = self.b;
        // SAFETY: per the trait's contract the pixel and channels are inside the gradient.
        unsafe { ld(self.dy.add(((n * b.h + oy) * b.w + ox) * b.c + ch), nl) }
    }
}

/// The gradient of a convolution feeding a ReLU and a 2x2/2 max pooling, from the pooled
/// output `y`, its gradient `g` and `argmax` (`[n, hp, wp, c]` each, `grid = (hp, wp)`; the
/// argmax as window cells, `conv::fused`'s convention): `g` at the argmax where the pooled
/// value is positive, 0 elsewhere.
struct PooledLoad {
    y: *const f32,
    g: *const f32,
    argmax: *const u32,
    grid: (usize, usize),
    /// Channels per pixel.
    c: usize,
}

impl<V: F32x> GradLoad<V> for PooledLoad {
    #[inline(always)]
    unsafe fn at(&self, n: usize, oy: usize, ox: usize, ch: usize, nl: usize) -> V {
        let (hp, wp) = self.grid;
        // SAFETY: per the trait's contract the pooled pixel `(oy / 2, ox / 2)` and the
        // channels are inside the pooled tensors.
        unsafe {
            let zero = V::zero();
            let c = self.c;
            let q = ((n * hp + oy / 2) * wp + ox / 2) * c + ch;
            let (yv, gv, av) = if nl == V::LANES {
                (V::load(self.y.add(q)), V::load(self.g.add(q)), V::load_index(self.argmax.add(q)))
            } else {
                let mut idx = [0u32; 16];
                idx[..nl].copy_from_slice(core::slice::from_raw_parts(self.argmax.add(q), nl));
                (V::load_partial(self.y.add(q), nl), V::load_partial(self.g.add(q), nl), V::load_index(idx.as_ptr()))
            };
            // Each lane's value if its argmax names this pixel's cell, else 0; `+ 0` as the
            // dense gradient's `0 + dy`.
            let cell = V::splat((oy % 2 * 2 + ox % 2) as f32);
            av.select_eq(cell, yv.select_gt(zero, gv, zero), zero).add(zero)
        }
    }
}

/// [`grad_body`]'s tiles, reading the gradient through `load` for pixels inside `(eh, ew)`
/// only (0 outside).
///
/// # Safety
/// `m` holds `p.len(α, count, c)` floats; `load` may be called for those pixels; the ISA
/// of `V` is enabled.
#[inline(always)]
unsafe fn grad_tiles<V: F32x, const M: usize>(
    b: &Tiles,
    (eh, ew): Extent,
    p: Packing,
    load: &impl GradLoad<V>,
    m: &mut [f32],
) {
    let a = M + 2;
    assert!(m.len() >= p.len(a, b.count, b.c) && p.tile >= b.c && p.pos >= b.c);
    // SAFETY: m offsets are < p.len(a, count, c) (the largest, of the last tile's last
    // position's last channel, is that minus one); loads only of cells inside the extent.
    unsafe {
        for t in 0..b.count {
            let (n, y0, x0) = b.origin(t, M);
            let (rows, width) = (M.min(eh.saturating_sub(y0)), M.min(ew.saturating_sub(x0)));
            channel_vectors!(b.c, V::LANES, |ch, nl| {
                // The window's cells written out (constant indices: it stays in registers),
                // each a load inside the extent and zero past it.
                let tm = columns!(
                    M,
                    V::zero(),
                    |i, j| if i < rows && j < width { load.at(n, y0 + i, x0 + j, ch, nl) } else { V::zero() },
                    |col| a_col::<V, M>(col)
                );
                let out = m.as_mut_ptr().add(t * p.tile + ch);
                upto6!(a, |i| {
                    let r = a_col::<V, M>(tm[i]);
                    upto6!(a, |j| st(r[j], out.add((i * a + j) * p.pos), nl));
                });
            });
        }
    }
}

/// Filter-gradient transform of input channel `ci`: `out[(ky*3 + kx) * cout + co] =
/// (Gᵀ dU G)[ky][kx]` from `du` (`[α², cin, cout]`).
///
/// # Safety
/// `du` holds `α² * cin * cout` floats, `out` `9 * cout`, `ci < cin`; the ISA of `V` is
/// enabled.
#[inline(always)]
unsafe fn filter_grad_body<V: F32x, const M: usize>(du: &[f32], out: &mut [f32], ci: usize, cin: usize, cout: usize) {
    let a = M + 2;
    let plane = cin * cout;
    assert!(ci < cin && du.len() >= a * a * plane && out.len() >= 9 * cout);
    // SAFETY: du offsets are < a * a * plane, out offsets < 9 * cout (checked above).
    unsafe {
        for co in (0..cout).step_by(V::LANES) {
            let n = V::LANES.min(cout - co);
            let at = |i: usize, j: usize| ld(du.as_ptr().add((i * a + j) * plane + ci * cout + co), n);
            // Columns first: t[ky][j] = (Gᵀ dU)[ky][j].
            let mut t = [[V::zero(); 6]; 3];
            for j in 0..a {
                let col = gt_t::<V, M>(core::array::from_fn(|i| if i < a { at(i, j) } else { V::zero() }));
                for ky in 0..3 {
                    t[ky][j] = col[ky];
                }
            }
            for (ky, row) in t.iter().enumerate() {
                let r = gt_t::<V, M>(*row);
                for (kx, v) in r.iter().enumerate() {
                    st(*v, out.as_mut_ptr().add((ky * 3 + kx) * cout + co), n);
                }
            }
        }
    }
}

simd_dispatch! {
    /// [`grad_body`] on `isa`.
    pub(super) unsafe fn grad<const M: usize>(dy: Gradient<'_>, b: &Tiles, pack: Packing, m: &mut [f32]) => grad_body
}
simd_dispatch! {
    /// [`filter_grad_body`] on `isa`.
    unsafe fn filter_grad<const M: usize>(du: &[f32], out: &mut [f32], ci: usize, cin: usize, cout: usize)
        => filter_grad_body
}

/// `dw` (HWIO, overwritten) of the 3x3, stride-1 convolution `c` from its input `x` and
/// output gradient `dy` (zero outside the top-left `extent` of each image: only that is
/// tiled). The caller checked [`super::applies`] and the lengths.
pub(crate) fn backward_filter<const M: usize>(
    isa: Isa,
    c: &Conv2d,
    x: &[f32],
    dy: Gradient,
    dw: &mut [f32],
    (eh, ew): Extent,
) -> Result<()> {
    let a = M + 2;
    let (cin, cout) = (c.cin, c.cout);
    let (th, tw) = (eh.min(c.ho).div_ceil(M), ew.min(c.wo).div_ceil(M));
    let tile_rows = c.n * th;
    if tile_rows * tw == 0 {
        dw.fill(0.0);
        return Ok(());
    }
    // Blocks of whole tile rows within the byte budget; groups of consecutive blocks.
    let per_tile = a * a * (cin + cout) * 4;
    let rows_per_block = (BLOCK_BYTES / (per_tile * tw)).max(MIN_BLOCK_TILES.div_ceil(tw)).max(1);
    let blocks = tile_rows.div_ceil(rows_per_block);
    let blocks_per_group = blocks.div_ceil(GROUPS);
    let groups = blocks.div_ceil(blocks_per_group);
    let sum_len = a * a * cin * cout;
    assert!(x.len() >= c.n * c.h * c.w * cin, "winograd backward-filter: input shorter than its geometry");
    let (top, left) = (c.pad_top as isize, c.pad_left as isize);
    with_scratch(Slot::GroupSums, groups * sum_len, |sums| {
        sums.par_chunks_mut(sum_len).enumerate().try_for_each(|(gi, du)| -> Result<()> {
            let first_block = gi * blocks_per_group;
            for (k, bi) in (first_block..(first_block + blocks_per_group).min(blocks)).enumerate() {
                let first = bi * rows_per_block;
                let t = rows_per_block.min(tile_rows - first) * tw;
                let xt = Tiles { first: first * tw, count: t, th, tw, h: c.h, w: c.w, c: cin, top, left };
                let gt = Tiles { h: c.ho, w: c.wo, c: cout, top: 0, left: 0, ..xt };
                // Position-major: each position's GEMM reads its operands' rows in order.
                let (pv, pm) = (Packing::position_major(t, cin), Packing::position_major(t, cout));
                with_scratch(Slot::Lowered, pv.len(a, t, cin), |v| {
                    with_scratch(Slot::Product, pm.len(a, t, cout), |m| {
                        // SAFETY: x holds the whole batch (asserted above); dy is the whole
                        // output gradient (checked by the public entry point); v and m
                        // hold what pv and pm place; `isa` was checked by the public entry
                        // point.
                        unsafe {
                            transform::input::<M>(isa, x, &xt, pv, v);
                            grad::<M>(isa, dy, &gt, pm, m);
                        }
                        // Unpacked kernels (the batch's): each product is small (the tiles
                        // are its depth), and its operands are read in place. Vᵀ: position
                        // pos of the block's tiles, [t, cin] read as [cin, t].
                        let vt = MatRef::new(v, cin, t, 1, pv.tile)?;
                        let mp = MatRef::new(m, t, cout, pm.tile, 1)?;
                        let beta = if k == 0 { 0.0 } else { 1.0 };
                        let du = &mut du[..a * a * cin * cout];
                        sgemm_strided_batch(
                            isa,
                            a * a,
                            1.0,
                            (vt, mp),
                            beta,
                            (cin, cout, cout, du),
                            [pv.pos, pm.pos, cin * cout],
                        )?;
                        Ok(())
                    })
                })?;
            }
            Ok(())
        })?;
        let (total, rest) = sums.split_at_mut(sum_len);
        for part in rest.chunks_exact(sum_len) {
            add_assign(isa, total, part);
        }
        let total: &[f32] = total;
        // Per input channel its 9 x cout gradients ([cin][9][cout], one task each), then
        // into HWIO.
        let plane = cin * cout;
        with_scratch(Slot::Filter, 9 * plane, |per_ci| {
            per_ci.par_chunks_mut(9 * cout).enumerate().for_each(|(ci, out)| {
                // SAFETY: total holds α²·cin·cout floats, ci < cin, out 9·cout; `isa` was
                // checked by the public entry point.
                unsafe { filter_grad::<M>(isa, total, out, ci, cin, cout) };
            });
            for (tap, dst) in dw.chunks_exact_mut(plane).enumerate() {
                for (ci, row) in dst.chunks_exact_mut(cout).enumerate() {
                    row.copy_from_slice(&per_ci[(ci * 9 + tap) * cout..][..cout]);
                }
            }
        });
        Ok(())
    })
}

//! The output side of a Winograd forward that ends in ReLU and a 2x2/2 max pooling: each
//! `M x M` output tile (`M` even, tiles starting at multiples of `M`) holds whole pooling
//! windows, so the tile is pooled in registers and only the pooled values and their argmax
//! reach memory, as in the direct fused kernel ([`crate::conv::fused`], whose conventions
//! this follows: the argmax is the winning pixel's cell in its window, 0..=3 row-major,
//! ties go to the first in row-major window order, and where all four are clamped to 0 it
//! names the largest pre-activation).

// The 2-D transforms index their tile arrays by row and column counters on purpose.
#![allow(clippy::needless_range_loop)]

use super::transform::{at, channel_vectors, columns, upto6, Packing, Tiles};
use crate::arch::simd::{ld, st};
use crate::arch::simd::{simd_dispatch, F32x};

/// Pooled rows `[hp, wp]` of the convolution output `[ho, wo]` (`b.h = ho`, `b.w = wo`,
/// `b.c = cout`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolGrid {
    pub hp: usize,
    pub wp: usize,
}

/// Pooled output of a block: `y` and `argmax` (the pooled rows from the block's first tile
/// row on, `[rows, wp, cout]`) get `max(relu(Aᵀ m A + bias))` over each 2x2 window of every
/// tile and the window's argmax; windows past `hp x wp` (an odd last convolution row or
/// column, or the tiles' overhang) are skipped. `m` holds the products tile-major, as the
/// plain output transform reads them. The argmax is the winning cell of the window
/// (0..=3, row-major; `conv::fused`'s convention).
///
/// # Safety
/// `M` is even; `m` holds `p.len(α, count, cout)` floats; `y` and `argmax` hold every pooled
/// pixel of the block's tiles counted from the block's first tile row; `bias` (if not
/// empty) `cout` floats; the ISA of `V` is enabled.
#[inline(always)]
unsafe fn output_pooled_body<V: F32x, const M: usize>(
    (m, p): (&[f32], Packing),
    b: &Tiles,
    grid: &PoolGrid,
    bias: &[f32],
    (y, argmax): (&mut [f32], &mut [u32]),
) {
    let a = M + 2;
    let h = M / 2;
    assert!(M.is_multiple_of(2) && m.len() >= p.len(a, b.count, b.c) && p.tile >= b.c && p.pos >= b.c);
    assert!(bias.is_empty() || bias.len() >= b.c);
    let (n0, y00, _) = b.origin(0, M);
    let start = (n0 * grid.hp + y00 / 2) * grid.wp;
    // SAFETY: m offsets are < p.len(a, count, c); every stored pooled pixel (py < hp, px <
    // wp) is a pooled pixel of the block, which the contract puts inside y and argmax.
    unsafe {
        let cells = [V::zero(), V::splat(1.0), V::splat(2.0), V::splat(3.0)];
        for t in 0..b.count {
            let (n, y0, x0) = b.origin(t, M);
            let (py0, px0) = (y0 / 2, x0 / 2);
            let rows = h.min(grid.hp.saturating_sub(py0));
            let cols = h.min(grid.wp.saturating_sub(px0));
            if rows == 0 || cols == 0 {
                continue;
            }
            let out = ((n * grid.hp + py0) * grid.wp + px0 - start) * b.c;
            channel_vectors!(b.c, V::LANES, |ch, nl| {
                let tile = m.as_ptr().add(t * p.tile + ch);
                let tm = columns!(a, V::zero(), |i, j| ld(tile.add((i * a + j) * p.pos), nl), |col| at::<V, M>(col));
                let bv = if bias.is_empty() { V::zero() } else { ld(bias.as_ptr().add(ch), nl) };
                let mut o = [[V::zero(); 6]; 6];
                upto6!(M, |i| {
                    let r = at::<V, M>(tm[i]);
                    upto6!(M, |j| o[i][j] = r[j].add(bv));
                });
                for pi in 0..h {
                    for pj in 0..h {
                        if pi >= rows || pj >= cols {
                            continue;
                        }
                        let win = [
                            o[2 * pi][2 * pj],
                            o[2 * pi][2 * pj + 1],
                            o[2 * pi + 1][2 * pj],
                            o[2 * pi + 1][2 * pj + 1],
                        ];
                        let (mut best, mut idx) = (win[0], cells[0]);
                        for q in 1..4 {
                            idx = win[q].select_gt(best, cells[q], idx);
                            best = win[q].select_gt(best, win[q], best);
                        }
                        let at_out = out + (pi * grid.wp + pj) * b.c + ch;
                        st(best.max(V::zero()), y.as_mut_ptr().add(at_out), nl);
                        if nl == V::LANES {
                            idx.store_index(argmax.as_mut_ptr().add(at_out));
                        } else {
                            let mut tmp = [0u32; 16];
                            idx.store_index(tmp.as_mut_ptr());
                            argmax[at_out..at_out + nl].copy_from_slice(&tmp[..nl]);
                        }
                    }
                }
            });
        }
    }
}

simd_dispatch! {
    /// [`output_pooled_body`] on `isa`.
    pub(crate) unsafe fn output_pooled<const M: usize>(
        m: (&[f32], Packing),
        b: &Tiles,
        grid: &PoolGrid,
        bias: &[f32],
        out: (&mut [f32], &mut [u32]),
    ) => output_pooled_body
}

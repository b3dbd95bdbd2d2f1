//! Backward-data with Winograd F(M x M, 3 x 3) as the adjoint of the forward's own tiles.
//!
//! The forward computes each output tile as `Y = Aᵀ [U ⊙ V] A` with `V = Bᵀ d B` for the
//! tile's `α x α` input window `d`. Its adjoint runs the same tiles backwards: `dM = A dY Aᵀ`
//! (the filter gradient's transform, [`super::wgrad`]), `dV = dM Uᵀ` per position (a GEMM
//! `[tiles, cout] x [cout, cin]`), and `dd = B dV Bᵀ` added into the window; neighbouring
//! windows overlap by 2 pixels each way, so a pixel sums up to four windows.
//!
//! It pays where the output does not divide into tiles: the transposed problem
//! ([`super::backward_data`]'s other path) tiles the *input*, which is 2 pixels larger for
//! "valid" padding, so keras.io's 11x11 → 13x13 layer needs 16 tiles an image that way and 9
//! this way. Where the counts are equal the transposed path stays: its output side writes
//! each pixel once instead of adding windows.
//!
//! Determinism: blocks are whole tile rows (by the shape alone, as the forward's). A block
//! zeroes and then adds its windows, in tile order, into the input rows whose first
//! covering tile row is its own; the two rows its first tile row shares with the previous
//! block's last go to a seam of its own, added after all blocks, in block order. Every
//! pixel's sum therefore has one order for any thread count.

// The 2-D transforms index their tile arrays by row and column counters on purpose.
#![allow(clippy::needless_range_loop)]

use super::transform::{channel_vectors, columns, upto6, Packing, Tiles};
use super::wgrad::grad;
use super::{Conv2d, Extent, Gradient};
use crate::arch::simd::{ld, st};
use crate::arch::simd::{simd_dispatch, F32x};
use crate::arch::Isa;
use crate::error::Result;
use crate::scratch::{with_scratch, Slot};
use rayon::prelude::*;

/// `B v` for one column: the adjoint of [`super::transform`]'s `Bᵀ d`, `α` window values from `α`
/// transformed ones.
#[inline(always)]
unsafe fn b_col<V: F32x, const M: usize>(v: [V; 6]) -> [V; 6] {
    // SAFETY: arithmetic only; the ISA of V is enabled by the caller.
    unsafe {
        let zero = V::zero();
        if M == 2 {
            // Bᵀ rows: [1 0 -1 0], [0 1 1 0], [0 -1 1 0], [0 1 0 -1].
            return [v[0], v[1].sub(v[2]).add(v[3]), v[1].add(v[2]).sub(v[0]), zero.sub(v[3]), zero, zero];
        }
        // Bᵀ rows: [4 0 -5 0 1 0], [0 -4 -4 1 1 0], [0 4 -4 -1 1 0], [0 -2 -1 2 1 0],
        // [0 2 -1 -2 1 0], [0 4 0 -5 0 1]; B's row j is Bᵀ's column j.
        let (s12, d21, s34, d43) = (v[1].add(v[2]), v[2].sub(v[1]), v[3].add(v[4]), v[4].sub(v[3]));
        let (c4, c2, c5) = (V::splat(4.0), V::splat(2.0), V::splat(-5.0));
        [
            c4.mul(v[0]),
            c4.fma(d21.add(v[5]), c2.mul(d43)),
            c5.fma(v[0], V::splat(-4.0).fma(s12, zero.sub(s34))),
            c2.fma(zero.sub(d43), c5.fma(v[5], zero.sub(d21))),
            v[0].add(s12).add(s34),
            v[5],
        ]
    }
}

/// Where a block adds its windows: the input rows it owns (zeroed by the caller), and the
/// seam rows it shares with the previous block (its own zeroed buffer). Rows are global,
/// `n * h + iy`; `c` channels, `w` columns.
struct Dst {
    owned: *mut f32,
    owned_first: usize,
    owned_rows: usize,
    seam: *mut f32,
    seam_first: usize,
    seam_rows: usize,
}

impl Dst {
    /// Row `row` (global) of the block's destination, `row_len` floats; null past both.
    fn row(&self, row: usize, row_len: usize) -> *mut f32 {
        if row.wrapping_sub(self.seam_first) < self.seam_rows {
            self.seam.wrapping_add((row - self.seam_first) * row_len)
        } else if row.wrapping_sub(self.owned_first) < self.owned_rows {
            self.owned.wrapping_add((row - self.owned_first) * row_len)
        } else {
            core::ptr::null_mut()
        }
    }
}

/// Adds `B dV Bᵀ` of every tile of the block (`dv` placed by `pack`, see [`Packing`])
/// into the tile's window of the input gradient, at `(top, left)` of the canvas (`b.h x
/// b.w` pixels, `b.c` channels), clipped to the input.
///
/// # Safety
/// `dv` holds `pack.len(α, count, c)` floats; every in-range window row of the block's
/// tiles is a row of `dst`, whose rows hold `b.w * b.c` writable floats; the ISA of `V` is
/// enabled.
#[inline(always)]
unsafe fn scatter_body<V: F32x, const M: usize>(dv: &[f32], b: &Tiles, pack: Packing, dst: &Dst) {
    let a = M + 2;
    assert!(dv.len() >= pack.len(a, b.count, b.c) && pack.tile >= b.c && pack.pos >= b.c);
    let (h, w, row_len) = (b.h as isize, b.w as isize, b.w * b.c);
    // SAFETY: dv offsets are < pack.len(a, count, c); stores go to rows of dst (null rows and
    // columns outside [0, w) are skipped), inside it by the contract.
    unsafe {
        for t in 0..b.count {
            let (n, y0, x0) = b.origin(t, M);
            let rows: [*mut f32; 6] = core::array::from_fn(|i| {
                let iy = y0 as isize + i as isize - b.top;
                if i < a && iy >= 0 && iy < h {
                    let p = dst.row(n * b.h + iy as usize, row_len);
                    assert!(!p.is_null(), "winograd adjoint: a window row outside the block's rows");
                    p
                } else {
                    core::ptr::null_mut()
                }
            });
            let ix0 = x0 as isize - b.left;
            channel_vectors!(b.c, V::LANES, |ch, nl| {
                let tile = dv.as_ptr().add(t * pack.tile + ch);
                let tm =
                    columns!(a, V::zero(), |i, j| ld(tile.add((i * a + j) * pack.pos), nl), |col| b_col::<V, M>(col));
                upto6!(a, |i| if !rows[i].is_null() {
                    let r = b_col::<V, M>(tm[i]);
                    upto6!(a, |j| {
                        let ix = ix0 + j as isize;
                        if ix >= 0 && ix < w {
                            let p = rows[i].add(ix as usize * b.c + ch);
                            st(ld::<V>(p, nl).add(r[j]), p, nl);
                        }
                    });
                });
            });
        }
    }
}

simd_dispatch! {
    /// [`scatter_body`] on `isa`.
    unsafe fn scatter<const M: usize>(dv: &[f32], b: &Tiles, pack: Packing, dst: &Dst) => scatter_body
}

/// Whether the adjoint over `extent` has fewer tiles than the transposed problem for `c`
/// (see the module notes); ties go to the transposed path.
pub(crate) fn pays(c: &Conv2d, m: usize, (eh, ew): Extent) -> bool {
    eh.div_ceil(m) * ew.div_ceil(m) < c.h.div_ceil(m) * c.w.div_ceil(m)
}

/// `dx` (`[n, h, w, cin]`, overwritten, or with `accumulate` added to) of the 3x3 stride-1
/// convolution `c` from `dy` (`[n, ho, wo, cout]`, zero outside the top-left `extent` of
/// each image: only that is tiled) and `ut`, the transform of the filter transposed per tap
/// (`[3, 3, cout, cin]`, no rotation): one `[α²][cin]` slab per output channel, row `co` of
/// position `pos`'s `[cout, cin]` matrix `Uᵀ` ([`super::with_filter`]'s `Transposed`
/// form). The tiles' contributions are added into `dx` as they are scattered, so
/// accumulating only skips the zeroing. The caller checked [`super::applies`] and the
/// lengths.
pub(crate) fn backward_data<const M: usize>(
    isa: Isa,
    c: &Conv2d,
    dy: Gradient,
    ut: &[f32],
    dx: &mut [f32],
    (eh, ew): Extent,
    accumulate: bool,
) -> Result<()> {
    let a = M + 2;
    let (cin, cout) = (c.cin, c.cout);
    let (th, tw) = (eh.min(c.ho).div_ceil(M), ew.min(c.wo).div_ceil(M));
    let tile_rows = c.n * th;
    if tile_rows * tw == 0 || dx.is_empty() {
        if !accumulate {
            dx.fill(0.0);
        }
        return Ok(());
    }
    let (top, left) = (c.pad_top as isize, c.pad_left as isize);
    let row_len = c.w * cin;
    // The first input row (global) that tile row `tr` owns: past the 2 rows it shares with
    // the tile row above it, if any; the batch's end for `tr == tile_rows`.
    let owned_from = |tr: usize| {
        let (n, r) = (tr / th, tr % th);
        let from = (M * r) as isize + if r > 0 { 2 } else { 0 } - top;
        n * c.h + from.clamp(0, c.h as isize) as usize
    };
    let rows_per_block = super::rows_per_block(tile_rows, tw, a * a * (cin + cout) * 4, a * a * cin * cout * 4);
    // Per block: its tile rows, its owned rows (global) and its seam (first row, rows).
    let layout: Vec<_> = (0..tile_rows)
        .step_by(rows_per_block)
        .map(|first| {
            let count = rows_per_block.min(tile_rows - first);
            // The seam: the rows of the block's first tile row that the tile row above covers.
            let (n, r) = (first / th, first % th);
            let seam = if r > 0 {
                let lo = ((M * r) as isize - top).clamp(0, c.h as isize) as usize;
                let hi = ((M * r + 2) as isize - top).clamp(0, c.h as isize) as usize;
                (n * c.h + lo, hi - lo)
            } else {
                (0, 0)
            };
            (first, count, owned_from(first), owned_from(first + count), seam)
        })
        .collect();
    let seam_len = 2 * row_len;
    with_scratch(Slot::GroupSums, layout.len() * seam_len, |seams| {
        let mut work = Vec::with_capacity(layout.len());
        let mut rest = &mut dx[..c.n * c.h * row_len];
        for (&(first, count, from, to, seam), seam_buf) in layout.iter().zip(seams.chunks_exact_mut(seam_len)) {
            let (owned, tail) = rest.split_at_mut((to - from) * row_len);
            work.push((first, count, from, owned, seam, seam_buf));
            rest = tail;
        }
        work.into_par_iter().try_for_each(|(first, count, from, owned, seam, seam_buf)| -> Result<()> {
            if !accumulate {
                owned.fill(0.0);
            }
            seam_buf[..seam.1 * row_len].fill(0.0);
            let t = count * tw;
            let gt = Tiles { first: first * tw, count: t, th, tw, h: c.ho, w: c.wo, c: cout, top: 0, left: 0 };
            let xt = Tiles { h: c.h, w: c.w, c: cin, top, left, ..gt };
            let dst = Dst {
                owned: owned.as_mut_ptr(),
                owned_first: from,
                owned_rows: owned.len() / row_len,
                seam: seam_buf.as_mut_ptr(),
                seam_first: seam.0,
                seam_rows: seam.1,
            };
            let (pm, pv) = (Packing::tile_major(a, cout), Packing::tile_major(a, cin));
            with_scratch(Slot::Product, pm.len(a, t, cout), |m| {
                with_scratch(Slot::Lowered, pv.len(a, t, cin), |v| {
                    // SAFETY: dy is the whole output gradient (checked by the public
                    // entry point); m holds what pm places.
                    unsafe { grad::<M>(isa, dy, &gt, pm, m) };
                    super::position_products(isa, a * a, t, (m, cout, pm), ut, (v, cin, pv))?;
                    // SAFETY: v holds what pv places; every in-range window row of
                    // the block's tiles is an owned row (from its first covering
                    // tile row on) or a seam row (rows the tile row above shares),
                    // each `row_len` floats of `owned` or `seam_buf`.
                    unsafe { scatter::<M>(isa, v, &xt, pv, &dst) };
                    Ok(())
                })
            })
        })?;
        for (&(.., (first_row, rows)), seam_buf) in layout.iter().zip(seams.chunks_exact(seam_len)) {
            let at = &mut dx[first_row * row_len..][..rows * row_len];
            at.iter_mut().zip(seam_buf).for_each(|(d, s)| *d += s);
        }
        Ok(())
    })
}

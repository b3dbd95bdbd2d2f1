//! The fused step's backward-filter (`conv_relu_maxpool_backward_filter`, see `fused.rs`)
//! for ISAs with 16 vector registers (AVX2, the portable fallback).
//!
//! The per-block kernel in `fused.rs` keeps `R` rows of `dw` by `NB` channel vectors in
//! registers and recomputes, for every pixel, each vector's argmax cell and masked
//! gradient, and each row's four-input window table. With 32 registers it takes four
//! vectors per block and the recomputation is shared widely; with 16 it could take only
//! one vector of nine rows, so a row's table was rebuilt once per vector of channels and
//! the masks once per nine rows, with spills: 28% of the FMA peak on cifar_conv1 (AVX2,
//! Zen 3) against the dense backward-filter's 66%, which does four times the FMAs.
//!
//! Here the pooled pixels go in chunks of [`CHUNK`]: each pixel's cells and masked
//! gradients for up to four vectors of channels are computed once per chunk (kept in L1),
//! then every block of `12 / NB` rows accumulates over the chunk in registers, one window
//! table per row and pixel serving all `NB` vectors. Rows, chunks and images are summed in
//! a fixed order: bit-identical for any thread count.

use super::fused::{routed_gradient, Geom, WgradImage};
use crate::arch::simd::{simd_dispatch, F32x};
use crate::arch::Isa;

/// Pooled pixels whose cells and masked gradients are computed once for all row blocks.
const CHUNK: usize = 8;

/// Vectors of channels per block for `vectors` vectors of output channels (1, 2 or 4;
/// `12 / NB` rows of `NB` accumulators, the table, the index and the picked input fit 16).
pub(super) fn block_vectors(vectors: usize) -> usize {
    match vectors {
        1 => 1,
        2 => 2,
        _ => 4,
    }
}

/// One image into `acc` (`[k][coutp]` filter rows, then the `[coutp]` bias), as the
/// per-block kernel; `nb` from [`block_vectors`], `coutp` a multiple of `nb` vectors.
///
/// # Safety
/// `isa` was checked; as the per-block kernel's contract in `fused.rs` for all rows of
/// `img.roff`: every window base + cell + `roff[r]` of the pooled pixels lies in `img.x`;
/// `acc` holds `(k + 1) * coutp` floats, `iota` `coutp`; `y`, `dy`, `a` hold
/// `hp * wp * cout`.
pub(super) unsafe fn image(isa: Isa, nb: usize, img: &WgradImage, acc: &mut [f32]) {
    // SAFETY: forwarded contract.
    unsafe {
        match nb {
            1 => image_nb::<1, 12>(isa, img, acc),
            2 => image_nb::<2, 6>(isa, img, acc),
            _ => image_nb::<4, 3>(isa, img, acc),
        }
    }
}

simd_dispatch! {
    /// [`image_body`] on `isa`.
    unsafe fn image_nb<const NB: usize, const R: usize>(img: &WgradImage, acc: &mut [f32]) => image_body
}

/// [`image`] with `NB` vectors per block and `R` rows per register block.
///
/// # Safety
/// As [`image`]; the ISA of `V` is enabled.
#[inline(always)]
unsafe fn image_body<V: F32x, const NB: usize, const R: usize>(img: &WgradImage, acc: &mut [f32]) {
    let WgradImage { g, roff, x, y, dy, a } = *img;
    let l = V::LANES;
    let k = roff.len();
    let pixels = g.hp * g.wp;
    assert!(acc.len() >= (k + 1) * g.coutp && g.coutp.is_multiple_of(NB * l));
    assert!(y.len() >= pixels * g.cout && dy.len() >= pixels * g.cout && a.len() >= pixels * g.cout);
    // SAFETY: y, dy and a are read at channels below cout of pooled pixels below hp * wp;
    // acc rows below k + 1 at lanes below coutp (asserted above); input
    // reads (in `rows_over_chunk`) at a window base + cell + roff[r], inside x by the
    // contract.
    unsafe {
        let zero = V::zero();
        // Filled once per image: zeroing them per chunk showed as a memset in the profile.
        let mut base = [x.as_ptr(); CHUNK];
        let mut cell = [[zero; NB]; CHUNK];
        let mut grad = [[zero; NB]; CHUNK];
        for c0 in (0..g.coutp).step_by(NB * l) {
            let width = g.cout.saturating_sub(c0).min(NB * l);
            let mut db = [zero; NB];
            // The pooled pixel (py, px) walked in row-major order (no division per pixel).
            let (mut py, mut px) = (0, 0);
            for p0 in (0..pixels).step_by(CHUNK) {
                let pc = CHUNK.min(pixels - p0);
                for i in 0..pc {
                    if px == g.wp {
                        (py, px) = (py + 1, 0);
                    }
                    base[i] = x.as_ptr().add(2 * py * g.yps + 2 * px * g.xps);
                    let o = (p0 + i) * g.cout + c0;
                    for v in 0..NB {
                        let lane0 = v * l;
                        if lane0 >= width {
                            // Past cout: nothing flows (and nothing stale from the last chunk).
                            (cell[i][v], grad[i][v]) = (V::pick4_index(zero), zero);
                            continue;
                        }
                        let n = (width - lane0).min(l);
                        let (q, gc) = routed_gradient(img, o + lane0, n);
                        db[v] = db[v].add(gc);
                        cell[i][v] = V::pick4_index(q);
                        grad[i][v] = gc;
                    }
                    px += 1;
                }
                let chunk = Chunk { base: &base[..pc], cell: &cell[..pc], grad: &grad[..pc] };
                let accp = acc.as_mut_ptr().add(c0);
                let mut r0 = 0;
                while r0 + R <= k {
                    rows_over_chunk::<V, NB, R>(g, &roff[r0..r0 + R], &chunk, accp.add(r0 * g.coutp));
                    r0 += R;
                }
                while r0 < k {
                    rows_over_chunk::<V, NB, 1>(g, &roff[r0..r0 + 1], &chunk, accp.add(r0 * g.coutp));
                    r0 += 1;
                }
            }
            let p = acc.as_mut_ptr().add(k * g.coutp + c0);
            for (v, d) in db.iter().enumerate() {
                V::load(p.add(v * l)).add(*d).store(p.add(v * l));
            }
        }
    }
}

/// A chunk of pooled pixels: each one's window base in the input, and per channel vector
/// its argmax cell (0..4, as [`F32x::pick4_index`]) and masked gradient.
struct Chunk<'a, V, const NB: usize> {
    base: &'a [*const f32],
    cell: &'a [[V; NB]],
    grad: &'a [[V; NB]],
}

/// `RR` rows of `dw` (input offsets `roff`) accumulated over the chunk's pixels in
/// registers, then added onto the accumulator rows at `acc` (`coutp` floats apart).
///
/// # Safety
/// Every chunk base + cell + `roff[r]` lies in the image's input; `acc` holds `RR` rows of
/// `NB` vectors, `coutp` floats apart; the ISA of `V` is enabled.
#[inline(always)]
unsafe fn rows_over_chunk<V: F32x, const NB: usize, const RR: usize>(
    g: &Geom,
    roff: &[usize],
    chunk: &Chunk<V, NB>,
    acc: *mut f32,
) {
    let l = V::LANES;
    let cell_in = [0, g.xps, g.yps, g.yps + g.xps];
    // SAFETY: the function contract.
    unsafe {
        let mut dw = [[V::zero(); NB]; RR];
        for ((&base, cell), grad) in chunk.base.iter().zip(chunk.cell).zip(chunk.grad) {
            for (dwr, &off) in dw.iter_mut().zip(roff) {
                let xr = base.add(off);
                // One channel at stride 1: the window's inputs are two pairs.
                let table = if g.xps == 1 { V::load2x2(xr, xr.add(g.yps)) } else { V::load4(xr, cell_in) };
                for v in 0..NB {
                    dwr[v] = table.pick4_prepared(cell[v]).fma(grad[v], dwr[v]);
                }
            }
        }
        for (r, dwr) in dw.iter().enumerate() {
            let p = acc.add(r * g.coutp);
            for (v, d) in dwr.iter().enumerate() {
                V::load(p.add(v * l)).add(*d).store(p.add(v * l));
            }
        }
    }
}

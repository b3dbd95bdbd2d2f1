//! Convolution + bias + ReLU + 2x2/2 max pooling as one kernel (`f32-cbrp-2x2-*`), forward
//! and backward-filter.
//!
//! (Over 400 lines: the forward and the backward-filter share the packed filter, the tap
//! offsets and the argmax convention below; split apart, each would restate them. The
//! unpooling, which needs only the argmax convention, is `unpool.rs`.)
//!
//! The forward runs the algorithm the plain forward would ([`ConvAlgo::resolve`] of the
//! context's choice): Winograd with its pooled output transform (`winograd/pooled.rs`), or
//! the direct kernel below (for one input channel, 3x3 at stride 1, on ISAs with 32 vector
//! registers, its variant that loads the filter once per image and broadcasts each input
//! once, `fused_c1.rs`).
//!
//! Forward: for each pooled output pixel, the four convolution outputs under its window are
//! computed in registers (four pixels x a block of output channels), biased, clamped and
//! reduced to their maximum before anything is stored: the full-resolution activation never
//! reaches memory, only the pooled output and its argmax.
//!
//! Backward-filter starts from the pooled gradient: a pooled output passes its gradient to
//! its argmax pixel only, and only where the pooled value is positive (ReLU). So per pooled
//! pixel, channel and filter row only one of the window's four inputs meets a nonzero
//! gradient: the kernel picks it per channel lane with a four-entry table lookup
//! ([`F32x::pick4`] of the window's inputs by the lane's argmax cell) and does one FMA, a
//! quarter of the FMAs of the dense backward-filter over the unpooled gradient (whose other
//! three terms are products with zeros). Images are accumulated in fixed groups whose partial
//! sums are added in group order: bit-identical for any thread count. ISAs with 16 vector
//! registers run the chunked variant in `fused_wgrad_chunked.rs` (one window table per row
//! and pixel for up to four vectors of channels; the masks computed once per pixel).
//!
//! Layouts: `x` NHWC `[n, h, w, cin]`, filter HWIO `[kh, kw, cin, cout]`, pooled output and
//! argmax `[n, ho / 2, wo / 2, cout]` (an odd last convolution row or column is dropped, as
//! Keras's VALID pooling does). The argmax is the winning pixel's cell in its own 2x2
//! window, row-major: 0 for `(2py, 2px)`, 1 for `(2py, 2px + 1)`, 2 for `(2py + 1, 2px)`,
//! 3 for `(2py + 1, 2px + 1)`; a value above 3 names no pixel, and its output passes no
//! gradient. (Until session 61 it was the pixel's index in the image's convolution output,
//! as [`crate::pool::max_pool_forward`]'s: turning that into a cell cost the backward-filter
//! a subtraction and three compares per vector, about a fifth of its time on the suite's
//! layers; BENCHMARKS.md, session 61.)
//! Ties among positive outputs go to the first in row-major window order; where all four
//! are clamped to 0 (no gradient flows) it names the largest pre-activation.

use super::pad::{forward_placement, with_placed, Src};
use super::{fused_c1, fused_wgrad_chunked};
use super::{winograd, Conv2d, ConvAlgo, Pass};
use crate::arch::simd::{lanes, simd_dispatch, vector_registers, F32x};
use crate::arch::Isa;
pub use crate::desc::ConvReluPool;
use crate::error::Result;
use crate::pool::Pool2d;
use crate::scratch::{with_scratch, Slot};
use crate::Ctx;
use rayon::prelude::*;

/// Images per group of the backward-filter pass (the partial sums are per group).
const WGRAD_GROUP: usize = 2;

/// Vectors of output channels per block: as many as cover `cout`, up to what the ISA's
/// registers hold for four pixels (16 accumulators on AVX-512 and NEON, 8 on AVX2).
fn block_vectors(isa: Isa, cout: usize) -> usize {
    let max = if vector_registers(isa) >= 32 { 4 } else { 2 };
    match cout.div_ceil(lanes(isa)) {
        1 => 1,
        2 => 2,
        _ => max,
    }
}

/// The geometry a kernel body reads, in floats, on a canvas covering every tap.
#[derive(Clone, Copy)]
pub(super) struct Geom {
    /// Step between horizontally adjacent output pixels (`sw * cin`).
    pub xps: usize,
    /// Step between vertically adjacent output pixels (`sh * row`).
    pub yps: usize,
    pub cin: usize,
    pub cout: usize,
    /// `cout` rounded up to whole channel blocks (the packed filter's row length).
    pub coutp: usize,
    /// Pooled rows and columns.
    pub hp: usize,
    pub wp: usize,
}

/// The packed filter `[kh*kw*cin][coutp]` (zero-padded channels), followed by the bias
/// `[coutp]`.
fn pack(w: &[f32], bias: Option<&[f32]>, k: usize, cout: usize, coutp: usize, out: &mut [f32]) {
    let (wp, rest) = out.split_at_mut(k * coutp);
    for (dst, src) in wp.chunks_exact_mut(coutp).zip(w.chunks_exact(cout)) {
        dst[..cout].copy_from_slice(src);
        dst[cout..].fill(0.0);
    }
    let bp = &mut rest[..coutp];
    bp.fill(0.0);
    if let Some(b) = bias {
        bp[..cout].copy_from_slice(b);
    }
}

/// Forward: `y = maxpool2x2(relu(conv(x, w) + bias))` with the argmax of every pooled
/// output (see the module docs). `y` and `argmax` are overwritten.
pub fn conv_relu_maxpool_forward(
    ctx: &Ctx,
    cp: &ConvReluPool,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    argmax: &mut [u32],
) -> Result<()> {
    let isa = ctx.isa.check()?;
    cp.check(x.len(), w.len(), y.len(), argmax.len())?;
    let c = &cp.conv;
    if let Some(b) = bias {
        Conv2d::check_len("bias length vs cout", b.len(), [c.cout, 1, 1, 1])?;
    }
    let img_out = cp.pool.ho * cp.pool.wo * c.cout;
    if img_out == 0 || c.n == 0 {
        return Ok(());
    }
    // Winograd pools its output tiles in registers too (its 2x2 and 4x4 tiles hold whole
    // windows); it runs where the plain forward would run it.
    match ctx.algo.resolve(c, Pass::Forward, isa) {
        ConvAlgo::Winograd4x3 if winograd::applies(c) => {
            return winograd::forward_pooled::<4>(isa, c, x, (w, ctx.weights_version), bias, y, argmax);
        }
        ConvAlgo::Winograd2x3 if winograd::applies(c) => {
            return winograd::forward_pooled::<2>(isa, c, x, (w, ctx.weights_version), bias, y, argmax);
        }
        algo @ (ConvAlgo::Winograd4x3 | ConvAlgo::Winograd2x3) => algo.check(c, Pass::Forward)?,
        _ => {}
    }
    // One input channel, 3x3, stride 1, 32 registers: the kernel that broadcasts each input once.
    let single = fused_c1::applies(isa, c);
    let nb = if single { fused_c1::block_vectors(isa, c.cout) } else { block_vectors(isa, c.cout) };
    let coutp = c.cout.next_multiple_of(nb * lanes(isa));
    let k = c.kh * c.kw * c.cin;
    // Only the convolution rows and columns the pooling reads.
    let pl = forward_placement(c, cp.pool.ho * 2, cp.pool.wo * 2);
    with_scratch(Slot::Filter, (k + 1) * coutp, |packed| {
        pack(w, bias, k, c.cout, coutp, packed);
        with_placed(x, c.input_shape(), pl, |src: Src| {
            let g = geom(c, &cp.pool, &src, coutp);
            let rows = filter_row_offsets(c, &src);
            let img_in = src.h * src.w * c.cin;
            y.par_chunks_mut(img_out).zip(argmax.par_chunks_mut(img_out)).enumerate().for_each(|(n, (yi, ai))| {
                let xi = &src.data[n * img_in..][..img_in];
                // SAFETY: `isa` was checked; `with_placed` made a canvas on which every tap of
                // every convolution pixel under a pooling window lies inside `xi` (g and rows
                // are derived from it); `packed` holds (k + 1) * coutp floats, coutp a multiple
                // of nb vectors; yi and ai are one image's pooled output. The one-channel
                // kernel's canvas has one channel at stride 1 (xps == 1, by `applies`).
                unsafe {
                    if single {
                        return fused_c1::image(isa, nb, &g, xi, packed, yi, ai);
                    }
                    match (nb, fwd_pixels(isa, nb)) {
                        (1, 2) => fwd_image::<1, 2>(isa, &g, &rows, xi, packed, yi, ai),
                        (1, _) => fwd_image::<1, 1>(isa, &g, &rows, xi, packed, yi, ai),
                        (2, 2) => fwd_image::<2, 2>(isa, &g, &rows, xi, packed, yi, ai),
                        (2, _) => fwd_image::<2, 1>(isa, &g, &rows, xi, packed, yi, ai),
                        _ => fwd_image::<4, 1>(isa, &g, &rows, xi, packed, yi, ai),
                    }
                }
            });
        });
    });
    Ok(())
}

fn geom(c: &Conv2d, pool: &Pool2d, src: &Src, coutp: usize) -> Geom {
    assert!(
        src.c == c.cin
            && (pool.ho * 2 - 1) * c.sh + (c.kh - 1) * c.dh < src.h
            && (pool.wo * 2 - 1) * c.sw + (c.kw - 1) * c.dw < src.w
            && src.data.len() >= c.n * src.h * src.w * c.cin,
        "fused conv+pool: canvas does not cover the taps"
    );
    let row = src.w * c.cin;
    Geom { xps: c.sw * c.cin, yps: c.sh * row, cin: c.cin, cout: c.cout, coutp, hp: pool.ho, wp: pool.wo }
}

/// Offset from an output pixel's top-left input, in floats, of each row of the packed
/// filter: tap `(ky, kx)` row-major, then input channel `ci`.
fn filter_row_offsets(c: &Conv2d, src: &Src) -> Vec<usize> {
    let tap = |ky: usize, kx: usize| (ky * c.dh * src.w + kx * c.dw) * c.cin;
    (0..c.kh).flat_map(|ky| (0..c.kw).flat_map(move |kx| (0..c.cin).map(move |ci| tap(ky, kx) + ci))).collect()
}

/// Pooled pixels computed together by the forward tile: two while the accumulators
/// (`4 * P * NB` vectors) fit the ISA's registers.
fn fwd_pixels(isa: Isa, nb: usize) -> usize {
    let regs = vector_registers(isa);
    if 8 * nb + nb + 2 <= regs {
        2
    } else {
        1
    }
}

/// One image of the forward pass, `NB` vectors of channels per block, `P` pooled pixels of
/// a row per tile (a row's odd last pixel by a one-pixel tile).
///
/// # Safety
/// The ISA of `V` is enabled; `rows` holds the input offset of each packed filter row
/// ([`filter_row_offsets`]), and every such input of convolution pixels `(0..2*hp, 0..2*wp)`
/// lies in `x`; `packed` is as [`pack`] writes it for `g.coutp`; `y`, `a` hold
/// `hp * wp * cout`.
#[inline(always)]
unsafe fn fwd_image_body<V: F32x, const NB: usize, const P: usize>(
    g: &Geom,
    rows: &[usize],
    x: &[f32],
    packed: &[f32],
    y: &mut [f32],
    a: &mut [u32],
) {
    let k = rows.len();
    assert!(packed.len() >= (k + 1) * g.coutp && y.len() >= g.hp * g.wp * g.cout && a.len() >= y.len());
    for c0 in (0..g.coutp).step_by(NB * V::LANES) {
        for py in 0..g.hp {
            let mut px = 0;
            while px < g.wp {
                // SAFETY: forwarded contract; the tile covers pooled pixels px..px+P < wp.
                unsafe {
                    if px + P <= g.wp {
                        fwd_tile::<V, NB, P>(g, rows, x, packed, y, a, c0, py, px);
                        px += P;
                    } else {
                        fwd_tile::<V, NB, 1>(g, rows, x, packed, y, a, c0, py, px);
                        px += 1;
                    }
                }
            }
        }
    }
}

/// Pooled pixels `(py, px..px + P)`, channels `c0..c0 + NB * LANES`: the 4 x P convolution
/// pixels accumulate in registers; [`pool_store`] pools, biases and clamps them.
///
/// # Safety
/// As [`fwd_image_body`], with `px + P <= wp`, `c0 < coutp`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn fwd_tile<V: F32x, const NB: usize, const P: usize>(
    g: &Geom,
    rows: &[usize],
    x: &[f32],
    packed: &[f32],
    y: &mut [f32],
    a: &mut [u32],
    c0: usize,
    py: usize,
    px: usize,
) {
    let l = V::LANES;
    // Offsets of the four pixels of a window from its top-left one.
    let cell_in = [0, g.xps, g.yps, g.yps + g.xps];
    // SAFETY: the contract bounds every access: input reads at a window base + cell + row
    // offset lie in x; filter rows below rows.len(), the bias below coutp; stores cover
    // channels below cout of pooled pixels (py, px..px+P).
    unsafe {
        let zero = V::zero();
        let wp = packed.as_ptr().add(c0);
        let mut acc = [[[zero; NB]; 4]; P];
        // One loop over the filter's rows (taps by input channels), not taps then
        // channels: with few input channels the inner loop was too short to carry its setup.
        for (row, &off) in rows.iter().enumerate() {
            let wr = wp.add(row * g.coutp);
            let mut wv = [zero; NB];
            for (v, w) in wv.iter_mut().enumerate() {
                *w = V::load(wr.add(v * l));
            }
            for (p, accp) in acc.iter_mut().enumerate() {
                let base = x.as_ptr().add(2 * py * g.yps + 2 * (px + p) * g.xps + off);
                for (q, accq) in accp.iter_mut().enumerate() {
                    let xb = V::splat(*base.add(cell_in[q]));
                    for v in 0..NB {
                        accq[v] = xb.fma(wv[v], accq[v]);
                    }
                }
            }
        }
        let bias = wp.add(rows.len() * g.coutp);
        for (p, accp) in acc.iter().enumerate() {
            pool_store(g, accp, bias, y, a, c0, (py, px + p));
        }
    }
}

/// The forward epilogue of pooled pixel `(py, px)`, channels `c0..c0 + NB * LANES`: from the
/// raw sums of its window's four convolution pixels (`acc[cell][vector]`, cells in
/// row-major window order), the maximum and its cell, then the bias added and the ReLU
/// (max commutes with both, both monotonic); stores the pooled value and the argmax.
///
/// # Safety
/// The ISA of `V` is enabled; `bias` points at channel `c0` of the packed bias ([`pack`]);
/// `(py, px)` is a pooled pixel of `g` and `c0 < coutp`; `y` and `a` hold `hp * wp * cout`.
#[inline(always)]
pub(super) unsafe fn pool_store<V: F32x, const NB: usize>(
    g: &Geom,
    acc: &[[V; NB]; 4],
    bias: *const f32,
    y: &mut [f32],
    a: &mut [u32],
    c0: usize,
    (py, px): (usize, usize),
) {
    let l = V::LANES;
    let width = g.cout.saturating_sub(c0).min(NB * l);
    // SAFETY: the bias is read below coutp; stores cover channels below cout of pooled pixel
    // (py, px).
    unsafe {
        let zero = V::zero();
        let cells = [zero, V::splat(1.0), V::splat(2.0), V::splat(3.0)];
        let o = (py * g.wp + px) * g.cout + c0;
        if width == NB * l {
            // A whole block (its NB * LANES channels all below cout): cell by cell across its
            // vectors, then unconditional stores. LLVM then schedules the one-channel
            // kernel's window input by input, all eight chains of FMAs interleaved and the
            // filter in registers; from the vector-by-vector form below it ran the first
            // vector's four chains one after another, the filter spilled to the stack, and
            // that forward took 1.18x as long (BENCHMARKS.md, session 63). The same
            // operations on every lane, so the same values.
            let (mut best, mut idx) = (acc[0], [zero; NB]);
            for q in 1..4 {
                for v in 0..NB {
                    idx[v] = acc[q][v].select_gt(best[v], cells[q], idx[v]);
                    best[v] = acc[q][v].select_gt(best[v], acc[q][v], best[v]);
                }
            }
            for v in 0..NB {
                best[v].add(V::load(bias.add(v * l))).max(zero).store(y.as_mut_ptr().add(o + v * l));
                idx[v].store_index(a.as_mut_ptr().add(o + v * l));
            }
            return;
        }
        #[allow(clippy::needless_range_loop)] // v indexes three arrays
        for v in 0..NB {
            let lane0 = v * l;
            if lane0 >= width {
                break;
            }
            let (mut best, mut idx) = (acc[0][v], zero);
            for q in 1..4 {
                idx = acc[q][v].select_gt(best, cells[q], idx);
                best = acc[q][v].select_gt(best, acc[q][v], best);
            }
            let out = best.add(V::load(bias.add(lane0))).max(zero);
            let n = (width - lane0).min(l);
            if n == l {
                out.store(y.as_mut_ptr().add(o + lane0));
                idx.store_index(a.as_mut_ptr().add(o + lane0));
            } else {
                out.store_partial(y.as_mut_ptr().add(o + lane0), n);
                let mut tmp = [0u32; 16];
                idx.store_index(tmp.as_mut_ptr());
                a[o + lane0..o + lane0 + n].copy_from_slice(&tmp[..n]);
            }
        }
    }
}

simd_dispatch! {
    /// [`fwd_image_body`] on `isa`.
    unsafe fn fwd_image<const NB: usize, const P: usize>(g: &Geom, rows: &[usize], x: &[f32], packed: &[f32], y: &mut [f32], a: &mut [u32]) => fwd_image_body
}

/// Backward-filter from the pooled gradient: `dw` (`[kh, kw, cin, cout]`, overwritten) and
/// `db` (`[cout]`, overwritten) if given, where the convolution output's gradient is `dy` at
/// each pooled output's argmax pixel if the pooled value `y` is positive, and 0 elsewhere.
/// `y`, `dy` and `argmax` are `[n, ho / 2, wo / 2, cout]`, as the forward pass wrote them
/// (an argmax above 3 names no cell and contributes nothing).
/// With `accumulate`, the gradients are added to `dw` and `db` instead (for batches
/// processed in parts).
#[allow(clippy::too_many_arguments)]
pub fn conv_relu_maxpool_backward_filter(
    ctx: &Ctx,
    cp: &ConvReluPool,
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    argmax: &[u32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    accumulate: bool,
) -> Result<()> {
    let isa = ctx.isa.check()?;
    cp.check(x.len(), dw.len(), y.len(), argmax.len())?;
    Conv2d::check_len("pooled gradient length vs n*(ho/2)*(wo/2)*cout", dy.len(), cp.output_shape())?;
    // No argmax check: a value above 3 names no cell and contributes nothing (as in the
    // reference), at three operations a vector in the kernel (`routed_gradient`); a pass
    // over argmax cost 13% of the one-channel layer's time (session 61).
    let c = &cp.conv;
    if let Some(b) = &db {
        Conv2d::check_len("bias gradient length vs cout", b.len(), [c.cout, 1, 1, 1])?;
    }
    let img_out = cp.pool.ho * cp.pool.wo * c.cout;
    let nb = wgrad_block_vectors(isa, c.cout);
    let coutp = c.cout.next_multiple_of(nb * lanes(isa));
    let k = c.kh * c.kw * c.cin;
    let part = (k + 1) * coutp;
    let groups = c.n.div_ceil(WGRAD_GROUP);
    let pl = forward_placement(c, cp.pool.ho * 2, cp.pool.wo * 2);
    with_scratch(Slot::Product, groups * part, |partials| {
        if img_out > 0 {
            with_placed(x, c.input_shape(), pl, |src: Src| {
                let g = geom(c, &cp.pool, &src, coutp);
                let roff = filter_row_offsets(c, &src);
                let img_in = src.h * src.w * c.cin;
                partials.par_chunks_mut(part).enumerate().for_each(|(gi, acc)| {
                    acc.fill(0.0);
                    for n in gi * WGRAD_GROUP..((gi + 1) * WGRAD_GROUP).min(c.n) {
                        let xi = &src.data[n * img_in..][..img_in];
                        let o = n * img_out..(n + 1) * img_out;
                        let (yi, dyi, ai) = (&y[o.clone()], &dy[o.clone()], &argmax[o]);
                        // SAFETY: `isa` was checked; the canvas covers every tap of the
                        // pooled pixels (as in the forward pass); acc holds (k + 1) * coutp
                        // floats; yi, dyi, ai are one image's pooled tensors.
                        let img = WgradImage { g: &g, roff: &roff, x: xi, y: yi, dy: dyi, a: ai };
                        unsafe { wgrad_image_all(isa, nb, &img, acc) }
                    }
                });
            });
        } else {
            partials.fill(0.0);
        }
        // Group sums in group order (after what dw and db hold when accumulating).
        let mut dbv = db;
        if !accumulate {
            dw.fill(0.0);
            if let Some(b) = dbv.as_deref_mut() {
                b.fill(0.0);
            }
        }
        for p in partials.chunks_exact(part) {
            for (d, s) in dw.chunks_exact_mut(c.cout).zip(p.chunks_exact(coutp)) {
                d.iter_mut().zip(s).for_each(|(d, s)| *d += s);
            }
            if let Some(b) = dbv.as_deref_mut() {
                b.iter_mut().zip(&p[k * coutp..]).for_each(|(d, s)| *d += s);
            }
        }
    });
    Ok(())
}

/// Rows of `dw` per register block of the backward-filter tile, for `nb` vectors of
/// channels: the `R x NB` accumulators, the `NB` masked gradients and cell numbers, the
/// table and the picked inputs must fit the ISA's registers.
fn wgrad_rows(nb: usize) -> usize {
    if nb <= 2 {
        9
    } else {
        3
    }
}

/// Whether `isa` runs the chunked backward-filter (`fused_wgrad_chunked.rs`): the ISAs
/// with 16 vector registers.
fn wgrad_chunked(isa: Isa) -> bool {
    vector_registers(isa) < 32
}

/// Vectors of channels per backward-filter block: as the forward pass with 32 registers;
/// with 16, the chunked kernel's choice.
fn wgrad_block_vectors(isa: Isa, cout: usize) -> usize {
    if wgrad_chunked(isa) {
        fused_wgrad_chunked::block_vectors(cout.div_ceil(lanes(isa)))
    } else {
        block_vectors(isa, cout)
    }
}

/// What the backward-filter tile reads for one image: the geometry, the input offset of
/// every `dw` row, the image's input, pooled output, pooled gradient and argmax.
pub(super) struct WgradImage<'a> {
    pub g: &'a Geom,
    pub roff: &'a [usize],
    pub x: &'a [f32],
    pub y: &'a [f32],
    pub dy: &'a [f32],
    pub a: &'a [u32],
}

/// The pooled gradient of `n <= LANES` channels at pooled-tensor index `o` routed to the
/// window cell each lane's argmax names: returns the cells (0..=3 as floats, 4 for an
/// argmax that names none) and the gradient where the pooled output is positive and the
/// argmax names a cell, 0 elsewhere (also the bias's share: as in the reference, a gradient
/// that reaches no pixel reaches no sum). Only that cell's input meets the gradient: one
/// FMA per row of `dw`.
///
/// # Safety
/// `n` floats of `img.y`, `img.dy` and `n` values of `img.a` at `o` are readable; the ISA
/// of `V` is enabled.
#[inline(always)]
pub(super) unsafe fn routed_gradient<V: F32x>(img: &WgradImage, o: usize, n: usize) -> (V, V) {
    let WgradImage { y, dy, a, .. } = *img;
    // SAFETY: the function contract.
    unsafe {
        let zero = V::zero();
        let (yv, dyv, cell) = if n == V::LANES {
            (V::load(y.as_ptr().add(o)), V::load(dy.as_ptr().add(o)), V::load_cells(a.as_ptr().add(o)))
        } else {
            let mut tmp = [0u32; 16];
            tmp[..n].copy_from_slice(&a[o..o + n]);
            (V::load_partial(y.as_ptr().add(o), n), V::load_partial(dy.as_ptr().add(o), n), V::load_cells(tmp.as_ptr()))
        };
        (cell, cell.select_gt(V::splat(3.0), zero, yv.select_gt(zero, dyv, zero)))
    }
}

/// One image of backward-filter, accumulated into `acc` (`[k][coutp]` filter rows, then
/// `[coutp]` bias): rows `rows` of `dw` in register blocks of `R` (their count a multiple
/// of `R`), the bias too when `bias` is set.
///
/// # Safety
/// As [`fwd_image_body`] (with `roff[r]` the input offset of filter row `r`, below `k`);
/// `acc` holds `(k + 1) * coutp` floats; `y`, `dy`, `a` hold
/// `hp * wp * cout`; `rows.end <= roff.len()`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn wgrad_image_body<V: F32x, const NB: usize, const R: usize>(
    img: &WgradImage,
    rows: core::ops::Range<usize>,
    bias: bool,
    acc: &mut [f32],
) {
    let WgradImage { g, roff, x, y, dy, a } = *img;
    let l = V::LANES;
    let k = roff.len();
    let len = g.hp * g.wp * g.cout;
    assert!(acc.len() >= (k + 1) * g.coutp && rows.end <= k);
    assert!(y.len() >= len && dy.len() >= len && a.len() >= len && rows.len().is_multiple_of(R));
    let cell_in = [0, g.xps, g.yps, g.yps + g.xps];
    // SAFETY: as in the forward tile: input reads at a window base + cell + roff[r] stay
    // inside x by the contract; y, dy and a are read at channels below cout of pooled pixel
    // (py, px); acc rows below k + 1 at lanes below coutp.
    unsafe {
        let zero = V::zero();
        let pairs = g.xps == 1;
        for c0 in (0..g.coutp).step_by(NB * l) {
            let width = g.cout.saturating_sub(c0).min(NB * l);
            for r0 in rows.clone().step_by(R) {
                let mut dw = [[zero; NB]; R];
                let mut db = [zero; NB];
                for py in 0..g.hp {
                    for px in 0..g.wp {
                        let base = x.as_ptr().add(2 * py * g.yps + 2 * px * g.xps);
                        let o = (py * g.wp + px) * g.cout + c0;
                        // Per lane: the argmax's cell and the gradient routed to it.
                        let mut cell = [zero; NB];
                        let mut grad = [zero; NB];
                        for v in 0..NB {
                            let lane0 = v * l;
                            if lane0 >= width {
                                break;
                            }
                            let n = (width - lane0).min(l);
                            let (q, gc) = routed_gradient(img, o + lane0, n);
                            db[v] = db[v].add(gc);
                            cell[v] = q;
                            grad[v] = gc;
                        }
                        for (r, dwr) in dw.iter_mut().enumerate() {
                            let xr = base.add(roff[r0 + r]);
                            // One channel at stride 1: the window's inputs are two pairs.
                            let table = if pairs { V::load2x2(xr, xr.add(g.yps)) } else { V::load4(xr, cell_in) };
                            for v in 0..NB {
                                dwr[v] = table.pick4(cell[v]).fma(grad[v], dwr[v]);
                            }
                        }
                    }
                }
                for (r, dwr) in dw.iter().enumerate() {
                    let p = acc.as_mut_ptr().add((r0 + r) * g.coutp + c0);
                    for (v, d) in dwr.iter().enumerate() {
                        V::load(p.add(v * l)).add(*d).store(p.add(v * l));
                    }
                }
                if bias && r0 == rows.start {
                    let p = acc.as_mut_ptr().add(k * g.coutp + c0);
                    for (v, d) in db.iter().enumerate() {
                        V::load(p.add(v * l)).add(*d).store(p.add(v * l));
                    }
                }
            }
        }
    }
}

simd_dispatch! {
    /// [`wgrad_image_body`] on `isa`.
    unsafe fn wgrad_image<const NB: usize, const R: usize>(img: &WgradImage, rows: core::ops::Range<usize>, bias: bool, acc: &mut [f32]) => wgrad_image_body
}

/// Backward-filter of one image into `acc`: the register-blocked rows, then the rest one
/// row at a time.
///
/// # Safety
/// As [`wgrad_image_body`] for all rows of `img.roff`; `isa` was checked.
unsafe fn wgrad_image_all(isa: Isa, nb: usize, img: &WgradImage, acc: &mut [f32]) {
    if wgrad_chunked(isa) {
        // SAFETY: forwarded contract (the same for the chunked kernel).
        return unsafe { fused_wgrad_chunked::image(isa, nb, img, acc) };
    }
    let k = img.roff.len();
    let r = wgrad_rows(nb);
    let main = k / r * r;
    // SAFETY: forwarded contract; 0..main is a multiple of r, main..k of 1.
    unsafe {
        match nb {
            1 => wgrad_image::<1, 9>(isa, img, 0..main, true, acc),
            2 => wgrad_image::<2, 9>(isa, img, 0..main, true, acc),
            _ => wgrad_image::<4, 3>(isa, img, 0..main, true, acc),
        }
        if main < k {
            let bias = main == 0;
            match nb {
                1 => wgrad_image::<1, 1>(isa, img, main..k, bias, acc),
                2 => wgrad_image::<2, 1>(isa, img, main..k, bias, acc),
                _ => wgrad_image::<4, 1>(isa, img, main..k, bias, acc),
            }
        }
    }
}

//! Direct convolution: no lowered matrix, register tiles read the (padded) NHWC input where
//! it lies. Forward tiles are `MR` output pixels of a row by `NR` output channels (vectors
//! along `cout`, contiguous in HWIO), or for one to four output channels dot products along
//! `cin` ([`narrow`]); backward-data is the forward kernel on the transposed
//! problem ([`super::pad::transposed`]), split into stride phases when the stride is above 1
//! ([`strided`]); backward-filter tiles are `MR` (tap, input channel)
//! rows of `dw` by `NR` output channels, accumulated over every output pixel.
//!
//! Threads split output rows (forward) or `dw` tiles (backward-filter); a tile's arithmetic
//! never depends on the split, so results are bit-identical for any thread count.
//!
//! (Over 400 lines: the three passes' drivers share the filter packing, the placement on
//! the padded canvas and the tile families; apart, each would reach into the others.)

mod narrow;
mod strided;
mod ukr;

use super::pad::{flip_filter, forward_placement, place_row, transposed, with_placed, Placement, Src};
use super::Conv2d;
use crate::arch::{simd::lanes, Isa};
use crate::elementwise::add_assign;
use crate::error::Result;
use crate::scratch::{with_scratch, Slot};
use rayon::prelude::*;
use ukr::{FwdTile, Tiles, WgradTile};

/// Bytes that a backward-filter block of output pixels reads over and over: the block's
/// output gradient in one panel, and the input lines under one tap (a third of a 32 KiB L1:
/// resnet_down's backward-filter took 0.75 ms at 12 KiB, 0.77 at 16, 0.80 at 24, 0.90 at 32).
const WGRAD_BLOCK_BYTES: usize = 12 * 1024;

/// Backward-filter tasks wanted at least (tiles, or tiles x image groups).
const MIN_WGRAD_TASKS: usize = 8;

/// Packed filter bytes up to which every panel is kept hot (half of a 1 MiB L2).
const FILTER_L2_BYTES: usize = 512 * 1024;

/// The tile family for `cout` output channels: one vector wide when that covers them.
fn family(isa: Isa, cout: usize) -> &'static Tiles {
    let fams = ukr::tiles_for(isa);
    fams.iter().rev().find(|f| f.nv * lanes(isa) >= cout).unwrap_or(&fams[0])
}

/// The name of the direct algorithm's forward tile kernel for `c` on `isa` (for reports),
/// e.g. `f32-dconv-14x32-avx512`.
pub fn kernel_name(isa: Isa, c: &Conv2d) -> &'static str {
    if narrow::applies(isa, c) {
        return narrow::name(isa);
    }
    family(isa, c.cout).name
}

/// Whether backward-data of `c` on `isa` runs the dot-product kernel for few outputs
/// ([`narrow`]): stride 1 (strided passes take their own path), into at most
/// [`narrow::NARROW_MAX_COUT`] input channels, from at least a vector of output channels.
pub(super) fn narrow_backward_data(isa: Isa, c: &Conv2d) -> bool {
    c.sh == 1 && c.sw == 1 && narrow::applies(isa, &transposed(c, c.h, c.w).0)
}

/// Height of balanced tiles covering `len` with tiles of at most `max`.
fn balanced(len: usize, max: usize) -> usize {
    len.div_ceil(len.div_ceil(max).max(1)).max(1)
}

/// Offsets of the taps of a filter in an input of `src.w` columns: tap `(ky, kx)` of output
/// pixel 0 is `taps[ky * kw + kx]` floats after its top-left input.
fn tap_offsets(g: &Conv2d, w: usize) -> Vec<usize> {
    (0..g.kh).flat_map(|ky| (0..g.kw).map(move |kx| (ky * g.dh * w + kx * g.dw) * g.cin)).collect()
}

/// Panics (an internal bug, never bad user input) unless every tap of every output pixel
/// of `g` lies inside a canvas of `hp x wp` pixels and `src` holds `g.n` images of `g.cin`
/// channels: the kernels below rely on it. For the tiles the canvas is `src` itself
/// (`src.h x src.w`); for [`narrow`], which reads its source in place, it is the zero-padded
/// canvas that the source stands for.
fn assert_covers(g: &Conv2d, src: &Src, (hp, wp): (usize, usize)) {
    assert!(
        src.c == g.cin
            && (g.ho - 1) * g.sh + (g.kh - 1) * g.dh < hp
            && (g.wo - 1) * g.sw + (g.kw - 1) * g.dw < wp
            && src.data.len() >= g.n * src.h * src.w * g.cin,
        "direct convolution: canvas does not cover the taps"
    );
}

/// `dst = src` followed by zeros (one row of a zero-padded panel).
fn copy_padded(dst: &mut [f32], src: &[f32]) {
    dst[..src.len()].copy_from_slice(src);
    dst[src.len()..].fill(0.0);
}

/// Packs the HWIO filter (a `[k, cout]` matrix) into panels of `nr` columns, `k` rows each,
/// zero-padded, followed by the bias in panels of `nr`.
fn pack_filter(w: &[f32], bias: Option<&[f32]>, k: usize, cout: usize, nr: usize, out: &mut [f32]) {
    let panels = cout.div_ceil(nr);
    let (wp, bp) = out.split_at_mut(panels * k * nr);
    for (p, panel) in wp.chunks_exact_mut(k * nr).enumerate() {
        let (c0, cols) = (p * nr, nr.min(cout - p * nr));
        for (r, dst) in panel.chunks_exact_mut(nr).enumerate() {
            copy_padded(dst, &w[r * cout + c0..][..cols]);
        }
    }
    bp.fill(0.0);
    if let Some(b) = bias {
        bp[..cout].copy_from_slice(b);
    }
}

/// What [`run_forward`]'s tiles do with their sums before they store them: add a bias,
/// clamp at 0, add to what the output holds (the fields of [`FwdTile`] they become).
#[derive(Clone, Copy, Default)]
struct Epilogue<'a> {
    bias: Option<&'a [f32]>,
    relu: bool,
    add: bool,
}

/// [`run_forward`] of `x` placed per `pl`, on a padded copy of the whole batch where strips
/// would copy more: a strip copies `kh` canvas rows per output row, `sh` image rows apart.
/// Up to twice what the padded copy moves (one copy of each image row) the strips win, as
/// they stay in L1 (resnet_down, 3x3 stride 2: forward 6% faster); at three times (3x3
/// stride 1, the transposed problems of backward-data) they lost 2-5%.
fn forward_placed(isa: Isa, g: &Conv2d, src: Src, pl: Placement, w: &[f32], epi: Epilogue<'_>, y: &mut [f32]) {
    if g.kh <= 2 * g.sh {
        return run_forward(isa, g, src, pl, w, epi, y);
    }
    with_placed(src.data, [g.n, src.h, src.w, src.c], pl, |canvas| {
        let on_canvas = Placement { top: 0, left: 0, hp: canvas.h, wp: canvas.w };
        run_forward(isa, g, canvas, on_canvas, w, epi, y)
    });
}

/// `y = relu?(conv(x, w) + bias)` for geometry `g`, with `x` (`[n, h, w, cin]`, `src`)
/// placed on the zero canvas per `pl` (its padding); with `epi.add`, that is added to what
/// `y` holds. Output rows whose taps all lie on the image read `x` in place; the others
/// (a padded border) stage their `kh` canvas rows in a strip of this thread's scratch,
/// where they stay in L1 while the row's tiles read them.
/// (Geometries that [`narrow::applies`] to go to [`narrow::forward`] instead, which reads
/// its source in place.)
fn run_forward(isa: Isa, g: &Conv2d, src: Src, pl: Placement, w: &[f32], epi: Epilogue<'_>, y: &mut [f32]) {
    debug_assert!(!narrow::applies(isa, g), "narrow geometries read their source in place");
    let Epilogue { bias, relu, add } = epi;
    if y.is_empty() {
        return;
    }
    assert!(
        src.c == g.cin && src.data.len() >= g.n * src.h * src.w * g.cin,
        "direct convolution: input shorter than its geometry"
    );
    let fam = family(isa, g.cout);
    let nr = fam.nv * lanes(isa);
    let (k, panels) = (g.kh * g.kw * g.cin, g.cout.div_ceil(nr));
    let mt = balanced(g.wo, fam.max_mr);
    // Canvas columns a row's taps reach, from column 0; a strip is `kh` such rows.
    let span = (g.wo - 1) * g.sw + (g.kw - 1) * g.dw + 1;
    let strip_len = g.kh * span * g.cin;
    let in_place_taps = tap_offsets(g, src.w);
    let strip_taps: Vec<usize> =
        (0..g.kh).flat_map(|ky| (0..g.kw).map(move |kx| (ky * span + kx * g.dw) * g.cin)).collect();
    // Every row's columns lie on the image when the canvas adds none on either side.
    let cols_on_image = pl.left <= 0 && span as isize - pl.left <= src.w as isize;
    // How far a row's tiles read from its first tap, through the last tap of the last pixel:
    // within the strip, and within the image from a row whose taps lie on it (`on_image`
    // below checks each row's first and last tap rows and the columns).
    let reach = |taps: &[usize]| taps.iter().max().copied().unwrap_or(0) + ((g.wo - 1) * g.sw + 1) * g.cin;
    assert!(reach(&strip_taps) <= strip_len, "direct convolution: a strip shorter than its taps");
    let image = src.h * src.w * g.cin;
    let filter_fits = panels * k * nr * 4 <= FILTER_L2_BYTES;
    with_scratch(Slot::PackB, panels * (k + 1) * nr, |packed| {
        pack_filter(w, bias, k, g.cout, nr, packed);
        let (wp, bp) = packed.split_at(panels * k * nr);
        // The tiles of output row `yr`, reading pixel 0's tap 0 at `x[0]` and tap `t` at
        // `x[taps[t]]`, pixels `sw * cin` apart.
        let row_tiles = |x: &[f32], taps: &[usize], yr: &mut [f32]| {
            // All panels of a tile before the next tile (whole output pixels written at once)
            // while the filter fits in L2; else a panel over the whole row (the panel stays
            // in L1/L2 while the row's input is re-read). Two nested loops: one loop split
            // by divisions cost a one-channel tile (~100 FMAs) 2-4% more.
            let tiles = g.wo.div_ceil(mt);
            let (outer, inner) = if filter_fits { (tiles, panels) } else { (panels, tiles) };
            for a in 0..outer {
                for b in 0..inner {
                    let (p, tile) = if filter_fits { (b, a) } else { (a, b) };
                    let ox0 = tile * mt;
                    let m = mt.min(g.wo - ox0);
                    let t = FwdTile {
                        x: x[ox0 * g.sw * g.cin..].as_ptr(),
                        xps: g.sw * g.cin,
                        taps: taps.as_ptr(),
                        ntaps: taps.len(),
                        cin: g.cin,
                        w: wp[p * k * nr..].as_ptr(),
                        y: yr[ox0 * g.cout + p * nr..].as_mut_ptr(),
                        yps: g.cout,
                        n: nr.min(g.cout - p * nr),
                        bias: if bias.is_some() { bp[p * nr..].as_ptr() } else { core::ptr::null() },
                        relu,
                        add,
                    };
                    // SAFETY: every tap of pixels ox0..ox0+m (`taps` plus `p * sw * cin`, plus
                    // cin channels) lies inside `x`: a strip (`reach` asserted) or a row on the
                    // image (`on_image`); the panel holds k*nr
                    // floats and the bias panel nr; the m output pixels of `yr` hold `n`
                    // channels from p*nr; `isa` was checked by the public entry point.
                    unsafe { (fam.fwd[m - 1])(isa, &t) };
                }
            }
        };
        // Image row under canvas row `r`, if any.
        let image_row = |r: usize| {
            let iy = r as isize - pl.top;
            (iy >= 0 && iy < src.h as isize).then_some(iy as usize)
        };
        // Whether output row `oy`'s taps all lie on the image (rows are checked at the
        // first and last tap: the ones between lie between them).
        let on_image = |oy: usize| {
            cols_on_image && image_row(oy * g.sh).is_some() && image_row(oy * g.sh + (g.kh - 1) * g.dh).is_some()
        };
        // Tap (ky, kx) of pixel 0 of such a row is image pixel (iy0 + ky*dh, -left + kx*dw),
        // on the image for every pixel of the row, so `tap_offsets` from there stay in it.
        let in_place = |n: usize, oy: usize| {
            let iy0 = image_row(oy * g.sh).unwrap_or(0);
            &src.data[n * image + (iy0 * src.w) * g.cin + (-pl.left) as usize * g.cin..]
        };
        if (0..g.ho).all(on_image) {
            // No strips (a valid convolution): the rows' loop without their test.
            y.par_chunks_mut(g.wo * g.cout).enumerate().for_each(|(row, yr)| {
                row_tiles(in_place(row / g.ho, row % g.ho), &in_place_taps, yr);
            });
            return;
        }
        y.par_chunks_mut(g.wo * g.cout).enumerate().for_each(|(row, yr)| {
            let (n, oy) = (row / g.ho, row % g.ho);
            if on_image(oy) {
                row_tiles(in_place(n, oy), &in_place_taps, yr);
                return;
            }
            with_scratch(Slot::Aux, strip_len, |strip| {
                // Strip row ky, column j: canvas pixel (oy*sh + ky*dh, j), zero off the image.
                for (ky, dst) in strip.chunks_exact_mut(span * g.cin).enumerate() {
                    let Some(iy) = image_row(oy * g.sh + ky * g.dh) else {
                        dst.fill(0.0);
                        continue;
                    };
                    let from = &src.data[n * image + iy * src.w * g.cin..][..src.w * g.cin];
                    place_row(from, g.cin, pl.left, dst);
                }
                row_tiles(strip, &strip_taps, yr);
            });
        });
    });
}

/// `dy` (`[n, ho, wo, cout]`) in panels of `nr` channels, `[panel][image][pixel][nr]`,
/// zero-padded.
fn pack_dy(g: &Conv2d, dy: &[f32], nr: usize, out: &mut [f32]) {
    let plane = g.ho * g.wo;
    out.par_chunks_mut(plane * nr).enumerate().for_each(|(i, dst)| {
        let (p, n) = (i / g.n, i % g.n);
        let (c0, cols) = (p * nr, nr.min(g.cout - p * nr));
        for (px, d) in dst.chunks_exact_mut(nr).enumerate() {
            copy_padded(d, &dy[(n * plane + px) * g.cout + c0..][..cols]);
        }
    });
}

/// `dw = Σ_pixels patch(x)ᵀ dy` for geometry `g` on a canvas covering every tap.
fn run_wgrad(isa: Isa, g: &Conv2d, src: Src, dy: &[f32], dw: &mut [f32]) {
    let fam = family(isa, g.cout);
    let nr = fam.nv * lanes(isa);
    let (k, panels, plane) = (g.kh * g.kw * g.cin, g.cout.div_ceil(nr), g.ho * g.wo);
    if g.n == 0 {
        dw.fill(0.0);
        return;
    }
    assert_covers(g, &src, (src.h, src.w));
    let mr = balanced(k, fam.max_mr);
    let row_tiles = k.div_ceil(mr);
    // Row r = (tap, ci) of dw reads its input at tap offset + ci; padded so every tile has mr.
    let mut roff: Vec<usize> = tap_offsets(g, src.w).iter().flat_map(|&o| (0..g.cin).map(move |ci| o + ci)).collect();
    roff.resize(row_tiles * mr, 0);
    let img = src.h * src.w * g.cin;
    // dy is read where it lies when whole panels cover cout, else copied into zero-padded
    // panels, [panel][pixel][nr].
    let in_place = g.cout.is_multiple_of(nr);
    // Blocks of output rows whose dy panel fits in L1 next to the input lines of one tap:
    // the tiles of a panel run one after another over the block, each re-reading that dy,
    // and the tiles of a tap the same input lines (a block of whole images spilled to L2 on
    // the stride-2 and 1x1 layers: resnet_down 0.90 -> 0.75 ms). With at most two tiles a
    // panel, dy is read twice and L2 keeps up; a block's accumulator reloads would then
    // cost more than they save (resnet_conv1: 46 -> 49 us). Every tile accumulates block
    // after block, pixel after pixel, so the block size never changes a sum.
    let px_bytes = nr * 4 + (g.cin * 4).next_multiple_of(64);
    let block_rows = if row_tiles <= 2 { g.ho } else { (WGRAD_BLOCK_BYTES / (g.wo * px_bytes)).clamp(1, g.ho) };
    with_scratch(Slot::Lowered, if in_place { 0 } else { panels * g.n * plane * nr }, |dyp| {
        if !in_place {
            pack_dy(g, dy, nr, dyp);
        }
        // Panel p of image n starts at base[p * panel_stride + n * image_stride].
        let (base, panel_stride, image_stride, dys): (&[f32], _, _, _) =
            if in_place { (dy, nr, plane * g.cout, g.cout) } else { (dyp, g.n * plane * nr, plane * nr, nr) };
        // Few tiles (small filters): images are split into groups with their own
        // accumulators, summed in group order afterwards, so every core gets work. The
        // grouping depends only on the shape.
        let tiles = panels * row_tiles;
        let per_group = if tiles >= MIN_WGRAD_TASKS { g.n } else { g.n.div_ceil(MIN_WGRAD_TASKS.div_ceil(tiles)) };
        let groups = g.n.div_ceil(per_group);
        let tile_len = mr * nr;
        // Accumulates output rows oy0..oy0+rows of image n into tile ti.
        let run = |n: usize, oy0: usize, rows: usize, ti: usize, acc: &mut [f32]| {
            let (p, r) = (ti / row_tiles, ti % row_tiles);
            let h = mr.min(k - r * mr);
            let t = WgradTile {
                x: src.data[n * img + oy0 * g.sh * src.w * g.cin..].as_ptr(),
                roff: roff[r * mr..].as_ptr(),
                xrs: g.sh * src.w * g.cin,
                xps: g.sw * g.cin,
                rows,
                cols: g.wo,
                dy: base[p * panel_stride + n * image_stride + oy0 * g.wo * dys..].as_ptr(),
                dys,
                acc: acc[..tile_len].as_mut_ptr(),
            };
            // SAFETY: `assert_covers` puts every tap of every output pixel of image n inside
            // `src`, and the roff entries are taps + ci < cin; the dy panel holds rows*wo
            // pixels of nr floats from oy0, dys apart; acc holds mr*nr >= h*nr.
            unsafe { (fam.wgrad[h - 1])(isa, &t) };
        };
        with_scratch(Slot::PackA, groups * tiles * tile_len, |acc| {
            acc.fill(0.0);
            if groups == 1 {
                // Image by image, the tiles in runs of neighbours (one task each), every run
                // block by block: a block's dy and input lines stay in L1 across the run's
                // tiles, and a join per image (not per block) keeps small blocks cheap at two
                // threads. The runs only split work; each tile's sum is the same.
                let run_len = tiles.div_ceil((2 * rayon::current_num_threads()).min(tiles));
                for n in 0..g.n {
                    acc.par_chunks_mut(run_len * tile_len).enumerate().for_each(|(ri, accs)| {
                        for oy0 in (0..g.ho).step_by(block_rows) {
                            for (j, a) in accs.chunks_exact_mut(tile_len).enumerate() {
                                run(n, oy0, block_rows.min(g.ho - oy0), ri * run_len + j, a);
                            }
                        }
                    });
                }
            } else {
                acc.par_chunks_mut(tiles * tile_len).enumerate().for_each(|(gi, gacc)| {
                    for n in gi * per_group..g.n.min((gi + 1) * per_group) {
                        for oy0 in (0..g.ho).step_by(block_rows) {
                            for (ti, a) in gacc.chunks_exact_mut(tile_len).enumerate() {
                                run(n, oy0, block_rows.min(g.ho - oy0), ti, a);
                            }
                        }
                    }
                });
                let (first, rest) = acc.split_at_mut(tiles * tile_len);
                for gacc in rest.chunks_exact(tiles * tile_len) {
                    add_assign(isa, first, gacc);
                }
            }
            let acc = &acc[..tiles * tile_len];
            for (ti, tile) in acc.chunks_exact(mr * nr).enumerate() {
                let (p, r) = (ti / row_tiles, ti % row_tiles);
                let (c0, cols) = (p * nr, nr.min(g.cout - p * nr));
                for (i, src_row) in tile.chunks_exact(nr).take(mr.min(k - r * mr)).enumerate() {
                    dw[(r * mr + i) * g.cout + c0..][..cols].copy_from_slice(&src_row[..cols]);
                }
            }
        });
    });
}

/// `y = relu?(conv(x, w) + bias)`.
pub(crate) fn forward(
    isa: Isa,
    c: &Conv2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) -> Result<()> {
    let (pl, epi) = (forward_placement(c, c.ho, c.wo), Epilogue { bias, relu, add: false });
    if narrow::applies(isa, c) {
        let [_, h, w_, cin] = c.input_shape();
        narrow::forward(isa, c, Src { data: x, h, w: w_, c: cin }, pl, w, epi, y);
        return Ok(());
    }
    let [_, h, w_, cin] = c.input_shape();
    forward_placed(isa, c, Src { data: x, h, w: w_, c: cin }, pl, w, epi, y);
    Ok(())
}

/// `dx` as the forward convolution of `dy` with the flipped filter (by stride phases when
/// the stride is above 1); with `add`, added to what `dx` holds as the tiles store.
pub(crate) fn backward_data(isa: Isa, c: &Conv2d, dy: &[f32], w: &[f32], dx: &mut [f32], add: bool) -> Result<()> {
    if c.sh > 1 || c.sw > 1 {
        strided::backward_data(isa, c, dy, w, dx, add);
        return Ok(());
    }
    let (g, pl) = transposed(c, c.h, c.w);
    let epi = Epilogue { add, ..Epilogue::default() };
    with_scratch(Slot::Flipped, w.len(), |wf| {
        flip_filter(isa, c, w, wf);
        if narrow::applies(isa, &g) {
            let [_, h, w_, cout] = c.output_shape();
            narrow::forward(isa, &g, Src { data: dy, h, w: w_, c: cout }, pl, wf, epi, dx);
        } else {
            let [_, h, w_, cout] = c.output_shape();
            forward_placed(isa, &g, Src { data: dy, h, w: w_, c: cout }, pl, wf, epi, dx);
        }
    });
    Ok(())
}

/// `dw` accumulated tile by tile over every output pixel.
pub(crate) fn backward_filter(isa: Isa, c: &Conv2d, x: &[f32], dy: &[f32], dw: &mut [f32]) -> Result<()> {
    with_placed(x, c.input_shape(), forward_placement(c, c.ho, c.wo), |src| run_wgrad(isa, c, src, dy, dw));
    Ok(())
}

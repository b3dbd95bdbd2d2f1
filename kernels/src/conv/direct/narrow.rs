//! The direct forward for few output channels (`cout <= NARROW_MAX_COUT`), as dot products
//! along the input channels: each output value is `Σ_tap Σ_ci x[pixel + tap, ci] ·
//! w[tap, ci, co]`, with `ci` contiguous in the NHWC input and in the filter repacked as
//! `[co][tap][ci]`, so every lane of every FMA does useful work. The general tiles vectorise
//! along the output channels and would use one lane in eight (AVX2) for one channel.
//!
//! Its main user is backward-data of a layer with one to four input channels (the first
//! layer of an image network), which runs as this forward on the transposed problem: the
//! gradient of the input image, which the explain methods take (saliency, SmoothGrad,
//! Integrated Gradients) and training never does. Before it, that pass ran through im2col
//! at 9% of the peak (the seed's first layer; BENCHMARKS.md, session 38).
//!
//! `f32-dconv-narrow-4xC`: every output channel of four consecutive output pixels of one
//! row at a time (two with three or four channels), six to eight accumulators (independent
//! FMA chains) in all: each input vector loaded once for every channel, each filter vector
//! once for every pixel. A pixel's sum is its accumulators added, then their lanes (four
//! pixels' or channels' at a time, [`F32x::sum4`]), after the last tap.
//!
//! The source is read where it lies, not from a zero-padded copy: a row uses only the tap
//! rows inside the source, and the pixels whose taps reach into the left or right padding
//! (outside `Row::interior`) run one at a time over the tap columns inside. The padded
//! copy was 17% of the seed's transposed first layer (memmove, under `perf`). Skipping a
//! tap in the padding changes no sum (its zero product would add +0 to a sum that starts
//! at +0); the edge pixels' sums use more accumulators than the interior's, so their last
//! bits can differ from the copy's version (still the same for any thread count).

use super::super::pad::{transpose, Placement, Src};
use super::super::Conv2d;
use super::{assert_covers, Epilogue};
use crate::arch::simd::{lanes, simd_dispatch, F32x};
use crate::arch::Isa;
use crate::scratch::{with_scratch, Slot};
use core::ops::Range;
use rayon::prelude::*;

/// Output channels up to which [`forward`] runs instead of the general tiles.
pub(super) const NARROW_MAX_COUT: usize = 4;

/// Whether [`forward`] computes `g` on `isa`: few output channels and at least one whole
/// vector of input channels (with fewer, the general tiles lose less).
pub(super) fn applies(isa: Isa, g: &Conv2d) -> bool {
    g.cout <= NARROW_MAX_COUT && g.cin >= lanes(isa)
}

/// The kernel's name on `isa` (for reports).
pub(super) fn name(isa: Isa) -> &'static str {
    match isa {
        Isa::Avx512 => "f32-dconv-narrow-4xC-avx512",
        Isa::Avx2 => "f32-dconv-narrow-4xC-avx2",
        Isa::Neon => "f32-dconv-narrow-4xC-neon",
        Isa::Scalar => "f32-dconv-narrow-4xC-scalar",
    }
}

/// One tap of the filter: where it reads, in floats from the source position of its
/// output pixel's top-left tap, its first filter value in the repacked filter, and its
/// column (taps are in `(ky, kx)` order, so the taps one row can use are one range).
#[derive(Clone, Copy)]
struct Tap {
    x: isize,
    w: usize,
    kx: usize,
}

/// One output row of one image. Plain data; the caller vouches for the pointers.
struct Row<'a> {
    g: &'a Conv2d,
    /// The source's first float.
    src: *const f32,
    /// The index in the source where output pixel 0's top-left tap reads, as if the source
    /// were padded (negative, or past the end, in the padding: only the taps in `taps`
    /// in the columns [`Row::cols`] keeps are read there); pixel `p`, tap `t`, channel
    /// `ci` is at `src + x + p * xps + t.x + ci`.
    x: isize,
    xps: usize,
    /// The taps whose rows lie inside the source, for every pixel of this row.
    taps: &'a [Tap],
    /// Output pixels whose every tap column lies inside the source.
    interior: Range<usize>,
    /// The source column of pixel 0's first tap column (negative in the left padding) and
    /// the source's width: a tap column is read where it falls inside.
    col0: isize,
    src_w: usize,
    /// The filter as `[cout][tap][cin]`.
    w: &'a [f32],
    /// Output pixel 0, channel 0 (`g.wo` pixels of `g.cout` channels, contiguous).
    y: *mut f32,
    epi: Epilogue<'a>,
}

impl Row<'_> {
    /// The tap columns of output pixel `p` that lie inside the source.
    #[inline(always)]
    fn cols(&self, p: usize) -> Range<usize> {
        inside(self.col0 + (p * self.g.sw) as isize, self.g.dw, self.g.kw, self.src_w)
    }
}

/// The taps `k < count` at `pos + k * step` that lie in `0..len`: one range, as the
/// positions grow with `k`.
fn inside(pos: isize, step: usize, count: usize, len: usize) -> Range<usize> {
    let (step, len) = (step as isize, len as isize);
    let lo = if pos >= 0 { 0 } else { (-pos + step - 1) / step };
    let hi = if pos >= len { 0 } else { (len - pos + step - 1) / step };
    let (lo, hi) = (lo.min(count as isize) as usize, hi.min(count as isize) as usize);
    lo..hi.max(lo)
}

/// All `C` output channels of `P` consecutive output pixels from `p0`: `S` accumulators
/// per (channel, pixel) over every tap and vector of input channels, vector `v` into
/// accumulator `v % S` and a leftover whole vector and the partial one (when `cin` is not a
/// whole number of vectors) into the first.
/// Every index into the accumulators is a constant of an unrolled loop, so they stay in
/// registers. Only the row's taps in columns `cols` are read: all of them for pixels of
/// the interior, the ones inside the source for the others (a tap in the padding would
/// add zeros).
///
/// # Safety
/// [`row_body`]'s contract; `p0 + P <= g.wo`, `C == g.cout`; the taps in columns `cols`
/// lie inside the source for each of the `P` pixels.
#[inline(always)]
unsafe fn pixels<V: F32x, const C: usize, const P: usize, const S: usize>(
    r: &Row,
    p0: usize,
    cols: Range<usize>,
) -> [[f32; P]; C] {
    let cin = r.g.cin;
    let (whole, tail) = (cin / V::LANES, cin % V::LANES);
    let k = r.g.kh * r.g.kw * cin;
    // SAFETY: the caller's contract covers every tap of pixels p0..p0+P and the filter.
    unsafe {
        let mut acc = [[[V::zero(); S]; P]; C];
        // One step: vector `v` of tap `t` into accumulator `s` (partial with `n < LANES`).
        let step = |acc: &mut [[[V; S]; P]; C], xt: *const f32, wt: *const f32, v: usize, s: usize, n: usize| {
            let load = |p: *const f32| if n == V::LANES { V::load(p) } else { V::load_partial(p, n) };
            let mut x = [V::zero(); P];
            for (p, xv) in x.iter_mut().enumerate() {
                *xv = load(xt.add(p * r.xps + v * V::LANES));
            }
            for (c, ac) in acc.iter_mut().enumerate() {
                let w = load(wt.add(c * k + v * V::LANES));
                for (a, xv) in ac.iter_mut().zip(x) {
                    a[s] = xv.fma(w, a[s]);
                }
            }
        };
        for t in r.taps.iter().filter(|t| cols.contains(&t.kx)) {
            let wt = r.w.as_ptr().add(t.w);
            // An index into the source, never a pointer outside it: only taps inside the
            // source get here.
            let xt = r.src.offset(r.x + (p0 * r.xps) as isize + t.x);
            let groups = whole / S;
            for g in 0..groups {
                for s in 0..S {
                    step(&mut acc, xt, wt, g * S + s, s, V::LANES);
                }
            }
            for v in groups * S..whole {
                step(&mut acc, xt, wt, v, 0, V::LANES);
            }
            if tail > 0 {
                step(&mut acc, xt, wt, whole, 0, tail);
            }
        }
        // Each (channel, pixel)'s accumulators added, then their lanes, four sums at a time
        // (zero vectors fill out a last group of fewer). Constant indices once unrolled.
        let mut sums = [[V::zero(); P]; C];
        for (sc, ac) in sums.iter_mut().zip(acc) {
            for (sp, a) in sc.iter_mut().zip(ac) {
                *sp = a[0];
                for v in &a[1..] {
                    *sp = sp.add(*v);
                }
            }
        }
        let mut out = [[0.0f32; P]; C];
        for i in (0..C * P).step_by(4) {
            let mut q = [V::zero(); 4];
            for (j, qj) in q.iter_mut().enumerate().take(C * P - i) {
                *qj = sums[(i + j) / P][(i + j) % P];
            }
            let s = V::sum4(q[0], q[1], q[2], q[3]);
            for (j, sj) in s.into_iter().enumerate().take(C * P - i) {
                out[(i + j) / P][(i + j) % P] = sj;
            }
        }
        out
    }
}

/// Stores the `C` channels of `P` pixels from `p0` through the epilogue.
///
/// # Safety
/// `p0 + P <= g.wo`, `C == g.cout`; the row's output is writable (and readable with `add`).
#[inline(always)]
unsafe fn store<const C: usize, const P: usize>(r: &Row, p0: usize, sums: [[f32; P]; C]) {
    let Epilogue { bias, relu, add } = r.epi;
    for (co, cs) in sums.into_iter().enumerate() {
        for (p, s) in cs.into_iter().enumerate() {
            let mut v = s + bias.map_or(0.0, |b| b[co]);
            if relu {
                v = v.max(0.0);
            }
            // SAFETY: pixel p0 + p < wo, channel co < cout of this row's output.
            unsafe {
                let at = r.y.add((p0 + p) * r.g.cout + co);
                *at = if add { *at + v } else { v };
            }
        }
    }
}

/// One output row of `C` channels: the interior `P` pixels at a time with `S` accumulators
/// each, then one at a time with `ES` each the pixels whose taps reach into the left or
/// right padding (with only the tap columns inside the source: fewer taps, so more
/// accumulators keep the FMAs busy).
///
/// # Safety
/// [`row_body`]'s contract with `C == g.cout`.
#[inline(always)]
unsafe fn row_of<V: F32x, const C: usize, const P: usize, const S: usize, const ES: usize>(r: &Row) {
    let (wo, all) = (r.g.wo, 0..r.g.kw);
    let Range { start: lo, end: hi } = r.interior;
    let whole = lo + (hi - lo) / P * P;
    // SAFETY: forwarded contract; every pixel index below is < wo, and each reads only the
    // taps inside the source (all of the row's in the interior, `Row::cols` outside it).
    // (Plain loops: a closure would be compiled without the ISA's target features, with
    // its intrinsics called out of line.)
    unsafe {
        for p0 in (lo..whole).step_by(P) {
            store::<C, P>(r, p0, pixels::<V, C, P, S>(r, p0, all.clone()));
        }
        for p0 in whole..hi {
            store::<C, 1>(r, p0, pixels::<V, C, 1, S>(r, p0, all.clone()));
        }
        for p in (0..lo).chain(hi..wo) {
            store::<C, 1>(r, p, pixels::<V, C, 1, ES>(r, p, r.cols(p)));
        }
    }
}

/// One output row, every channel: six to eight accumulators (independent FMA chains) per
/// step whatever the channel count, fewer pixels per step as channels grow.
///
/// # Safety
/// Every tap of `taps` lies inside the source for every pixel of `interior`, and for any
/// other pixel each tap in the columns [`Row::cols`] keeps; `w` holds
/// `cout * kh * kw * cin` floats as `[cout][tap][cin]`; the row's `g.wo * g.cout`
/// outputs are writable; `1 <= g.cout <= NARROW_MAX_COUT`; the ISA of `V` is enabled.
#[inline(always)]
unsafe fn row_body<V: F32x>(r: &Row) {
    // SAFETY: forwarded contract.
    unsafe {
        match r.g.cout {
            1 => row_of::<V, 1, 4, 2, 4>(r),
            2 => row_of::<V, 2, 4, 1, 2>(r),
            3 => row_of::<V, 3, 2, 1, 2>(r),
            _ => row_of::<V, 4, 2, 1, 2>(r),
        }
    }
}

simd_dispatch! {
    /// [`row_body`] on `isa`.
    unsafe fn row(r: &Row) => row_body
}

/// `y = relu?(conv(x, w) + bias)` (or `y +=` that, with `epi.add`) for a stride-1 or
/// strided geometry `g` that [`applies`], with the source `x` read where it lies as if
/// placed per `pl` in a zero canvas (taps in the padding are skipped, not read as zeros:
/// no padded copy); `w` is HWIO. Rows run on the pool's threads; each output value's sum
/// is the same for any split.
pub(super) fn forward(isa: Isa, g: &Conv2d, x: Src, pl: Placement, w: &[f32], epi: Epilogue<'_>, y: &mut [f32]) {
    if y.is_empty() {
        return;
    }
    assert_covers(g, &x, (pl.hp, pl.wp));
    let k = g.kh * g.kw * g.cin;
    let (iw, cin) = (x.w as isize, g.cin as isize);
    let taps: Vec<Tap> = (0..g.kh)
        .flat_map(|ky| (0..g.kw).map(move |kx| (ky, kx)))
        .map(|(ky, kx)| Tap {
            x: ((ky * g.dh) as isize * iw + (kx * g.dw) as isize) * cin,
            w: (ky * g.kw + kx) * g.cin,
            kx,
        })
        .collect();
    // Pixels whose tap columns all lie inside the source: from the first whose column 0 is
    // inside to the last whose last column is.
    let col0 = -pl.left;
    let first = (0..g.wo).find(|&p| col0 + (p * g.sw) as isize >= 0).unwrap_or(g.wo);
    let last = col0 + ((g.kw - 1) * g.dw) as isize;
    let end = if last >= iw { 0 } else { (((iw - last) as usize).div_ceil(g.sw)).min(g.wo) };
    let interior = first..end.max(first);
    with_scratch(Slot::PackB, g.cout * k, |wt| {
        // HWIO `[tap * cin + ci][co]` to `[co][tap * cin + ci]`.
        transpose(isa, &w[..k * g.cout], k, g.cout, wt);
        let wt = &*wt;
        y.par_chunks_mut(g.wo * g.cout).enumerate().for_each(|(row_index, yr)| {
            let (n, oy) = (row_index / g.ho, row_index % g.ho);
            // The source row of this output row's first tap row (negative in the top padding).
            let row0 = (oy * g.sh) as isize - pl.top;
            let rows = inside(row0, g.dh, g.kh, x.h);
            let at = (((n * x.h) as isize + row0) * iw + col0) * cin;
            let r = Row {
                g,
                src: x.data.as_ptr(),
                x: at,
                xps: g.sw * g.cin,
                taps: &taps[rows.start * g.kw..rows.end * g.kw],
                interior: interior.clone(),
                col0,
                src_w: x.w,
                w: wt,
                y: yr.as_mut_ptr(),
                epi,
            };
            // SAFETY: the taps kept lie in rows `rows` of image n, inside the source; the
            // interior pixels' columns all lie inside it (`interior`), and the other pixels
            // read only the columns `Row::cols` keeps; `wt` holds cout * k floats;
            // `yr` is this row's wo * cout outputs, owned by this task; `isa` was checked
            // by the public entry point.
            unsafe { row(isa, &r) };
        });
    });
}

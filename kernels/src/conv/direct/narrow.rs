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
//! once for every pixel. A pixel's sum is its accumulators added, then their lanes in lane
//! order, after the last tap.

use super::super::pad::{transpose, Src};
use super::super::Conv2d;
use super::{assert_covers, tap_offsets, Epilogue};
use crate::arch::simd::{lanes, simd_dispatch, F32x};
use crate::arch::Isa;
use crate::scratch::{with_scratch, Slot};
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

/// One output row of one image. Plain data; the caller vouches for the pointers.
struct Row<'a> {
    g: &'a Conv2d,
    /// Input of output pixel 0 at tap offset 0; pixel `p`, tap `t`, channel `ci` is at
    /// `x + p * xps + taps[t] + ci`.
    x: *const f32,
    xps: usize,
    taps: &'a [usize],
    /// The filter as `[cout][tap][cin]`.
    w: &'a [f32],
    /// Output pixel 0, channel 0 (`g.wo` pixels of `g.cout` channels, contiguous).
    y: *mut f32,
    epi: Epilogue<'a>,
}

/// The sum of `acc`'s lanes, in lane order.
///
/// # Safety
/// The ISA of `V` is enabled.
#[inline(always)]
unsafe fn lane_sum<V: F32x>(acc: V) -> f32 {
    let mut buf = [0.0f32; 16];
    // SAFETY: `buf` holds 16 >= LANES floats; the caller enabled the ISA.
    unsafe { acc.store(buf.as_mut_ptr()) };
    buf[..V::LANES].iter().sum()
}

/// All `C` output channels of `P` consecutive output pixels from `p0`: `S` accumulators
/// per (channel, pixel) over every tap and vector of input channels, vector `v` into
/// accumulator `v % S` and a leftover whole vector and the partial one (when `cin` is not a
/// whole number of vectors) into the first.
/// Every index into the accumulators is a constant of an unrolled loop, so they stay in
/// registers.
///
/// # Safety
/// [`row_body`]'s contract; `p0 + P <= g.wo`, `C == g.cout`.
#[inline(always)]
unsafe fn pixels<V: F32x, const C: usize, const P: usize, const S: usize>(r: &Row, p0: usize) -> [[f32; P]; C] {
    let cin = r.g.cin;
    let (whole, tail) = (cin / V::LANES, cin % V::LANES);
    let k = r.taps.len() * cin;
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
        for (t, &off) in r.taps.iter().enumerate() {
            let (xt, wt) = (r.x.add(p0 * r.xps + off), r.w.as_ptr().add(t * cin));
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
        let mut out = [[0.0f32; P]; C];
        for (o, ac) in out.iter_mut().zip(acc) {
            for (op, a) in o.iter_mut().zip(ac) {
                let mut sum = a[0];
                for v in &a[1..] {
                    sum = sum.add(*v);
                }
                *op = lane_sum(sum);
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

/// One output row of `C` channels, `P` pixels at a time with `S` accumulators each.
///
/// # Safety
/// [`row_body`]'s contract with `C == g.cout`.
#[inline(always)]
unsafe fn row_of<V: F32x, const C: usize, const P: usize, const S: usize>(r: &Row) {
    let wo = r.g.wo;
    let whole = wo / P * P;
    // SAFETY: forwarded contract; every pixel index below is < wo.
    unsafe {
        for p0 in (0..whole).step_by(P) {
            store::<C, P>(r, p0, pixels::<V, C, P, S>(r, p0));
        }
        for p0 in whole..wo {
            store::<C, 1>(r, p0, pixels::<V, C, 1, S>(r, p0));
        }
    }
}

/// One output row, every channel: six to eight accumulators (independent FMA chains) per
/// step whatever the channel count, fewer pixels per step as channels grow.
///
/// # Safety
/// Every tap of the row's `g.wo` pixels lies in the input behind `x` (`assert_covers`); `w`
/// holds `cout * taps * cin` floats as `[cout][tap][cin]`; the row's `g.wo * g.cout`
/// outputs are writable; `1 <= g.cout <= NARROW_MAX_COUT`; the ISA of `V` is enabled.
#[inline(always)]
unsafe fn row_body<V: F32x>(r: &Row) {
    // SAFETY: forwarded contract.
    unsafe {
        match r.g.cout {
            1 => row_of::<V, 1, 4, 2>(r),
            2 => row_of::<V, 2, 4, 1>(r),
            3 => row_of::<V, 3, 2, 1>(r),
            _ => row_of::<V, 4, 2, 1>(r),
        }
    }
}

simd_dispatch! {
    /// [`row_body`] on `isa`.
    unsafe fn row(r: &Row) => row_body
}

/// `y = relu?(conv(src, w) + bias)` (or `y +=` that, with `epi.add`) for a stride-1 or
/// strided geometry `g` that [`applies`], on a canvas covering every tap; `w` is HWIO.
/// Rows run on the pool's threads; each output value's sum is the same for any split.
pub(super) fn forward(isa: Isa, g: &Conv2d, src: Src, w: &[f32], epi: Epilogue<'_>, y: &mut [f32]) {
    if y.is_empty() {
        return;
    }
    assert_covers(g, &src);
    let taps = tap_offsets(g, &src);
    let k = taps.len() * g.cin;
    with_scratch(Slot::PackB, g.cout * k, |wt| {
        // HWIO `[tap * cin + ci][co]` to `[co][tap * cin + ci]`.
        transpose(&w[..k * g.cout], k, g.cout, wt);
        let wt = &*wt;
        y.par_chunks_mut(g.wo * g.cout).enumerate().for_each(|(row_index, yr)| {
            let (n, oy) = (row_index / g.ho, row_index % g.ho);
            let r = Row {
                g,
                x: src.data[(n * src.h + oy * g.sh) * src.w * g.cin..].as_ptr(),
                xps: g.sw * g.cin,
                taps: &taps,
                w: wt,
                y: yr.as_mut_ptr(),
                epi,
            };
            // SAFETY: `assert_covers` puts every tap of this row's pixels inside `src`;
            // `wt` holds cout * k floats; `yr` is this row's wo * cout outputs, owned by
            // this task; `isa` was checked by the public entry point.
            unsafe { row(isa, &r) };
        });
    });
}

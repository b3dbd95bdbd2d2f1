//! Direct-convolution microkernels, written once over [`F32x`] and instantiated per ISA and
//! tile by [`simd_dispatch`]; the one place that says which tiles each ISA uses is
//! [`tiles_for`].
//!
//! - `f32-dconv-fwd-MRxNR`: `MR` consecutive output pixels of one row times `NR` output
//!   channels (`NV` vectors). For every tap and input channel it loads `NV` filter vectors
//!   and broadcasts one input value per pixel: `MR * NV` FMAs per `NV + MR` loads.
//! - `f32-dconv-wgrad-MRxNR`: `MR` rows of the filter gradient (tap, input channel pairs)
//!   times `NR` output channels, accumulated over the output pixels of one image.

use crate::arch::simd::{simd_dispatch, F32x};
use crate::arch::Isa;

/// One forward tile. Plain data; the caller vouches for the pointers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FwdTile {
    /// Input of tile pixel 0 at tap offset 0, channel 0; pixel `p`, tap `t`, channel `ci`
    /// is at `x + p * xps + taps[t] + ci`.
    pub x: *const f32,
    pub xps: usize,
    pub taps: *const usize,
    pub ntaps: usize,
    pub cin: usize,
    /// Packed filter panel: `ntaps * cin` rows of `NR` floats.
    pub w: *const f32,
    /// Output of tile pixel 0, first channel of the panel; pixel stride `yps`.
    pub y: *mut f32,
    pub yps: usize,
    /// Channels to store, `1..=NR`.
    pub n: usize,
    /// `NR` bias floats (zero-padded) or null.
    pub bias: *const f32,
    pub relu: bool,
    /// Add the tile's values to what the output holds instead of writing them (an input's
    /// gradient summed in place): one addition per value, as a separate `y += tile` makes.
    pub add: bool,
}

/// One filter-gradient tile. Plain data; the caller vouches for the pointers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WgradTile {
    /// Input of output pixel (0, 0) at tap offset 0; row `r` of the tile reads
    /// `x + oy * xrs + ox * xps + roff[r]`.
    pub x: *const f32,
    pub roff: *const usize,
    pub xrs: usize,
    pub xps: usize,
    pub rows: usize,
    pub cols: usize,
    /// Output gradient of pixel (0, 0), panel's first channel: `rows * cols` pixels of `NR`
    /// floats, `dys` apart.
    pub dy: *const f32,
    pub dys: usize,
    /// The `MR x NR` accumulator tile (row-major), read and written back.
    pub acc: *mut f32,
}

/// Floats per pixel in the forward tile's buffer for a partial row of output channels: the
/// widest tile's `NV` vectors (`NV * LANES`, checked at compile time per tile shape).
const EPILOGUE_ROW: usize = 64;

/// # Safety
/// Every address [`FwdTile`] describes for `MR` pixels, `ntaps` taps and `cin` channels is
/// readable; `ntaps * cin * NR` floats at `w`; `n` floats of each of the `MR` output pixels
/// writable (and, with `add`, readable); `NR` floats at `bias` if not null; the ISA of `V`
/// is enabled.
#[inline(always)]
unsafe fn fwd_body<V: F32x, const MR: usize, const NV: usize>(t: &FwdTile) {
    // SAFETY: the function contract.
    unsafe {
        let mut acc = [[V::zero(); NV]; MR];
        // One pointer per pixel and one running offset: broadcasts address `[pixel + off]`.
        let mut px = [t.x; MR];
        for (p, x) in px.iter_mut().enumerate() {
            *x = t.x.add(p * t.xps);
        }
        let mut wp = t.w;
        for tap in 0..t.ntaps {
            let t0 = *t.taps.add(tap);
            for off in t0..t0 + t.cin {
                let mut wv = [V::zero(); NV];
                for (v, w) in wv.iter_mut().enumerate() {
                    *w = V::load(wp.add(v * V::LANES));
                }
                for (row, x) in acc.iter_mut().zip(px) {
                    let a = V::splat(*x.add(off));
                    for (r, w) in row.iter_mut().zip(wv) {
                        *r = a.fma(w, *r);
                    }
                }
                wp = wp.add(NV * V::LANES);
            }
        }
        // The epilogue is uniform over the tile and the loop below has a tiny body, so it is
        // unrolled and `acc` stays in registers (a data-dependent branch per store would
        // force the tile into memory in the hot loop).
        let nr = NV * V::LANES;
        let mut bias = [V::zero(); NV];
        if !t.bias.is_null() {
            for (v, b) in bias.iter_mut().enumerate() {
                *b = V::load(t.bias.add(v * V::LANES));
            }
        }
        // ReLU as max(r, 0) (the SIMD max returns 0 for a NaN r, like the GEMM epilogue).
        let epi = |r: V, b: V| if t.relu { r.add(b).max(V::zero()) } else { r.add(b) };
        if t.n == nr {
            for (p, row) in acc.iter().enumerate() {
                for (v, r) in row.iter().enumerate() {
                    let at = t.y.add(p * t.yps + v * V::LANES);
                    let out = epi(*r, bias[v]);
                    if t.add { V::load(at).add(out) } else { out }.store(at);
                }
            }
        } else {
            // Left unzeroed: zeroing it took a call to `memset` before the stores below,
            // across which every accumulator was spilled to the stack, on the full tiles'
            // path too. Only the `NV` vectors stored per pixel (`nr >= n` floats) are read.
            const { assert!(NV * V::LANES <= EPILOGUE_ROW) };
            let mut buf = core::mem::MaybeUninit::<[[f32; EPILOGUE_ROW]; MR]>::uninit();
            let buf = buf.as_mut_ptr().cast::<f32>();
            for (p, row) in acc.iter().enumerate() {
                for (v, r) in row.iter().enumerate() {
                    epi(*r, bias[v]).store(buf.add(p * EPILOGUE_ROW + v * V::LANES));
                }
            }
            for p in 0..MR {
                let (b, y) = (buf.add(p * EPILOGUE_ROW), t.y.add(p * t.yps));
                if t.add {
                    for i in 0..t.n {
                        *y.add(i) += *b.add(i);
                    }
                } else {
                    core::ptr::copy_nonoverlapping(b, y, t.n);
                }
            }
        }
    }
}

/// # Safety
/// Every address [`WgradTile`] describes is readable; `MR * NR` floats at `acc` are
/// writable; the ISA of `V` is enabled.
#[inline(always)]
unsafe fn wgrad_body<V: F32x, const MR: usize, const NV: usize>(t: &WgradTile) {
    // SAFETY: the function contract.
    unsafe {
        let nr = NV * V::LANES;
        let mut acc = [[V::zero(); NV]; MR];
        let mut roff = [0usize; MR];
        for (i, (row, o)) in acc.iter_mut().zip(roff.iter_mut()).enumerate() {
            *o = *t.roff.add(i);
            for (v, r) in row.iter_mut().enumerate() {
                *r = V::load(t.acc.add(i * nr + v * V::LANES));
            }
        }
        let mut dy = t.dy;
        for oy in 0..t.rows {
            let xr = t.x.add(oy * t.xrs);
            for ox in 0..t.cols {
                let xp = xr.add(ox * t.xps);
                let mut g = [V::zero(); NV];
                for (v, gv) in g.iter_mut().enumerate() {
                    *gv = V::load(dy.add(v * V::LANES));
                }
                for (row, o) in acc.iter_mut().zip(roff) {
                    let a = V::splat(*xp.add(o));
                    for (r, gv) in row.iter_mut().zip(g) {
                        *r = a.fma(gv, *r);
                    }
                }
                // Past the last pixel this may leave the allocation (never dereferenced).
                dy = dy.wrapping_add(t.dys);
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (v, r) in row.iter().enumerate() {
                r.store(t.acc.add(i * nr + v * V::LANES));
            }
        }
    }
}

simd_dispatch! {
    /// Forward tile of `MR` pixels x `NV` vectors on `isa`.
    unsafe fn fwd<const MR: usize, const NV: usize>(t: &FwdTile) => fwd_body
}
simd_dispatch! {
    /// Filter-gradient tile of `MR` rows x `NV` vectors on `isa`.
    unsafe fn wgrad<const MR: usize, const NV: usize>(t: &WgradTile) => wgrad_body
}

/// A forward tile kernel (safety: [`fwd_body`]'s contract for the tile it was made for).
pub(crate) type FwdFn = unsafe fn(Isa, &FwdTile);
/// A filter-gradient tile kernel (safety: [`wgrad_body`]'s contract).
pub(crate) type WgradFn = unsafe fn(Isa, &WgradTile);

/// The largest tile height instantiated (AVX-512: 14 x 2 accumulators + 2 filter vectors
/// + 1 broadcast = 31 of 32 registers).
pub(crate) const MAX_MR: usize = 14;

macro_rules! by_height {
    ($f:ident, $nv:literal) => {
        [
            $f::<1, $nv>,
            $f::<2, $nv>,
            $f::<3, $nv>,
            $f::<4, $nv>,
            $f::<5, $nv>,
            $f::<6, $nv>,
            $f::<7, $nv>,
            $f::<8, $nv>,
            $f::<9, $nv>,
            $f::<10, $nv>,
            $f::<11, $nv>,
            $f::<12, $nv>,
            $f::<13, $nv>,
            $f::<14, $nv>,
        ]
    };
}

/// A tile family: `nv` vectors wide, any height up to `max_mr`; kernels indexed by height - 1.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tiles {
    /// `f32-dconv-MRxNR-isa`, for the tallest tile.
    pub name: &'static str,
    pub nv: usize,
    pub max_mr: usize,
    pub fwd: [FwdFn; MAX_MR],
    pub wgrad: [WgradFn; MAX_MR],
}

macro_rules! tiles {
    ($name:literal, $nv:literal, $mr:literal) => {
        Tiles { name: $name, nv: $nv, max_mr: $mr, fwd: by_height!(fwd, $nv), wgrad: by_height!(wgrad, $nv) }
    };
}

/// The tile families of each ISA, widest first. The tallest height keeps every accumulator,
/// filter vector and broadcast in registers (16 on AVX2, 32 on AVX-512 and NEON).
pub(crate) fn tiles_for(isa: Isa) -> &'static [Tiles] {
    static AVX512: [Tiles; 2] = [tiles!("f32-dconv-14x32-avx512", 2, 14), tiles!("f32-dconv-14x16-avx512", 1, 14)];
    static AVX2: [Tiles; 2] = [tiles!("f32-dconv-6x16-avx2", 2, 6), tiles!("f32-dconv-12x8-avx2", 1, 12)];
    static NEON: [Tiles; 2] = [tiles!("f32-dconv-12x8-neon", 2, 12), tiles!("f32-dconv-14x4-neon", 1, 14)];
    static PORTABLE: [Tiles; 2] = [tiles!("f32-dconv-4x16-scalar", 2, 4), tiles!("f32-dconv-8x8-scalar", 1, 8)];
    match isa {
        Isa::Avx512 => &AVX512,
        Isa::Avx2 => &AVX2,
        Isa::Neon => &NEON,
        Isa::Scalar => &PORTABLE,
    }
}

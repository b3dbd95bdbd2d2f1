//! Winograd transforms F(M x M, 3 x 3), vectorised across channels (contiguous in NHWC and
//! HWIO), written once over [`F32x`] and compiled per ISA by [`simd_dispatch`].
//!
//! With `α = M + 2`, a tile of `α x α` input pixels `d` and a 3x3 filter `g`:
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` is the `M x M` output tile. The 1-D transforms below are
//! Lavin & Gray's matrices (points 0, ±1, ±2 for F(4,3); 0, ±1 for F(2,3)), written as
//! explicit sums so that no multiplication by 0 or ±1 is executed.

// The 2-D transforms index their tile arrays by row and column counters on purpose.
#![allow(clippy::needless_range_loop)]

use crate::arch::simd::{simd_dispatch, F32x};

/// `Bᵀ d` for one column of `α` vectors.
#[inline(always)]
unsafe fn bt<V: F32x, const M: usize>(d: [V; 6]) -> [V; 6] {
    // SAFETY: arithmetic only; the ISA of V is enabled by the caller.
    unsafe {
        if M == 2 {
            return [d[0].sub(d[2]), d[1].add(d[2]), d[2].sub(d[1]), d[1].sub(d[3]), d[4], d[5]];
        }
        let (c4, c5, c2) = (V::splat(4.0), V::splat(-5.0), V::splat(2.0));
        [
            c4.fma(d[0], c5.fma(d[2], d[4])),
            V::splat(-4.0).fma(d[1].add(d[2]), d[3].add(d[4])),
            c4.fma(d[1].sub(d[2]), d[4].sub(d[3])),
            c2.fma(d[3].sub(d[1]), d[4].sub(d[2])),
            c2.fma(d[1].sub(d[3]), d[4].sub(d[2])),
            c4.fma(d[1], c5.fma(d[3], d[5])),
        ]
    }
}

/// `Aᵀ m` for one column: `M` outputs from `α` products (the rest of the array is unused).
#[inline(always)]
pub(super) unsafe fn at<V: F32x, const M: usize>(m: [V; 6]) -> [V; 6] {
    // SAFETY: arithmetic only.
    unsafe {
        if M == 2 {
            let s = m[1].add(m[2]);
            return [m[0].add(s), m[1].sub(m[2]).sub(m[3]), m[2], m[3], m[4], m[5]];
        }
        let (s1, d1, s2, d2) = (m[1].add(m[2]), m[1].sub(m[2]), m[3].add(m[4]), m[3].sub(m[4]));
        [
            m[0].add(s1).add(s2),
            V::splat(2.0).fma(d2, d1),
            V::splat(4.0).fma(s2, s1),
            V::splat(8.0).fma(d2, d1.add(m[5])),
            m[4],
            m[5],
        ]
    }
}

/// `G g` for one column: `α` values from the 3 filter taps.
#[inline(always)]
unsafe fn gt<V: F32x, const M: usize>(g: [V; 3]) -> [V; 6] {
    // SAFETY: arithmetic only.
    unsafe {
        if M == 2 {
            let h = V::splat(0.5);
            let s = g[0].add(g[2]);
            return [g[0], h.mul(s.add(g[1])), h.mul(s.sub(g[1])), g[2], g[2], g[2]];
        }
        let s = g[0].add(g[2]);
        let e = V::splat(1.0 / 24.0).fma(g[0], V::splat(1.0 / 6.0).mul(g[2]));
        let o = V::splat(1.0 / 12.0).mul(g[1]);
        [
            V::splat(0.25).mul(g[0]),
            V::splat(-1.0 / 6.0).mul(s.add(g[1])),
            V::splat(-1.0 / 6.0).mul(s.sub(g[1])),
            e.add(o),
            e.sub(o),
            g[2],
        ]
    }
}

/// The column pass of a 2-D transform, transposed for the row pass: `t[i][j] = f(d[.][j])[i]`
/// for the `α x α` tile `d(i, j)` (cells past `α` are zero). Built by `from_fn`, so no zeroed
/// temporaries force the tile out of registers.
///
/// # Safety
/// The ISA of `V` is enabled (this runs vector instructions of it: it is only sound inlined
/// into a `#[target_feature]` wrapper of that ISA).
#[inline(always)]
pub(super) unsafe fn columns<V: F32x>(
    a: usize,
    d: impl Fn(usize, usize) -> V,
    f: impl Fn([V; 6]) -> [V; 6],
) -> [[V; 6]; 6] {
    // SAFETY: V::zero needs only the ISA of V, enabled per this function's contract.
    let zero = unsafe { V::zero() };
    let cols: [[V; 6]; 6] = core::array::from_fn(|j| {
        if j >= a {
            return [zero; 6];
        }
        f(core::array::from_fn(|i| if i < a { d(i, j) } else { zero }))
    });
    core::array::from_fn(|i| core::array::from_fn(|j| cols[j][i]))
}

/// Loads `n` channels (a full vector when `n == LANES`).
#[inline(always)]
pub(super) unsafe fn ld<V: F32x>(p: *const f32, n: usize) -> V {
    // SAFETY: the caller guarantees n floats at p.
    unsafe {
        if n == V::LANES {
            V::load(p)
        } else {
            V::load_partial(p, n)
        }
    }
}

/// Stores `n` channels.
#[inline(always)]
pub(super) unsafe fn st<V: F32x>(v: V, p: *mut f32, n: usize) {
    // SAFETY: the caller guarantees n writable floats at p.
    unsafe {
        if n == V::LANES {
            v.store(p)
        } else {
            v.store_partial(p, n)
        }
    }
}

/// Filter transform of input channel `ci`: `u[(i*α + j) * cout + co] = (G g Gᵀ)[i][j]` for
/// the HWIO 3x3 filter `w` (`[3, 3, cin, cout]`); `u` is that channel's `α² x cout` slab.
///
/// # Safety
/// `w` holds `9 * cin * cout` floats, `ci < cin`, `u` holds `α² * cout`; the ISA of `V` is
/// enabled.
#[inline(always)]
unsafe fn filter_body<V: F32x, const M: usize>(w: &[f32], u: &mut [f32], ci: usize, cin: usize, cout: usize) {
    let a = M + 2;
    assert!(ci < cin && w.len() >= 9 * cin * cout && u.len() >= a * a * cout);
    let plane = cin * cout;
    // SAFETY: every offset below is < 9 * plane in w and < a * a * cout in u (checked above).
    unsafe {
        for co in (0..cout).step_by(V::LANES) {
            let n = V::LANES.min(cout - co);
            let at_w = |ky: usize, kx: usize| w.as_ptr().add((ky * 3 + kx) * plane + ci * cout + co);
            // Columns first: t[i][kx] = (G g)[i][kx].
            let mut t = [[V::zero(); 3]; 6];
            for kx in 0..3 {
                let col = gt::<V, M>([ld(at_w(0, kx), n), ld(at_w(1, kx), n), ld(at_w(2, kx), n)]);
                for i in 0..a {
                    t[i][kx] = col[i];
                }
            }
            for (i, row) in t.iter().enumerate().take(a) {
                let r = gt::<V, M>(*row);
                for (j, v) in r.iter().enumerate().take(a) {
                    st(*v, u.as_mut_ptr().add((i * a + j) * cout + co), n);
                }
            }
        }
    }
}

/// Where a block of tiles lies: `count` tiles starting at global tile `first` (tiles run
/// over images, tile rows, tile columns: `th x tw` per image) of a batch of `h x w` pixels
/// per image and `c` channels. For the input side the tiles lie on a zero canvas in which
/// the batch's pixel `(y, x)` sits at `(top + y, left + x)` (the convolution's padding),
/// read in place: cells off the batch are zeros, never copied. The output side has `top =
/// left = 0` and clips to `h x w`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tiles {
    pub first: usize,
    pub count: usize,
    pub th: usize,
    pub tw: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub top: isize,
    pub left: isize,
}

impl Tiles {
    /// (image, first row, first column) of tile `t` of the block, for tiles of `m` pixels.
    #[inline(always)]
    pub(super) fn origin(&self, t: usize, m: usize) -> (usize, usize, usize) {
        let g = self.first + t;
        let (n, r) = (g / (self.th * self.tw), g % (self.th * self.tw));
        (n, r / self.tw * m, r % self.tw * m)
    }
}

/// Input transform of a block: `v[(t*α² + i*α + j) * c + ch] = (Bᵀ d B)[i][j]` for each
/// tile `t` of the block (tile-major: a tile's `α²` vectors are written to one contiguous
/// run, so the stores stream instead of scattering over `α²` distant rows; the GEMMs read
/// position `i*α + j` as a `[count, c]` matrix with row stride `α² c`), `d` its `α x α`
/// window of the canvas over `x` (`[n, h, w, c]`, see [`Tiles`]). Windows inside the batch load without checks; the others load the
/// pixels they cover and zeros elsewhere.
///
/// # Safety
/// `x` holds the `n x h x w x c` batch of every image the block's tiles lie in; `v` holds
/// `α² * count * c` floats; the ISA of `V` is enabled.
#[inline(always)]
unsafe fn input_body<V: F32x, const M: usize>(x: &[f32], b: &Tiles, v: &mut [f32]) {
    let a = M + 2;
    assert!(v.len() >= a * a * b.count * b.c);
    let (h, w) = (b.h as isize, b.w as isize);
    // SAFETY: loads are of batch pixels (rows in [0, h), columns in [0, w)) of an image of
    // the block, inside x by the contract; v offsets are < a * a * count * c.
    unsafe {
        for t in 0..b.count {
            let (n, y0, x0) = b.origin(t, M);
            let (sy, sx) = (y0 as isize - b.top, x0 as isize - b.left);
            let image = x.as_ptr().add(n * b.h * b.w * b.c);
            let inside = sy >= 0 && sx >= 0 && sy + a as isize <= h && sx + a as isize <= w;
            for ch in (0..b.c).step_by(V::LANES) {
                let nl = V::LANES.min(b.c - ch);
                let tm = if inside {
                    let base = image.add(((sy as usize) * b.w + sx as usize) * b.c + ch);
                    columns(a, |i, j| ld(base.add((i * b.w + j) * b.c), nl), |col| bt::<V, M>(col))
                } else {
                    let pixel = |i: usize, j: usize| {
                        let (py, px) = (sy + i as isize, sx + j as isize);
                        if py >= 0 && px >= 0 && py < h && px < w {
                            ld(image.add(((py as usize) * b.w + px as usize) * b.c + ch), nl)
                        } else {
                            V::zero()
                        }
                    };
                    columns(a, pixel, |col| bt::<V, M>(col))
                };
                let out = v.as_mut_ptr().add(t * a * a * b.c + ch);
                for (i, row) in tm.iter().enumerate().take(a) {
                    let r = bt::<V, M>(*row);
                    for (j, rv) in r.iter().enumerate().take(a) {
                        st(*rv, out.add((i * a + j) * b.c), nl);
                    }
                }
            }
        }
    }
}

/// The output side of a block: `y` (the output rows from the block's first tile row on,
/// `[rows, wo, cout]` with `b.h = ho`, `b.w = wo`, `b.c = cout`) gets `relu?(Aᵀ m A + bias)`
/// for every tile, clipped to `ho x wo`. `m` holds the products tile-major, as the input
/// transform writes `v`: `m[(t*α² + i*α + j) * cout + co]`.
///
/// # Safety
/// `m` holds `α² * count * cout` floats; `y` holds every in-range pixel of the block's
/// tiles counted from the block's first tile row; `bias` (if not empty) `cout` floats; the
/// ISA of `V` is enabled.
#[inline(always)]
unsafe fn output_body<V: F32x, const M: usize>(m: &[f32], b: &Tiles, bias: &[f32], relu: bool, y: &mut [f32]) {
    let a = M + 2;
    assert!(m.len() >= a * a * b.count * b.c && (bias.is_empty() || bias.len() >= b.c));
    let (n0, y00, _) = b.origin(0, M);
    let start = (n0 * b.h + y00) * b.w;
    // SAFETY: m offsets are < a * a * count * c; the y offset of every stored pixel is an
    // in-range pixel of the block, which the contract puts inside y.
    unsafe {
        for t in 0..b.count {
            let (n, y0, x0) = b.origin(t, M);
            let rows = M.min(b.h - y0);
            let width = M.min(b.w - x0);
            let out = y.as_mut_ptr().add(((n * b.h + y0) * b.w + x0 - start) * b.c);
            for ch in (0..b.c).step_by(V::LANES) {
                let nl = V::LANES.min(b.c - ch);
                let tile = m.as_ptr().add(t * a * a * b.c + ch);
                let tm = columns(a, |i, j| ld(tile.add((i * a + j) * b.c), nl), |col| at::<V, M>(col));
                let bv = if bias.is_empty() { V::zero() } else { ld(bias.as_ptr().add(ch), nl) };
                // Constant trip counts and a branch per store (not a clipped loop): the tile
                // arrays stay in registers.
                for i in 0..M {
                    let r = at::<V, M>(tm[i]);
                    for j in 0..M {
                        let mut o = r[j].add(bv);
                        if relu {
                            o = o.max(V::zero());
                        }
                        if i < rows && j < width {
                            st(o, out.add((i * b.w + j) * b.c + ch), nl);
                        }
                    }
                }
            }
        }
    }
}

simd_dispatch! {
    /// [`filter_body`] on `isa`.
    pub(crate) unsafe fn filter<const M: usize>(w: &[f32], u: &mut [f32], ci: usize, cin: usize, cout: usize)
        => filter_body
}
simd_dispatch! {
    /// [`input_body`] on `isa`.
    pub(crate) unsafe fn input<const M: usize>(x: &[f32], b: &Tiles, v: &mut [f32]) => input_body
}
simd_dispatch! {
    /// [`output_body`] on `isa`.
    pub(crate) unsafe fn output<const M: usize>(m: &[f32], b: &Tiles, bias: &[f32], relu: bool, y: &mut [f32])
        => output_body
}

//! Winograd transforms F(M x M, 3 x 3), vectorised across channels (contiguous in NHWC and
//! HWIO), written once over [`F32x`] and compiled per ISA by [`simd_dispatch`].
//!
//! With `α = M + 2`, a tile of `α x α` input pixels `d` and a 3x3 filter `g`:
//! `Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` is the `M x M` output tile. The 1-D transforms below are
//! Lavin & Gray's matrices (points 0, ±1, ±2 for F(4,3); 0, ±1 for F(2,3)), written as
//! explicit sums so that no multiplication by 0 or ±1 is executed.
//!
//! (Over 400 lines: the filter, input and output transforms share the 1-D matrices and the
//! straight-line macros below; split apart, each would have to reach into the others.)

// The 2-D transforms index their tile arrays by row and column counters on purpose.
#![allow(clippy::needless_range_loop)]

use crate::arch::simd::{ld, simd_dispatch, st, F32x};

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

/// `[body(0), body(1), .., body(5)]` with `$i` bound to each index, written out as six
/// expressions: no closure (LLVM declines to inline a tile-sized closure called six
/// times) and no loop (`core::array::from_fn` and loops over `0..α` left LLVM loops that
/// index the tile arrays on the stack), so the tile arrays stay in registers as far as
/// the register file allows.
macro_rules! arr6 {
    (|$i:ident| $body:expr) => {
        $crate::conv::winograd::transform::arr6!(@ $i, $body, 0 1 2 3 4 5)
    };
    (@ $i:ident, $body:expr, $($k:literal)*) => {
        [$({
            let $i: usize = $k;
            $body
        }),*]
    };
}
pub(super) use arr6;

/// `body` for `$i` in `0..n` (`n <= 6`, a constant: `M` or `α`, so the guards fold away),
/// written out like [`arr6!`].
macro_rules! upto6 {
    ($n:expr, |$i:ident| $body:expr) => {{
        let n: usize = $n;
        debug_assert!(n <= 6);
        let _ = $crate::conv::winograd::transform::arr6!(|$i| if $i < n {
            $body;
        });
    }};
}
pub(super) use upto6;

/// `body` for each vector `ch..ch + nl` of `c` channels: the full vectors in a loop with
/// `nl` the constant `lanes` (so that `ld`'s and `st`'s branches on it fold away: a branch
/// per load split a tile's code into blocks and sent the tile to the stack), then the
/// partial tail, if any, with `nl < lanes`.
macro_rules! channel_vectors {
    ($c:expr, $lanes:expr, |$ch:ident, $nl:ident| $body:block) => {{
        let (c, l): (usize, usize) = ($c, $lanes);
        let full = c / l * l;
        for $ch in (0..full).step_by(l) {
            let $nl = $lanes;
            $body
        }
        if full < c {
            let ($ch, $nl) = (full, c - full);
            $body
        }
    }};
}
pub(super) use channel_vectors;

/// The column pass of a 2-D transform, transposed for the row pass: `t[i][j] = f(d[.][j])[i]`
/// for the `α x α` tile `d(i, j)` (cells past `α` are zero), written out by [`arr6!`]:
/// `columns!(α, zero, |i, j| d, |col| f)` with `d` an expression in the cell's row `i` and
/// column `j`, and `f` one in the `[V; 6]` column `col`. Only sound inside a
/// `#[target_feature]` function of the ISA of the vectors it makes.
macro_rules! columns {
    ($a:expr, $zero:expr, |$i:ident, $j:ident| $d:expr, |$col:ident| $f:expr) => {{
        let a: usize = $a;
        let zero = $zero;
        let cols = $crate::conv::winograd::transform::arr6!(|$j| if $j >= a {
            [zero; 6]
        } else {
            let $col = $crate::conv::winograd::transform::arr6!(|$i| if $i < a { $d } else { zero });
            $f
        });
        $crate::conv::winograd::transform::arr6!(|r| $crate::conv::winograd::transform::arr6!(|c| cols[c][r]))
    }};
}
pub(super) use columns;

/// A full vector if `FULL` (a constant), else `n` channels.
#[inline(always)]
unsafe fn ldc<V: F32x, const FULL: bool>(p: *const f32, n: usize) -> V {
    // SAFETY: the caller guarantees LANES (FULL) or n floats at p.
    unsafe {
        if FULL {
            V::load(p)
        } else {
            V::load_partial(p, n)
        }
    }
}

/// Stores a full vector if `FULL` (a constant), else `n` channels.
#[inline(always)]
unsafe fn stc<V: F32x, const FULL: bool>(v: V, p: *mut f32, n: usize) {
    // SAFETY: the caller guarantees LANES (FULL) or n writable floats at p.
    unsafe {
        if FULL {
            v.store(p)
        } else {
            v.store_partial(p, n)
        }
    }
}

/// Filter transform of input channels `ci0..ci0 + k` (`k` = `u.len() / (α² cout)`):
/// `u[(c·α² + i*α + j) * cout + co] = (G g Gᵀ)[i][j]` of channel `ci0 + c` for the HWIO 3x3
/// filter `w` (`[3, 3, cin, cout]`); `u` is those channels' `α² x cout` slabs.
///
/// # Safety
/// `w` holds `9 * cin * cout` floats, `u` a whole number of slabs of channels below `cin`;
/// the ISA of `V` is enabled.
#[inline(always)]
unsafe fn filter_body<V: F32x, const M: usize>(w: &[f32], u: &mut [f32], ci0: usize, cin: usize, cout: usize) {
    let a = M + 2;
    let slab = a * a * cout;
    let count = u.len() / slab.max(1);
    assert!(ci0 + count <= cin && w.len() >= 9 * cin * cout && u.len() == count * slab);
    let plane = cin * cout;
    // SAFETY: every offset below is < 9 * plane in w and < count * slab in u (checked above).
    unsafe {
        for ci in ci0..ci0 + count {
            let u = u.as_mut_ptr().add((ci - ci0) * slab);
            for co in (0..cout).step_by(V::LANES) {
                let n = V::LANES.min(cout - co);
                let at_w = |ky: usize, kx: usize| w.as_ptr().add((ky * 3 + kx) * plane + ci * cout + co);
                // Columns first: (G g) column by column, each from its three taps. (Values,
                // not a zeroed array filled in: the array's zeroing was a `memset` call per
                // vector of channels, a fifth of the transform's time.)
                // (No closure over `gt`: it would not inherit this function's target features.)
                let c0 = gt::<V, M>([ld(at_w(0, 0), n), ld(at_w(1, 0), n), ld(at_w(2, 0), n)]);
                let c1 = gt::<V, M>([ld(at_w(0, 1), n), ld(at_w(1, 1), n), ld(at_w(2, 1), n)]);
                let c2 = gt::<V, M>([ld(at_w(0, 2), n), ld(at_w(1, 2), n), ld(at_w(2, 2), n)]);
                for i in 0..a {
                    let r = gt::<V, M>([c0[i], c1[i], c2[i]]);
                    for (j, v) in r.iter().enumerate().take(a) {
                        st(*v, u.add((i * a + j) * cout + co), n);
                    }
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

/// Where a block's transformed values lie: value `(t, i*α + j, ch)` (tile `t`, position
/// `(i, j)` of its `α x α` transform, channel `ch`) at `t·tile + (i*α + j)·pos + ch`, in
/// floats; the GEMMs read position `i*α + j` as a `[count, c]` matrix with row stride
/// `tile`, the next position `pos` floats on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Packing {
    pub tile: usize,
    pub pos: usize,
}

impl Packing {
    /// Tile-major (`tile = α² c`, `pos = c`): a tile's `α²` vectors are one contiguous run,
    /// so the transforms' stores and loads stream instead of scattering over `α²` distant
    /// rows. The forward and backward-data GEMMs take their `[count, c]` operand rows 14 or
    /// 8 at a time, each row reused over the product's width, so the row stride costs them
    /// little: position-major, the residual network's 3x3 layers ran no faster in either
    /// pass (session 46).
    pub(crate) fn tile_major(a: usize, c: usize) -> Packing {
        Packing { tile: a * a * c, pos: c }
    }

    /// Position-major (`tile = c`, `pos = count·c + 16`): each position's `[count, c]`
    /// matrix is contiguous. The backward-filter GEMMs run over the tiles (their depth),
    /// reading one row of each operand per step: tile-major, every step reads lines
    /// `α² c` floats apart (4.6 KiB at 32 channels, all in 8 of L1's 64 sets), and those
    /// GEMMs ran at ~55% of the peak. The 16 extra floats (one cache line) keep the `α²`
    /// positions' rows, which the transforms store to side by side, off the same sets:
    /// without them the resnet's 3x3 backward-filter ran 12% slower on the Intel class
    /// (session 46). Session 36 found the unpadded layout slower than tile-major on a Zen
    /// 3, where its transforms lost more than its GEMMs gained; this one is not measured
    /// on a Zen.
    pub(crate) fn position_major(count: usize, c: usize) -> Packing {
        Packing { tile: c, pos: count * c + 16 }
    }

    /// Floats a block of `count` tiles of `c` channels needs.
    pub(crate) fn len(self, a: usize, count: usize, c: usize) -> usize {
        if count == 0 {
            return 0;
        }
        (count - 1) * self.tile + (a * a - 1) * self.pos + c
    }
}

/// Input transform of a block: value `(t, i*α + j, ch)` placed by `p` (see [`Packing`]) is
/// `(Bᵀ d B)[i][j]` for each tile `t` of the block, `d` its `α x α` window of the canvas
/// over `x` (`[n, h, w, c]`, see [`Tiles`]). Windows inside the batch load without checks;
/// the others load the pixels they cover and zeros elsewhere.
///
/// # Safety
/// `x` holds the `n x h x w x c` batch of every image the block's tiles lie in; `v` holds
/// `p.len(α, count, c)` floats; the ISA of `V` is enabled.
#[inline(always)]
unsafe fn input_body<V: F32x, const M: usize>(x: &[f32], b: &Tiles, p: Packing, v: &mut [f32]) {
    let a = M + 2;
    let l = V::LANES;
    assert!(v.len() >= p.len(a, b.count, b.c) && p.tile >= b.c && p.pos >= b.c && l <= 16);
    let (h, w) = (b.h as isize, b.w as isize);
    let full = b.c / l * l;
    // SAFETY: loads are of batch pixels (rows in [0, h), columns in [0, w)) of an image of
    // the block, inside x by the contract, or of `ZEROS`; v offsets are < p.len(a, count, c).
    unsafe {
        for t in 0..b.count {
            let (n, y0, x0) = b.origin(t, M);
            let (sy, sx) = (y0 as isize - b.top, x0 as isize - b.left);
            let image = x.as_ptr().add(n * b.h * b.w * b.c);
            let out = v.as_mut_ptr().add(t * p.tile);
            let strides = (b.w * b.c, b.c);
            let inside = sy >= 0 && sx >= 0 && sy + a as isize <= h && sx + a as isize <= w;
            if inside {
                let base = image.add(((sy as usize) * b.w + sx as usize) * b.c);
                for ch in (0..full).step_by(l) {
                    input_tile::<V, M, true>(base.add(ch), strides, out.add(ch), p.pos, l);
                }
                if full < b.c {
                    input_tile::<V, M, false>(base.add(full), strides, out.add(full), p.pos, b.c - full);
                }
                continue;
            }
            // A window that crosses the canvas's edge: its rows and columns on the batch,
            // [r0, r1) x [c0, c1), load in place and the others read zeros. Its origin may lie
            // off the image, so it is only computed (wrapping), never read from.
            let rows = ((-sy).clamp(0, a as isize) as usize, (h - sy).clamp(0, a as isize) as usize);
            let cols = ((-sx).clamp(0, a as isize) as usize, (w - sx).clamp(0, a as isize) as usize);
            let base = image.wrapping_offset((sy * w + sx) * b.c as isize);
            for ch in (0..full).step_by(l) {
                input_edge_tile::<V, M, true>(base.wrapping_add(ch), strides, (rows, cols), out.add(ch), p.pos, l);
            }
            if full < b.c {
                let nl = b.c - full;
                input_edge_tile::<V, M, false>(
                    base.wrapping_add(full),
                    strides,
                    (rows, cols),
                    out.add(full),
                    p.pos,
                    nl,
                );
            }
        }
    }
}

/// Zeros for the cells of an edge window that lie off the batch (one vector of the widest ISA).
#[repr(C, align(64))]
struct Zeros([f32; 16]);
static ZEROS: Zeros = Zeros([0.0; 16]);

/// [`input_tile`] of a window that crosses the canvas's edge: cell `(i, j)` is read at
/// `src + i·rs + j·cs` where `rows.0 <= i < rows.1` and `cols.0 <= j < cols.1`, and is zero
/// elsewhere. The zeros are loads from [`ZEROS`] (a pointer chosen per cell, not a branch
/// around the load), so the tile stays straight-line code in registers; staging the window
/// in a buffer on the stack instead cost about as much as the transform itself.
///
/// # Safety
/// As [`input_tile`] for the cells inside `rows x cols` (`src` itself may lie outside the
/// allocation: it is offset with wrapping arithmetic and only in-range cells are read);
/// `n <= 16`.
#[inline(always)]
unsafe fn input_edge_tile<V: F32x, const M: usize, const FULL: bool>(
    src: *const f32,
    (rs, cs): (usize, usize),
    (rows, cols): ((usize, usize), (usize, usize)),
    out: *mut f32,
    oc: usize,
    n: usize,
) {
    let a = M + 2;
    let zeros = ZEROS.0.as_ptr();
    // SAFETY: per the contract: in-range cells are batch pixels, the others read ZEROS.
    unsafe {
        let tm = columns!(
            a,
            V::zero(),
            |i, j| {
                let on = i >= rows.0 && i < rows.1 && j >= cols.0 && j < cols.1;
                ldc::<V, FULL>(if on { src.wrapping_add(i * rs + j * cs) } else { zeros }, n)
            },
            |col| bt::<V, M>(col)
        );
        upto6!(a, |i| {
            let r = bt::<V, M>(tm[i]);
            upto6!(a, |j| stc::<V, FULL>(r[j], out.add((i * a + j) * oc), n));
        });
    }
}

/// `Bᵀ d B` for one window of one vector of channels: `d(i, j)` at `src + i·rs + j·cs`,
/// result `(i, j)` stored at `out + (i·α + j)·oc`; `FULL`: all `LANES` channels, else the
/// first `n`. Straight-line code (the channel count decided outside: a branch per load
/// split the tile across blocks and sent it to the stack).
///
/// # Safety
/// Every `src + i·rs + j·cs` (`i, j < α`) holds `n` readable floats (`LANES` if `FULL`),
/// every `out + k·oc` (`k < α²`) `n` writable ones; the ISA of `V` is enabled.
#[inline(always)]
unsafe fn input_tile<V: F32x, const M: usize, const FULL: bool>(
    src: *const f32,
    (rs, cs): (usize, usize),
    out: *mut f32,
    oc: usize,
    n: usize,
) {
    let a = M + 2;
    // SAFETY: per the contract.
    unsafe {
        let tm = columns!(a, V::zero(), |i, j| ldc::<V, FULL>(src.add(i * rs + j * cs), n), |col| bt::<V, M>(col));
        upto6!(a, |i| {
            let r = bt::<V, M>(tm[i]);
            upto6!(a, |j| stc::<V, FULL>(r[j], out.add((i * a + j) * oc), n));
        });
    }
}

/// The output side of a block: `y` (the output rows from the block's first tile row on,
/// `[rows, wo, cout]` with `b.h = ho`, `b.w = wo`, `b.c = cout`) gets `relu?(Aᵀ m A + bias)`
/// for every tile, clipped to `ho x wo`; with `add`, `y + Aᵀ m A` (`bias` empty, `relu`
/// false: a gradient added to the one `y` holds). `m` holds the products placed by `p`
/// (see [`Packing`]).
///
/// # Safety
/// `m` holds `p.len(α, count, cout)` floats; `y` holds every in-range pixel of the block's
/// tiles counted from the block's first tile row; `bias` (if not empty) `cout` floats; the
/// ISA of `V` is enabled.
#[inline(always)]
unsafe fn output_body<V: F32x, const M: usize>(
    (m, p): (&[f32], Packing),
    b: &Tiles,
    bias: &[f32],
    relu: bool,
    add: bool,
    y: &mut [f32],
) {
    let a = M + 2;
    assert!(m.len() >= p.len(a, b.count, b.c) && p.tile >= b.c && p.pos >= b.c);
    assert!(bias.is_empty() || bias.len() >= b.c);
    assert!(!add || (bias.is_empty() && !relu), "an added gradient has no bias and no ReLU");
    let (n0, y00, _) = b.origin(0, M);
    let start = (n0 * b.h + y00) * b.w;
    let l = V::LANES;
    let full = b.c / l * l;
    // SAFETY: m offsets are < p.len(a, count, c); the y offset of every stored pixel is an
    // in-range pixel of the block, which the contract puts inside y.
    unsafe {
        for t in 0..b.count {
            let (n, y0, x0) = b.origin(t, M);
            let rows = M.min(b.h - y0);
            let width = M.min(b.w - x0);
            let out = y.as_mut_ptr().add(((n * b.h + y0) * b.w + x0 - start) * b.c);
            let tile = m.as_ptr().add(t * p.tile);
            let strides = (b.w * b.c, b.c);
            for ch in (0..full).step_by(l) {
                let bv = if bias.is_empty() { V::zero() } else { V::load(bias.as_ptr().add(ch)) };
                output_tile::<V, M, true>(tile.add(ch), p.pos, (bv, relu, add), out.add(ch), strides, (rows, width), l);
            }
            if full < b.c {
                let nl = b.c - full;
                let bv = if bias.is_empty() { V::zero() } else { V::load_partial(bias.as_ptr().add(full), nl) };
                output_tile::<V, M, false>(
                    tile.add(full),
                    p.pos,
                    (bv, relu, add),
                    out.add(full),
                    strides,
                    (rows, width),
                    nl,
                );
            }
        }
    }
}

/// `relu?(Aᵀ m A + bias)` for one tile of one vector of channels: product `(i, j)` at
/// `src + (i·α + j)·sc`, output pixel `(i, j)` stored at `dst + i·rs + j·cs` where `i <
/// rows` and `j < width` (with `add`, added to what the pixel holds); `FULL`: all `LANES`
/// channels, else the first `n`. Straight-line code, like [`input_tile`].
///
/// # Safety
/// Every `src + k·sc` (`k < α²`) holds `n` readable floats (`LANES` if `FULL`), every
/// stored-to `dst + i·rs + j·cs` `n` writable (and readable) ones; the ISA of `V` is
/// enabled.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn output_tile<V: F32x, const M: usize, const FULL: bool>(
    src: *const f32,
    sc: usize,
    (bias, relu, add): (V, bool, bool),
    dst: *mut f32,
    (rs, cs): (usize, usize),
    (rows, width): (usize, usize),
    n: usize,
) {
    let a = M + 2;
    // SAFETY: per the contract.
    unsafe {
        let tm = columns!(a, V::zero(), |i, j| ldc::<V, FULL>(src.add((i * a + j) * sc), n), |col| at::<V, M>(col));
        // Constant trip counts and a branch per store (not a clipped loop): the tile
        // arrays stay in registers.
        upto6!(M, |i| {
            let r = at::<V, M>(tm[i]);
            upto6!(M, |j| {
                let mut o = r[j].add(bias);
                if relu {
                    o = o.max(V::zero());
                }
                if i < rows && j < width {
                    let p = dst.add(i * rs + j * cs);
                    // `o + y`: the sum a separate gradient's `y += o` gives (`o` is exactly
                    // `Aᵀ m A` here: the bias is zero).
                    let o = if add { o.add(ldc::<V, FULL>(p, n)) } else { o };
                    stc::<V, FULL>(o, p, n);
                }
            });
        });
    }
}

simd_dispatch! {
    /// [`filter_body`] on `isa`.
    pub(crate) unsafe fn filter<const M: usize>(w: &[f32], u: &mut [f32], ci0: usize, cin: usize, cout: usize)
        => filter_body
}
simd_dispatch! {
    /// [`input_body`] on `isa`.
    pub(crate) unsafe fn input<const M: usize>(x: &[f32], b: &Tiles, p: Packing, v: &mut [f32]) => input_body
}
simd_dispatch! {
    /// [`output_body`] on `isa`.
    pub(crate) unsafe fn output<const M: usize>(m: (&[f32], Packing), b: &Tiles, bias: &[f32], relu: bool, add: bool, y: &mut [f32])
        => output_body
}

//! Batch normalization's elementwise passes over one block of rows, vectorised along the
//! channels over [`F32x`]: the forward's affine map (with a ReLU), the residual join of
//! normalized and plain terms, and the backward's input gradient. Each goes a window of
//! vectors of channels at a time down [`WINDOW_ROWS`] rows, so that the window's per-channel
//! constants are loaded once, not per row: Zen 4 loads one 512-bit vector a cycle, and per
//! row and vector these passes read one to three vectors of data but up to six of
//! constants.

use super::simd::{for_each_window, load_at, relu_masked, store_at, ChannelWindows};
use crate::arch::simd::{simd_dispatch, F32x};

/// Rows a pass takes before its next window of channels: the block's rows (`x`, `dy` and
/// `dx`: 24 KiB at 64 channels) stay in L1 for the next window.
const WINDOW_ROWS: usize = 32;

/// The windows of rows `(r0, r1)` a pass takes in turn: [`WINDOW_ROWS`] at a time, the last
/// one shorter.
fn row_windows(rows: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..rows).step_by(WINDOW_ROWS).map(move |r0| (r0, (r0 + WINDOW_ROWS).min(rows)))
}

/// Per row `y = x a + b` (`a`, `b` `[c]`), then `max(y, 0)` with `RELU`.
///
/// # Safety
/// The ISA of `V` is enabled; `x` and `y` are the same whole rows of `c`; `a`, `b` have `c`.
#[inline(always)]
unsafe fn affine_body<V: F32x, const RELU: bool>(x: &[f32], a: &[f32], b: &[f32], c: usize, y: &mut [f32]) {
    let rows = y.len() / c;
    for window in row_windows(rows) {
        // SAFETY: forwarded: x and y hold these rows, a and b have c floats.
        unsafe { term_pass::<V, true, true, RELU>((x, 0), (a, b), c, window, y) };
    }
}

/// Per row `y = Σ_i term_i`, in the order of `terms`, each `x_i a_i + b_i` (multiply, then
/// add, as [`affine_body`]) where it has an affine map or `x_i` as is; then `max(y, 0)` with
/// `RELU`. `y` is the block of rows starting at element `at` of the terms' values. The sum's
/// additions are those of `elementwise::add_forward` over the terms, so the result is exactly
/// the unfused passes' (normalize, then add). [`WINDOW_ROWS`] rows at a time: the first two
/// terms in one pass ([`pair_pass`]: the join of a residual block, where `y` is written
/// once instead of written, read and written again; the standalone join of two terms ran
/// in 2.4x the time of the one-term affine map, session 51), then one pass per further term
/// (the rows of `y` stay in L1 between them), so that each pass is a tight loop with its
/// terms' constants in registers.
///
/// # Safety
/// The ISA of `V` is enabled; `y` is whole rows of `c`; every `x_i` has `at + y.len()`
/// floats; every affine map's two slices have `c` floats; `terms` is not empty.
#[inline(always)]
unsafe fn add_affine_body<V: F32x, const RELU: bool>(terms: &[super::AddTerm<'_>], at: usize, c: usize, y: &mut [f32]) {
    let rows = y.len() / c;
    let last = terms.len() - 1;
    fn map<'a>(t: &super::AddTerm<'a>) -> (&'a [f32], &'a [f32]) {
        t.affine.unwrap_or((&[], &[]))
    }
    for window in row_windows(rows) {
        if let [t0, t1, ..] = terms {
            let (x0, x1) = ((t0.x, at), (t1.x, at));
            let (m0, m1) = (map(t0), map(t1));
            // SAFETY: forwarded; the maps' slices are read only for a term that has one.
            unsafe {
                match (t0.affine.is_some(), t1.affine.is_some(), RELU && last == 1) {
                    (true, true, true) => pair_pass::<V, true, true, true>([x0, x1], [m0, m1], c, window, y),
                    (true, true, false) => pair_pass::<V, true, true, false>([x0, x1], [m0, m1], c, window, y),
                    (true, false, true) => pair_pass::<V, true, false, true>([x0, x1], [m0, m1], c, window, y),
                    (true, false, false) => pair_pass::<V, true, false, false>([x0, x1], [m0, m1], c, window, y),
                    (false, true, true) => pair_pass::<V, false, true, true>([x0, x1], [m0, m1], c, window, y),
                    (false, true, false) => pair_pass::<V, false, true, false>([x0, x1], [m0, m1], c, window, y),
                    (false, false, true) => pair_pass::<V, false, false, true>([x0, x1], [m0, m1], c, window, y),
                    (false, false, false) => pair_pass::<V, false, false, false>([x0, x1], [m0, m1], c, window, y),
                }
            }
        }
        let first = if terms.len() >= 2 { 2 } else { 0 };
        for (i, t) in terms.iter().enumerate().skip(first) {
            let x = (t.x, at);
            let ab = map(t);
            // SAFETY: forwarded; the map's slices are read only for a term that has one.
            unsafe {
                match (i == 0, t.affine.is_some(), RELU && i == last) {
                    (true, true, true) => term_pass::<V, true, true, true>(x, ab, c, window, y),
                    (true, true, false) => term_pass::<V, true, true, false>(x, ab, c, window, y),
                    (true, false, true) => term_pass::<V, true, false, true>(x, ab, c, window, y),
                    (true, false, false) => term_pass::<V, true, false, false>(x, ab, c, window, y),
                    (false, true, true) => term_pass::<V, false, true, true>(x, ab, c, window, y),
                    (false, true, false) => term_pass::<V, false, true, false>(x, ab, c, window, y),
                    (false, false, true) => term_pass::<V, false, false, true>(x, ab, c, window, y),
                    (false, false, false) => term_pass::<V, false, false, false>(x, ab, c, window, y),
                }
            }
        }
    }
}

/// The first two terms over rows `r0..r1` of `y`: `y = v0 + v1` with `v_i = x_i a_i + b_i`
/// (multiply, then add) where `AFFINE_i`, else `x_i`; then `max(y, 0)` with `RELU`: bit for
/// bit [`term_pass`] of the first term and then of the second, in one pass over `y`.
///
/// # Safety
/// As [`term_pass`] for each term.
#[inline(always)]
unsafe fn pair_pass<V: F32x, const AFFINE0: bool, const AFFINE1: bool, const RELU: bool>(
    x: [(&[f32], usize); 2],
    ab: [(&[f32], &[f32]); 2],
    c: usize,
    rows: (usize, usize),
    y: &mut [f32],
) {
    let mut pass = PairPass::<AFFINE0, AFFINE1, RELU> { x, ab, c, rows, y };
    // SAFETY: forwarded.
    unsafe { for_each_window::<V>(c, &mut pass) }
}

/// [`pair_pass`]'s operands.
struct PairPass<'a, const AFFINE0: bool, const AFFINE1: bool, const RELU: bool> {
    x: [(&'a [f32], usize); 2],
    ab: [(&'a [f32], &'a [f32]); 2],
    c: usize,
    rows: (usize, usize),
    y: &'a mut [f32],
}

impl<V: F32x, const AFFINE0: bool, const AFFINE1: bool, const RELU: bool> ChannelWindows<V>
    for PairPass<'_, AFFINE0, AFFINE1, RELU>
{
    /// [`pair_pass`] for the `W` vectors of channels from vector `j0`.
    ///
    /// # Safety
    /// As [`pair_pass`] and [`ChannelWindows::window`].
    #[inline(always)]
    unsafe fn window<const W: usize>(&mut self, j0: usize) {
        let Self { x: [(x0, at0), (x1, at1)], ab, c, rows: (r0, r1), .. } = *self;
        let y = &mut *self.y;
        let affine = [AFFINE0, AFFINE1];
        // SAFETY: a term's map is read only where it has one, and then has c floats;
        // registers otherwise.
        let maps = unsafe {
            let mut maps = [[[V::zero(); 2]; W]; 2];
            for (t, m) in maps.iter_mut().enumerate() {
                if affine[t] {
                    for (v, abv) in m.iter_mut().enumerate() {
                        *abv = [
                            load_at::<V>(ab[t].0.as_ptr(), c, 0, j0 + v),
                            load_at::<V>(ab[t].1.as_ptr(), c, 0, j0 + v),
                        ];
                    }
                }
            }
            maps
        };
        for r in r0..r1 {
            for (v, ([a0, b0], [a1, b1])) in maps[0].into_iter().zip(maps[1]).enumerate() {
                // SAFETY: row r has c floats in y and, from at_i, in x_i.
                unsafe {
                    let v0 = load_at::<V>(x0.as_ptr().add(at0 + r * c), c, 0, j0 + v);
                    let v1 = load_at::<V>(x1.as_ptr().add(at1 + r * c), c, 0, j0 + v);
                    let v0 = if AFFINE0 { v0.mul(a0).add(b0) } else { v0 };
                    let v1 = if AFFINE1 { v1.mul(a1).add(b1) } else { v1 };
                    let sum = v0.add(v1);
                    let out = if RELU { sum.max(V::zero()) } else { sum };
                    store_at(out, y.as_mut_ptr().add(r * c), c, 0, j0 + v);
                }
            }
        }
    }
}

/// One term over rows `r0..r1` of `y`: `v = x a + b` (multiply, then add) with `AFFINE`,
/// else `x`; then `y = v` with `FIRST`, else `y = y + v`; then `max(y, 0)` with `RELU`.
/// `x`'s row `r` starts at element `at + r c`. A window of vectors of channels at a time
/// ([`for_each_window`]), the map's constants loaded once a window.
///
/// # Safety
/// The ISA of `V` is enabled; `y` holds rows `r0..r1` of `c` (and, without `FIRST`, they
/// hold the sum so far), `x` has `at + r1 c` floats; with `AFFINE`, `a` and `b` have `c`.
#[inline(always)]
unsafe fn term_pass<V: F32x, const FIRST: bool, const AFFINE: bool, const RELU: bool>(
    (x, at): (&[f32], usize),
    (a, b): (&[f32], &[f32]),
    c: usize,
    rows: (usize, usize),
    y: &mut [f32],
) {
    let mut pass = TermPass::<FIRST, AFFINE, RELU> { x, at, a, b, c, rows, y };
    // SAFETY: forwarded.
    unsafe { for_each_window::<V>(c, &mut pass) }
}

/// [`term_pass`]'s operands.
struct TermPass<'a, const FIRST: bool, const AFFINE: bool, const RELU: bool> {
    x: &'a [f32],
    at: usize,
    a: &'a [f32],
    b: &'a [f32],
    c: usize,
    rows: (usize, usize),
    y: &'a mut [f32],
}

impl<V: F32x, const FIRST: bool, const AFFINE: bool, const RELU: bool> ChannelWindows<V>
    for TermPass<'_, FIRST, AFFINE, RELU>
{
    /// [`term_pass`] for the `W` vectors of channels from vector `j0`.
    ///
    /// # Safety
    /// As [`term_pass`] and [`ChannelWindows::window`].
    #[inline(always)]
    unsafe fn window<const W: usize>(&mut self, j0: usize) {
        let Self { x, at, a, b, c, rows: (r0, r1), .. } = *self;
        let y = &mut *self.y;
        // SAFETY: with AFFINE, a and b have c floats; registers otherwise.
        let ab = unsafe {
            let mut ab = [[V::zero(); 2]; W];
            if AFFINE {
                for (v, abv) in ab.iter_mut().enumerate() {
                    *abv = [load_at::<V>(a.as_ptr(), c, 0, j0 + v), load_at::<V>(b.as_ptr(), c, 0, j0 + v)];
                }
            }
            ab
        };
        for r in r0..r1 {
            for (v, &[av, bv]) in ab.iter().enumerate() {
                // SAFETY: row r has c floats in y and, from at, in x.
                unsafe {
                    let xv = load_at::<V>(x.as_ptr().add(at + r * c), c, 0, j0 + v);
                    let term = if AFFINE { xv.mul(av).add(bv) } else { xv };
                    let sum = if FIRST { term } else { load_at::<V>(y.as_ptr().add(r * c), c, 0, j0 + v).add(term) };
                    let out = if RELU { sum.max(V::zero()) } else { sum };
                    store_at(out, y.as_mut_ptr().add(r * c), c, 0, j0 + v);
                }
            }
        }
    }
}

/// Per row `dx = g dy + ((x - mean) b + d)`, two FMAs (`k`: `[mean, b, d, g, s, t]`, each
/// `[c]`; the caller folds the backward's constants into `b` and `d`); with `RELU`, `dy`
/// only where `x s + t > 0` (`s`, `t` read only then). A window of vectors of channels at a
/// time ([`for_each_window`]) down [`WINDOW_ROWS`] rows, so that the window's constants are
/// loaded once, not per row: per row and vector the pass reads two vectors of data and
/// would read up to six of constants, and Zen 4 loads one 512-bit vector a cycle.
///
/// # Safety
/// The ISA of `V` is enabled; `x`, `dy`, `dx` are the same whole rows of `c`; each constant
/// read has `c` floats.
#[inline(always)]
unsafe fn backward_dx_body<V: F32x, const RELU: bool>(x: &[f32], dy: &[f32], k: [&[f32]; 6], c: usize, dx: &mut [f32]) {
    let rows = x.len() / c;
    for window in row_windows(rows) {
        let mut pass = DxPass::<RELU> { x, dy, k, c, rows: window, dx: &mut *dx };
        // SAFETY: forwarded.
        unsafe { for_each_window::<V>(c, &mut pass) }
    }
}

/// [`backward_dx_body`]'s operands over rows `r0..r1`.
struct DxPass<'a, const RELU: bool> {
    x: &'a [f32],
    dy: &'a [f32],
    k: [&'a [f32]; 6],
    c: usize,
    rows: (usize, usize),
    dx: &'a mut [f32],
}

impl<V: F32x, const RELU: bool> ChannelWindows<V> for DxPass<'_, RELU> {
    /// [`backward_dx_body`] for the `W` vectors of channels from vector `j0` over the rows,
    /// with their constants in registers.
    ///
    /// # Safety
    /// As [`backward_dx_body`] and [`ChannelWindows::window`].
    #[inline(always)]
    unsafe fn window<const W: usize>(&mut self, j0: usize) {
        let Self { x, dy, k, c, rows: (r0, r1), .. } = *self;
        let dx = &mut *self.dx;
        let reads = if RELU { 6 } else { 4 };
        // A loop, not `array::from_fn`: a closure would not inherit the caller's target
        // features. SAFETY: the constants read have c floats; registers otherwise.
        let kv = unsafe {
            let mut kv = [[V::zero(); 6]; W];
            for (v, kvv) in kv.iter_mut().enumerate() {
                for (slot, ki) in kvv.iter_mut().zip(k).take(reads) {
                    *slot = load_at::<V>(ki.as_ptr(), c, 0, j0 + v);
                }
            }
            kv
        };
        for r in r0..r1 {
            for (v, &[mean, b, d, g, s, t]) in kv.iter().enumerate() {
                // SAFETY: row r has c floats in x, dy and dx.
                unsafe {
                    let xv = load_at::<V>(x.as_ptr().add(r * c), c, 0, j0 + v);
                    let dv = load_at::<V>(dy.as_ptr().add(r * c), c, 0, j0 + v);
                    let dv = if RELU { relu_masked(xv, dv, s, t) } else { dv };
                    let out = g.fma(dv, xv.sub(mean).fma(b, d));
                    store_at(out, dx.as_mut_ptr().add(r * c), c, 0, j0 + v);
                }
            }
        }
    }
}

simd_dispatch! {
    /// [`affine_body`] on `isa`.
    pub(super) unsafe fn affine<const RELU: bool>(x: &[f32], a: &[f32], b: &[f32], c: usize, y: &mut [f32]) => affine_body
}

simd_dispatch! {
    /// [`add_affine_body`] on `isa`.
    pub(super) unsafe fn add_affine<const RELU: bool>(terms: &[super::AddTerm<'_>], at: usize, c: usize, y: &mut [f32])
        => add_affine_body
}

simd_dispatch! {
    /// [`backward_dx_body`] on `isa`.
    pub(super) unsafe fn backward_dx<const RELU: bool>(x: &[f32], dy: &[f32], k: [&[f32]; 6], c: usize, dx: &mut [f32])
        => backward_dx_body
}

//! Batch normalization's sums over one block of rows (the moments, the backward's two
//! sums), vectorised along the channels over [`F32x`], and the tail loads and the ReLU mask
//! that the elementwise passes (`rows.rs`) share with them.
//!
//! Sums: each channel is summed in f32 over a group of [`GROUP`] consecutive rows, in row
//! order within each of [`SETS`] interleaved chains (rows `r ≡ i mod SETS` in chain `i`, so
//! that the chains' additions overlap instead of waiting on one another's latency) and
//! compensated (Kahan: the running sum and its rounding error, which together carry the sum
//! to about twice f32's precision). Each row's terms join the compensated totals, except
//! the moments' squares: a chain adds [`RUN`] rows of them plainly and then that run's sum
//! (one addition per row instead of a Kahan step's four; the squares are positive, so a
//! run's roundings stay a few ulps of the sum). Each group's chains join the block's f64
//! partial sums in chain order. No FMA anywhere in them, so every ISA gives the same bits;
//! and nothing depends on the thread count: blocks are fixed by row index and added in
//! block order by the caller.

use crate::arch::simd::{ld, simd_dispatch, st, F32x};

/// Rows summed in f32 before a group's sums join the f64 total. Kahan's error bound does
/// not grow with the count, and each group ends in scalar f64 additions (per lane, sum and
/// chain), which a short group would spend most of its time in.
const GROUP: usize = 256;
/// Interleaved chains per sum, so that consecutive rows' additions do not wait on one
/// another's latency.
const SETS: usize = 2;
/// Rows of squares a chain adds plainly before the run's sum joins its compensated total:
/// eight keeps a run's rounding within a few ulps of the run's (positive) sum and the
/// Kahan step's four additions at half an addition per row (the moments' pass was
/// compute-bound on them: 10 vector operations per row and vector of channels, now 7).
const RUN: usize = 8;

/// Loads the `k`-th vector of the window starting at channel `w0`: whole or the tail.
///
/// # Safety
/// `p + w0 + k LANES` has `min(LANES, c - w0 - k LANES)` readable floats.
#[inline(always)]
pub(super) unsafe fn load_at<V: F32x>(p: *const f32, c: usize, w0: usize, k: usize) -> V {
    let at = w0 + k * V::LANES;
    // SAFETY: the caller's contract.
    unsafe { ld(p.add(at), (c - at).min(V::LANES)) }
}

/// Stores the `k`-th vector of the window, whole or the tail.
///
/// # Safety
/// As [`load_at`], writable.
#[inline(always)]
pub(super) unsafe fn store_at<V: F32x>(v: V, p: *mut f32, c: usize, w0: usize, k: usize) {
    let at = w0 + k * V::LANES;
    // SAFETY: the caller's contract.
    unsafe { st(v, p.add(at), (c - at).min(V::LANES)) }
}

/// What a sum pass adds up per element: the moments' shifted sums.
const MOMENTS: usize = 1;
/// The backward pass of batch normalization.
const BACKWARD: usize = 2;
/// The backward pass of batch normalization followed by a ReLU.
const BACKWARD_RELU: usize = 3;

/// `dy` where the forward's `x s + t` was positive, else 0: the gradient a ReLU after the
/// affine map passed (`s`, `t`: the map's vectors for these channels). `x s + t` is
/// computed as `rows.rs`'s `affine_body` computes it (multiply, then add; no FMA), so the
/// mask is exactly the forward's `y > 0`.
///
/// # Safety
/// The ISA of `V` is enabled.
#[inline(always)]
pub(super) unsafe fn relu_masked<V: F32x>(xv: V, dv: V, s: V, t: V) -> V {
    // SAFETY: arithmetic only.
    unsafe { xv.mul(s).add(t).select_gt(V::zero(), dv, V::zero()) }
}

/// The constants pass `KIND` reads for the vector of channels at `at`, as vectors: `[mean
/// or shift, inv, s, t]` (each `[c]` in `k`); those the pass does not read are zero.
///
/// # Safety
/// The constants the pass reads have `c` floats; the ISA of `V` is enabled.
#[inline(always)]
unsafe fn term_constants<V: F32x, const KIND: usize>(at: usize, k: [&[f32]; 4], c: usize) -> [V; 4] {
    let reads = match KIND {
        MOMENTS => 1,
        BACKWARD => 2,
        _ => 4,
    };
    // A loop, not `array::from_fn`: a closure would not inherit the caller's target
    // features, and its intrinsics would become calls.
    // SAFETY: the caller's contract for the first `reads` constants; registers otherwise.
    unsafe {
        let mut kv = [V::zero(); 4];
        for (v, ki) in kv.iter_mut().zip(k).take(reads) {
            *v = load_at::<V>(ki.as_ptr(), c, at, 0);
        }
        kv
    }
}

/// The terms of pass `KIND` for one vector of channels: `[x - shift, (x - shift)²]`, or
/// `[dy, dy x̂]` with `x̂ = (x - mean) inv` (`dy` masked by the ReLU for `BACKWARD_RELU`);
/// `kv` from [`term_constants`].
///
/// # Safety
/// The ISA of `V` is enabled.
#[inline(always)]
unsafe fn terms<V: F32x, const KIND: usize>(xv: V, dv: V, kv: [V; 4]) -> [V; 2] {
    let [mean, inv, s, t] = kv;
    // SAFETY: arithmetic only.
    unsafe {
        match KIND {
            MOMENTS => {
                let d = xv.sub(mean);
                [d, d.mul(d)]
            }
            _ => {
                let dv = if KIND == BACKWARD_RELU { relu_masked(xv, dv, s, t) } else { dv };
                let xh = xv.sub(mean).mul(inv);
                [dv, dv.mul(xh)]
            }
        }
    }
}

/// `[a, e] += t`, compensated (Kahan): `e` holds what the last additions to `a` rounded
/// away.
///
/// # Safety
/// The ISA of `V` is enabled.
#[inline(always)]
unsafe fn kahan_add<V: F32x>(acc: &mut [V; 2], t: V) {
    let [a, e] = *acc;
    // SAFETY: arithmetic only.
    unsafe {
        let y = t.sub(e);
        let sum = a.add(y);
        *acc = [sum, sum.sub(a).sub(y)];
    }
}

/// A pass over a block of rows that goes a window of `W` vectors of channels at a time
/// (`W` a constant, so that the window's sums or constants stay in registers).
pub(super) trait ChannelWindows<V: F32x> {
    /// The pass over the `W` vectors of channels from vector `j0`.
    ///
    /// # Safety
    /// The pass's own contract holds; vectors `j0..j0 + W` hold channels, and the last is
    /// partial only when `W` is 1.
    unsafe fn window<const W: usize>(&mut self, j0: usize);
}

/// Runs `pass` over `c` channels: windows of two whole vectors (so that two vectors'
/// dependency chains overlap), then one vector at a time, the last one partial. Two on
/// every ISA: on AVX2's 16 registers the sums' window spills a few of its constants, and
/// still the moments ran in half the time, and the backward pass at 32 channels in two
/// thirds of it (Zen 3, BENCHMARKS.md session 31): one vector's two Kahan chains left the
/// adders waiting on their latency.
///
/// # Safety
/// `pass`'s contract holds for every vector of `c` channels.
#[inline(always)]
pub(super) unsafe fn for_each_window<V: F32x>(c: usize, pass: &mut impl ChannelWindows<V>) {
    let chunks = c.div_ceil(V::LANES);
    let mut j = 0;
    // SAFETY: forwarded; every window's vectors are below `chunks`, and a window of two is
    // of whole vectors.
    unsafe {
        while (j + 2) * V::LANES <= c {
            pass.window::<2>(j);
            j += 2;
        }
        while j < chunks {
            pass.window::<1>(j);
            j += 1;
        }
    }
}

/// `out[s c + j] += Σ_rows terms[s][j]` over the `[rows, c]` block `x` (and `dy` beside it
/// for the backward passes): two sums per channel (`out` `[2, c]`). A window of vectors of
/// channels at a time down the block's rows (the block stays in cache for the next), so
/// the sums and their compensations live in registers (on AVX2, most of them): two
/// vectors, so that two vectors' chains overlap (each Kahan step is four dependent
/// additions; two chains alone leave the vector adders waiting on their latency). Zen 4
/// gained 5-10% (BENCHMARKS.md, session 26), Zen 3's AVX2 up to 2x (session 31). Each
/// channel's sum is the same whichever vectors it is summed beside.
struct BlockSums<'a, const KIND: usize> {
    x: &'a [f32],
    dy: &'a [f32],
    k4: [&'a [f32]; 4],
    c: usize,
    out: &'a mut [f64],
}

impl<V: F32x, const KIND: usize> ChannelWindows<V> for BlockSums<'_, KIND> {
    /// The sums of the `W` vectors of channels from vector `j0`: each channel summed down
    /// the rows in chains of interleaved rows, groups and runs as the module describes.
    /// Two vectors are whole ones, loaded without the tail's test: a branch per row and
    /// vector in the loop made LLVM keep the two vectors' chains on the stack.
    ///
    /// # Safety
    /// As [`ChannelWindows::window`]; the ISA of `V` is enabled, `x` (and `dy`) are whole
    /// rows of `c`, and the constants the pass reads have `c` floats.
    #[inline(always)]
    unsafe fn window<const CV: usize>(&mut self, k0: usize) {
        let (x, dy, k4, c) = (self.x, self.dy, self.k4, self.c);
        let out = &mut *self.out;
        let backward = KIND == BACKWARD || KIND == BACKWARD_RELU;
        let rows = x.len() / c;
        // SAFETY: registers, then the constants the pass reads, which have `c` floats.
        let kv = unsafe {
            let mut kv = [[V::zero(); 4]; CV];
            for (v, kvv) in kv.iter_mut().enumerate() {
                *kvv = term_constants::<V, KIND>((k0 + v) * V::LANES, k4, c);
            }
            kv
        };
        for g in (0..rows).step_by(GROUP) {
            // Per vector and chain: [sum, compensation] of each of the two terms, and the
            // plain term's sum over the current run. Indexed by constants only (the loops
            // below over vectors and chains have constant trip counts), so they stay in
            // registers.
            // SAFETY: registers only.
            let mut acc = unsafe { [[[[V::zero(); 2]; 2]; CV]; SETS] };
            let end = (g + GROUP).min(rows);
            // Only the moments' squares (the second term) add up in plain runs. They are all
            // positive, so a run's roundings are a few ulps of the result; the other terms
            // (`x - K`, `dy`, `dy x̂`) cancel, and a run's roundings would be ulps of their
            // magnitudes, many of the result's (the backward's sums wait on memory anyway).
            let squares_in_runs = KIND == MOMENTS;
            let run_rows = if squares_in_runs { RUN } else { 1 };
            for run0 in (g..end).step_by(SETS * run_rows) {
                // SAFETY: registers only.
                let mut runs = unsafe { [[V::zero(); CV]; SETS] };
                for r0 in (run0..(run0 + SETS * run_rows).min(end)).step_by(SETS) {
                    for (i, (chains, vruns)) in acc.iter_mut().zip(runs.iter_mut()).enumerate() {
                        let r = r0 + i;
                        if r >= end {
                            break;
                        }
                        for (v, (chain, run)) in chains.iter_mut().zip(vruns.iter_mut()).enumerate() {
                            // SAFETY: row r has c floats in x (and dy for the backward pass);
                            // registers otherwise.
                            unsafe {
                                let (xv, dv) = if CV > 1 {
                                    let at = r * c + (k0 + v) * V::LANES;
                                    (
                                        V::load(x.as_ptr().add(at)),
                                        if backward { V::load(dy.as_ptr().add(at)) } else { V::zero() },
                                    )
                                } else {
                                    let xv = load_at::<V>(x.as_ptr().add(r * c), c, 0, k0 + v);
                                    (xv, if backward { load_at::<V>(dy.as_ptr().add(r * c), c, 0, k0 + v) } else { xv })
                                };
                                let [t0, t1] = terms::<V, KIND>(xv, dv, kv[v]);
                                kahan_add(&mut chain[0], t0);
                                if squares_in_runs {
                                    *run = run.add(t1);
                                } else {
                                    kahan_add(&mut chain[1], t1);
                                }
                            }
                        }
                    }
                }
                if squares_in_runs {
                    for (chains, vruns) in acc.iter_mut().zip(runs.iter()) {
                        for (chain, &run) in chains.iter_mut().zip(vruns) {
                            // SAFETY: registers only.
                            unsafe { kahan_add(&mut chain[1], run) };
                        }
                    }
                }
            }
            // Each vector's chains join `out` in chain order.
            for v in 0..CV {
                let at = (k0 + v) * V::LANES;
                let n = (c - at).min(V::LANES);
                for chain in acc.iter().map(|chains| &chains[v]) {
                    for (s, &[a, e]) in chain.iter().enumerate() {
                        let (mut sb, mut eb) = ([0f32; 16], [0f32; 16]);
                        // SAFETY: the buffers hold LANES <= 16 floats.
                        unsafe {
                            a.store(sb.as_mut_ptr());
                            e.store(eb.as_mut_ptr());
                        }
                        for (j, o) in out[s * c + at..s * c + at + n].iter_mut().enumerate() {
                            *o += f64::from(sb[j]) - f64::from(eb[j]);
                        }
                    }
                }
            }
        }
    }
}

/// `out[j] += Σ (x[r][j] - shift[j])`, `out[c + j] += Σ (x[r][j] - shift[j])²` (`out`
/// `[2, c]`).
///
/// # Safety
/// The ISA of `V` is enabled; `x` is whole rows of `c`; `shift` has `c` floats.
#[inline(always)]
unsafe fn moments_body<V: F32x>(x: &[f32], shift: &[f32], c: usize, out: &mut [f64]) {
    // SAFETY: forwarded; shift has c floats.
    unsafe { for_each_window::<V>(c, &mut BlockSums::<MOMENTS> { x, dy: x, k4: [shift, &[], &[], &[]], c, out }) }
}

/// `out[j] += Σ dy`, `out[c + j] += Σ dy x̂` with `x̂ = (x - mean) inv`; with `RELU`, `dy`
/// only where `x s + t > 0` (`k`: `[mean, inv, s, t]`; `s`, `t` read only with `RELU`).
///
/// # Safety
/// As [`moments_body`]; `dy` is as long as `x`, the constants read have `c` floats.
#[inline(always)]
unsafe fn backward_sums_body<V: F32x, const RELU: bool>(
    x: &[f32],
    dy: &[f32],
    k: [&[f32]; 4],
    c: usize,
    out: &mut [f64],
) {
    // SAFETY: forwarded.
    unsafe {
        if RELU {
            for_each_window::<V>(c, &mut BlockSums::<BACKWARD_RELU> { x, dy, k4: k, c, out })
        } else {
            for_each_window::<V>(c, &mut BlockSums::<BACKWARD> { x, dy, k4: k, c, out })
        }
    }
}

simd_dispatch! {
    /// [`moments_body`] on `isa`.
    pub(super) unsafe fn moments(x: &[f32], shift: &[f32], c: usize, out: &mut [f64]) => moments_body
}

simd_dispatch! {
    /// [`backward_sums_body`] on `isa`.
    pub(super) unsafe fn backward_sums<const RELU: bool>(x: &[f32], dy: &[f32], k: [&[f32]; 4], c: usize, out: &mut [f64])
        => backward_sums_body
}

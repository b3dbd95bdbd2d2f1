//! Elementwise sums: Keras's `Add` (with a fused ReLU) and the accumulation of gradients,
//! each in a fixed order.

use super::check_same;
use crate::arch::simd::{ld, st};
use crate::error::{Error, Result};

/// Floats per task of the parallel elementwise passes (fixed: the split never depends on
/// the thread count, though these passes' results do not depend on the split anyway).
const ADD_CHUNK: usize = 16 * 1024;

/// Floats of `y` that [`accumulate_in_order`] keeps in L1 (8 KiB) while it adds every `x`.
const L1_WINDOW: usize = 2048;

/// `y = x₀ + x₁ + …` elementwise (added in that order), then `max(y, 0)` with `relu` (0
/// where the sum is NaN or -0, as the SIMD max and every fused ReLU here): one pass over
/// memory, in chunks across the current rayon pool, vectorised on `ctx`'s ISA (plain
/// additions: the same bits on every ISA and thread count). Keras's `Add`, and `Add`
/// followed by a ReLU fused.
pub fn add_forward(ctx: &crate::Ctx, xs: &[&[f32]], relu: bool, y: &mut [f32]) -> Result<()> {
    use rayon::prelude::*;
    if xs.is_empty() {
        return Err(Error::InvalidArgument("add_forward needs at least one input".into()));
    }
    for x in xs {
        check_same("add input length vs output length", y.len(), x.len())?;
    }
    let isa = ctx.isa.check()?;
    y.par_chunks_mut(ADD_CHUNK).enumerate().for_each(|(k, yc)| {
        let at = k * ADD_CHUNK;
        // SAFETY: `isa` was checked; every x is as long as y (checked), so it holds the
        // chunk's elements from `at`; `xs` is not empty (checked).
        unsafe {
            if relu {
                add_chunk::<true>(isa, xs, at, yc)
            } else {
                add_chunk::<false>(isa, xs, at, yc)
            }
        }
    });
    Ok(())
}

/// The inputs' `lanes` elements from `i` (whole vector or the tail), added in input order;
/// then `max(·, 0)` with `RELU`.
///
/// # Safety
/// The ISA of `V` is enabled; `lanes <= V::LANES` and every input holds `i + lanes` floats.
#[inline(always)]
unsafe fn sum_at<V: crate::arch::simd::F32x, const RELU: bool>(xs: &[&[f32]], i: usize, lanes: usize) -> V {
    // SAFETY: the contract: every input holds `i + lanes` floats.
    unsafe {
        let mut acc: V = ld(xs[0].as_ptr().add(i), lanes);
        for x in &xs[1..] {
            acc = acc.add(ld(x.as_ptr().add(i), lanes));
        }
        if RELU {
            acc.max(V::zero())
        } else {
            acc
        }
    }
}

/// [`add_forward`] on the chunk `y`: the inputs' elements from `at` on, on vectors of `V`
/// (the tail in a partial one).
///
/// # Safety
/// The ISA of `V` is enabled; `xs` is not empty and every input holds `at + y.len()` floats.
#[inline(always)]
unsafe fn add_body<V: crate::arch::simd::F32x, const RELU: bool>(xs: &[&[f32]], at: usize, y: &mut [f32]) {
    let full = y.len() / V::LANES * V::LANES;
    // SAFETY: every vector read is below `at + y.len()` in every input (the contract), and
    // every one stored below `y.len()`.
    unsafe {
        for i in (0..full).step_by(V::LANES) {
            sum_at::<V, RELU>(xs, at + i, V::LANES).store(y.as_mut_ptr().add(i));
        }
        if full < y.len() {
            let tail = y.len() - full;
            st(sum_at::<V, RELU>(xs, at + full, tail), y.as_mut_ptr().add(full), tail);
        }
    }
}

crate::arch::simd::simd_dispatch! {
    /// [`add_body`] on `isa`.
    unsafe fn add_chunk<const RELU: bool>(xs: &[&[f32]], at: usize, y: &mut [f32]) => add_body
}

/// `y += x` elementwise, in chunks across the current rayon pool, vectorised on `ctx`'s ISA
/// (plain additions: the same bits on every ISA and thread count). Gradients of a value
/// with several consumers are summed with it, in the consumers' fixed order.
pub fn accumulate(ctx: &crate::Ctx, y: &mut [f32], x: &[f32]) -> Result<()> {
    accumulate_in_order(ctx, y, &[x])
}

/// `y += xs[0]; y += xs[1]; ...` elementwise, in that order (the bits of [`accumulate`]
/// called once per `x`), in one pass over `y`: each chunk of `y` takes every `x` while it
/// is in L1, instead of `y` going through memory once per `x`. The shards' gradient arenas
/// are summed so. In chunks across the current rayon pool, vectorised on `ctx`'s ISA;
/// errors when an `x` is not as long as `y`.
pub fn accumulate_in_order(ctx: &crate::Ctx, y: &mut [f32], xs: &[&[f32]]) -> Result<()> {
    use rayon::prelude::*;
    for x in xs {
        check_same("accumulated length vs accumulator length", y.len(), x.len())?;
    }
    let isa = ctx.isa.check()?;
    y.par_chunks_mut(ADD_CHUNK).enumerate().for_each(|(k, yc)| {
        for (j, yw) in yc.chunks_mut(L1_WINDOW).enumerate() {
            let at = k * ADD_CHUNK + j * L1_WINDOW;
            for x in xs {
                // SAFETY: `isa` was checked; the window of x has the window's length.
                unsafe { accumulate_chunk(isa, yw, &x[at..at + yw.len()]) }
            }
        }
    });
    Ok(())
}

/// `y += x` elementwise on the calling thread, vectorised on `isa` (the same bits as
/// [`accumulate`]): for kernels that sum partial results of their own, where a plain loop
/// is compiled for the baseline ISA (four lanes on x86-64) and showed up in profiles.
///
/// # Panics
/// If the lengths differ (callers pass slices of one partial's length), or `isa` is not
/// available (callers pass a checked one).
pub(crate) fn add_assign(isa: crate::arch::Isa, y: &mut [f32], x: &[f32]) {
    assert!(y.len() == x.len() && isa.is_available(), "add_assign: lengths differ or the ISA is missing");
    // SAFETY: `isa` is available (asserted); the slices have one length.
    unsafe { accumulate_chunk(isa, y, x) }
}

/// `y += x` on vectors of `V`, the tail in scalars.
///
/// # Safety
/// The ISA of `V` is enabled; `x` is as long as `y`.
#[inline(always)]
unsafe fn accumulate_body<V: crate::arch::simd::F32x>(y: &mut [f32], x: &[f32]) {
    let full = y.len() / V::LANES * V::LANES;
    // SAFETY: every vector is below `full <= len` of both slices.
    unsafe {
        for i in (0..full).step_by(V::LANES) {
            V::load(y.as_ptr().add(i)).add(V::load(x.as_ptr().add(i))).store(y.as_mut_ptr().add(i));
        }
    }
    y[full..].iter_mut().zip(&x[full..]).for_each(|(a, b)| *a += b);
}

crate::arch::simd::simd_dispatch! {
    /// [`accumulate_body`] on `isa`.
    unsafe fn accumulate_chunk(y: &mut [f32], x: &[f32]) => accumulate_body
}

//! The bias: added to every row, and its gradient summed over the rows in a fixed order.

use super::{check_rows, check_same};
use crate::error::Result;

/// `x[r][c] += bias[c]` for every row `r` (channels = `bias.len()`).
pub fn bias_add(x: &mut [f32], bias: &[f32]) -> Result<()> {
    check_rows("activation length vs a multiple of bias length", x.len(), bias.len())?;
    for row in x.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
    }
    Ok(())
}

/// Rows per block of [`bias_grad`]: a block's column sums are one fixed-order pass.
const BIAS_GRAD_BLOCK_FLOATS: usize = 64 * 1024;

/// `db[c] = Σ_r dy[r][c]`: the bias gradient. Rows are summed in fixed blocks (in order
/// within a block), the block sums then in block order, so the result never depends on
/// the number of threads.
pub fn bias_grad(dy: &[f32], channels: usize, db: &mut [f32]) -> Result<()> {
    let rows = check_rows("gradient length vs a multiple of channels", dy.len(), channels)?;
    check_same("bias gradient length vs channels", channels, db.len())?;
    let isa = crate::arch::default_isa();
    let block = (BIAS_GRAD_BLOCK_FLOATS / channels).max(1) * channels;
    let blocks = rows.div_ceil(block / channels);
    crate::scratch::with_scratch(crate::scratch::Slot::Aux, blocks * channels, |partial| {
        use rayon::prelude::*;
        partial.par_chunks_mut(channels).zip(dy.par_chunks(block)).for_each(|(out, rows)| {
            // SAFETY: `isa` is the checked default; rows is whole rows of `channels`, out holds
            // `channels` floats.
            unsafe { column_sums(isa, rows, channels, out) }
        });
        db.fill(0.0);
        for part in partial.chunks_exact(channels) {
            db.iter_mut().zip(part).for_each(|(d, p)| *d += p);
        }
    });
    Ok(())
}

/// `out[c0 + ..] = Σ_r x[r][c0 + ..]` for `NV` full vectors of columns from `c0`; even and
/// odd rows go to separate accumulators (two independent add chains), added at the end.
///
/// # Safety
/// `c0 + NV * LANES <= channels`; the rest as [`column_sums_body`].
#[inline(always)]
unsafe fn column_block<V: crate::arch::simd::F32x, const NV: usize>(
    x: &[f32],
    channels: usize,
    c0: usize,
    out: &mut [f32],
) {
    // SAFETY: every load is within one row of x at columns < c0 + NV*LANES <= channels.
    unsafe {
        let (mut even, mut odd) = ([V::zero(); NV], [V::zero(); NV]);
        let pairs = x.chunks_exact(2 * channels);
        let last = pairs.remainder();
        for pair in pairs {
            let (p, q) = (pair.as_ptr().add(c0), pair.as_ptr().add(channels + c0));
            for v in 0..NV {
                even[v] = even[v].add(V::load(p.add(v * V::LANES)));
                odd[v] = odd[v].add(V::load(q.add(v * V::LANES)));
            }
        }
        if !last.is_empty() {
            for (v, e) in even.iter_mut().enumerate() {
                *e = e.add(V::load(last.as_ptr().add(c0 + v * V::LANES)));
            }
        }
        for v in 0..NV {
            even[v].add(odd[v]).store(out.as_mut_ptr().add(c0 + v * V::LANES));
        }
    }
}

/// `out[c] = Σ_r x[r][c]` over the rows of `x` in a fixed order, blocks of columns held in
/// registers across all rows.
///
/// # Safety
/// `x.len()` is a multiple of `channels`, `out` holds `channels` floats; the ISA of `V` is
/// enabled.
#[inline(always)]
unsafe fn column_sums_body<V: crate::arch::simd::F32x>(x: &[f32], channels: usize, out: &mut [f32]) {
    assert!(out.len() >= channels && x.len().is_multiple_of(channels));
    let full = channels / V::LANES * V::LANES;
    let mut c0 = 0;
    // SAFETY: each block stays below `full <= channels`; the tail is loaded and stored partially.
    unsafe {
        while c0 + 4 * V::LANES <= full {
            column_block::<V, 4>(x, channels, c0, out);
            c0 += 4 * V::LANES;
        }
        while c0 + V::LANES <= full {
            column_block::<V, 1>(x, channels, c0, out);
            c0 += V::LANES;
        }
        if c0 < channels {
            let w = channels - c0;
            let mut acc = V::zero();
            for row in x.chunks_exact(channels) {
                acc = acc.add(V::load_partial(row.as_ptr().add(c0), w));
            }
            acc.store_partial(out.as_mut_ptr().add(c0), w);
        }
    }
}

crate::arch::simd::simd_dispatch! {
    /// [`column_sums_body`] on `isa`.
    unsafe fn column_sums(x: &[f32], channels: usize, out: &mut [f32]) => column_sums_body
}

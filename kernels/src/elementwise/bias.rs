//! The bias: added to every row, and its gradient summed over the rows in a fixed order.

use super::{check_rows, check_same};
use crate::arch::simd::ld;
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

/// Row `r` of a block goes to add chain `r % CHAINS`; the chains are combined as
/// `(c0 + c1) + (c2 + c3)`. Four chains per column keep two vector adds a cycle in flight
/// (an add's latency is four cycles), where two chains left the pass bound by latency
/// (cifar_conv1's bias gradient took 18% of its backward-filter). The order is the same
/// for every column, so every ISA and every column width gives the same sums.
const CHAINS: usize = 4;

/// `out[c0 + ..] = Σ_r x[r][c0 + ..]` for the `w` columns from `c0` in `NV` vectors, in
/// the order of [`CHAINS`]; `PARTIAL` where `w < NV * LANES` (vectors past `w` columns
/// load and store only their first columns).
///
/// # Safety
/// `c0 + w <= channels` and `w <= NV * LANES` (`w == NV * LANES` unless `PARTIAL`); the
/// rest as [`column_sums_body`].
#[inline(always)]
unsafe fn column_block<V: crate::arch::simd::F32x, const NV: usize, const PARTIAL: bool>(
    x: &[f32],
    channels: usize,
    c0: usize,
    w: usize,
    out: &mut [f32],
) {
    // SAFETY: every load is within one row of x at columns c0..c0 + w <= channels (a
    // vector past `w` columns loads and stores `cols` of them).
    unsafe {
        let mut acc = [[V::zero(); NV]; CHAINS];
        let quads = x.chunks_exact(CHAINS * channels);
        let rest = quads.remainder();
        for quad in quads {
            for (k, chain) in acc.iter_mut().enumerate() {
                let row = quad.as_ptr().add(k * channels + c0);
                for (v, a) in chain.iter_mut().enumerate() {
                    *a = a.add(ld::<V>(row.add(v * V::LANES), cols::<V, PARTIAL>(w, v)));
                }
            }
        }
        for (row, chain) in rest.chunks_exact(channels).zip(acc.iter_mut()) {
            for (v, a) in chain.iter_mut().enumerate() {
                *a = a.add(ld::<V>(row.as_ptr().add(c0 + v * V::LANES), cols::<V, PARTIAL>(w, v)));
            }
        }
        let [c0s, c1s, c2s, c3s] = acc;
        for v in 0..NV {
            let sum = c0s[v].add(c1s[v]).add(c2s[v].add(c3s[v]));
            let (at, n) = (out.as_mut_ptr().add(c0 + v * V::LANES), cols::<V, PARTIAL>(w, v));
            if n == V::LANES {
                sum.store(at);
            } else {
                sum.store_partial(at, n);
            }
        }
    }
}

/// Columns of vector `v` of a block of `w` columns: every vector's `LANES` in a full block
/// (known at compile time), the tail's own count in a partial one.
#[inline(always)]
fn cols<V: crate::arch::simd::F32x, const PARTIAL: bool>(w: usize, v: usize) -> usize {
    if PARTIAL {
        w.saturating_sub(v * V::LANES).min(V::LANES)
    } else {
        V::LANES
    }
}

/// `out[c] = Σ_r x[r][c]` over the rows of `x` in a fixed order ([`CHAINS`]), two vectors
/// of columns held in registers across all rows (eight add chains).
///
/// # Safety
/// `x.len()` is a multiple of `channels`, `out` holds `channels` floats; the ISA of `V` is
/// enabled.
#[inline(always)]
unsafe fn column_sums_body<V: crate::arch::simd::F32x>(x: &[f32], channels: usize, out: &mut [f32]) {
    assert!(out.len() >= channels && x.len().is_multiple_of(channels));
    let mut c0 = 0;
    // SAFETY: each block covers columns c0..c0 + w <= channels.
    unsafe {
        while c0 + 2 * V::LANES <= channels {
            column_block::<V, 2, false>(x, channels, c0, 2 * V::LANES, out);
            c0 += 2 * V::LANES;
        }
        if c0 < channels {
            let w = channels - c0;
            if w > V::LANES {
                column_block::<V, 2, true>(x, channels, c0, w, out);
            } else {
                column_block::<V, 1, true>(x, channels, c0, w, out);
            }
        }
    }
}

crate::arch::simd::simd_dispatch! {
    /// [`column_sums_body`] on `isa`.
    unsafe fn column_sums(x: &[f32], channels: usize, out: &mut [f32]) => column_sums_body
}

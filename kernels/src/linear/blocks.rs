//! How the dense kernels split the outputs into blocks of the widths their tiles are
//! instantiated for: as wide as the registers allow, narrower in the forward pass where
//! its rows would crowd one L1 set.

use crate::arch::simd::vector_registers;
use crate::arch::Isa;

/// Outputs kept in registers (with two samples) by each ISA's tiles.
pub(super) fn max_outputs(isa: Isa) -> usize {
    if vector_registers(isa) >= 32 {
        12
    } else {
        6
    }
}

/// The forward's outputs per block over rows of `inputs` floats: the widest the ISA's
/// registers hold ([`max_outputs`]) unless that would put more than [`ROWS_PER_SET`] of
/// the rows a block streams at once (its `J` weight rows and two input rows) into one L1
/// set. Rows whose byte stride is a multiple of 4 KiB all map to the same set of a 64-set
/// L1 (every x86 and Arm core the kernels target): at 1024 inputs twelve weight rows
/// evicted one another and the 64-output forward ran at 28-35% of the peak (AVX-512, Zen
/// 4), four at 59%. Each output's sum is the same in any block, so the width changes
/// only the speed.
pub(super) fn forward_block_width(isa: Isa, inputs: usize) -> usize {
    let stride = inputs * 4;
    // Rows per repetition of the set pattern: rows `period` apart share a set.
    let period = if stride.is_multiple_of(64) { 4096 / gcd(stride % 4096, 4096) } else { usize::MAX };
    let per_set = |rows: usize| rows.div_ceil(period);
    WIDTHS
        .into_iter()
        .filter(|&w| w <= max_outputs(isa))
        .find(|&w| per_set(w) + per_set(2) <= ROWS_PER_SET)
        .unwrap_or(1)
}

/// Rows a forward block may stream into one L1 set: 8-way L1s, less room for what else
/// lives there (the sums' spills, the stack).
const ROWS_PER_SET: usize = 6;

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The output widths the tiles are instantiated for.
pub(super) const WIDTHS: [usize; 8] = [12, 10, 8, 6, 4, 3, 2, 1];

/// Splits `0..outputs` into blocks of the instantiated widths (at most `max`), widest first:
/// 10 outputs are one block (one pass over the inputs), not 6 + 3 + 1.
pub(super) fn output_blocks(outputs: usize, max: usize) -> impl Iterator<Item = (usize, usize)> {
    let mut j = 0;
    std::iter::from_fn(move || {
        let left = outputs - j;
        let width = WIDTHS.into_iter().find(|&w| w <= max && w <= left)?;
        j += width;
        Some((j - width, width))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_blocks_narrow_only_where_rows_share_l1_sets() {
        // 4 KiB rows: all in one set; 2 KiB: two sets; 5408 and 1040 floats spread out.
        assert_eq!(forward_block_width(Isa::Avx512, 1024), 4);
        assert_eq!(forward_block_width(Isa::Avx2, 1024), 4);
        assert_eq!(forward_block_width(Isa::Avx512, 512), 10);
        assert_eq!(forward_block_width(Isa::Avx512, 1040), 12);
        assert_eq!(forward_block_width(Isa::Avx512, 5408), 12);
        assert_eq!(forward_block_width(Isa::Avx2, 1600), 6);
    }
}

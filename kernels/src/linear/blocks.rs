//! How the dense kernels split the outputs into blocks of the widths their tiles are
//! instantiated for: as wide as the registers allow, narrower in the forward pass where
//! its rows would crowd one L1 set.

use crate::arch::simd::vector_registers;
use crate::arch::Isa;

/// Outputs kept in registers with two samples by each ISA's tiles (the backward-weights tile,
/// and the forward's where it takes two samples).
pub(super) fn max_outputs(isa: Isa) -> usize {
    if vector_registers(isa) >= 32 {
        12
    } else {
        6
    }
}

/// How the forward (`forward.rs`) tiles a task: `samples` rows of `x` (read
/// `x_stride` floats apart) against blocks of at most `width` weight rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ForwardTile {
    pub samples: usize,
    pub width: usize,
    pub x_stride: usize,
}

/// The forward's tile over rows of `inputs` floats: four samples where the ISA has 32
/// registers (24 accumulators for six outputs: each weight vector loaded serves four
/// FMAs), else two with the widest block the registers hold ([`max_outputs`]); and no more
/// weight rows than leave at most [`ROWS_PER_SET`] of the rows a block streams at once in
/// one L1 set. Rows whose byte stride is a multiple of 4 KiB all map to the same set of a
/// 64-set L1 (every x86 and Arm core the kernels target): at 1024 inputs twelve weight rows
/// evicted one another and the 64-output forward ran at 28-35% of the peak (AVX-512, Zen
/// 4), four at 59%. The input rows, where their stride is a multiple of 1 KiB, are copied
/// one cache line further apart (`x_stride`), so that they spread over the sets and leave
/// the weight rows the room, where that widens the block. Each output's sum is the same in any tile, so the tile changes
/// only the speed.
pub(super) fn forward_tile(isa: Isa, inputs: usize) -> ForwardTile {
    let (samples, max) = if vector_registers(isa) >= 32 { (4, 6) } else { (2, max_outputs(isa)) };
    let width = |x_stride: usize| {
        WIDTHS
            .into_iter()
            .filter(|&w| w <= max)
            .find(|&w| rows_per_set(w, inputs * 4) + rows_per_set(samples, x_stride * 4) <= ROWS_PER_SET)
            .unwrap_or(1)
    };
    // The copy costs a pass over the inputs: only where it widens the tile.
    let padded = inputs + 16;
    let x_stride = if width(padded) > width(inputs) { padded } else { inputs };
    ForwardTile { samples, width: width(x_stride), x_stride }
}

/// The most of `rows` rows `stride` bytes apart that share one set of a 64-set L1 of
/// 64-byte lines.
fn rows_per_set(rows: usize, stride: usize) -> usize {
    // Rows `period` apart share a set.
    let period = if stride.is_multiple_of(64) { 4096 / gcd(stride % 4096, 4096) } else { usize::MAX };
    rows.div_ceil(period)
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
    fn forward_tiles_narrow_only_where_rows_share_l1_sets() {
        let tile = |isa, inputs| {
            let t = forward_tile(isa, inputs);
            (t.samples, t.width, t.x_stride)
        };
        // 4 KiB rows: all in one set (the inputs' copied a line apart); 2 KiB: two sets;
        // 5408 and 1040 floats spread out.
        assert_eq!(tile(Isa::Avx512, 1024), (4, 4, 1040));
        assert_eq!(tile(Isa::Avx2, 1024), (2, 4, 1024));
        assert_eq!(tile(Isa::Avx512, 512), (4, 6, 512));
        assert_eq!(tile(Isa::Avx512, 1040), (4, 6, 1040));
        assert_eq!(tile(Isa::Avx512, 5408), (4, 6, 5408));
        assert_eq!(tile(Isa::Avx2, 1600), (2, 6, 1600));
    }
}

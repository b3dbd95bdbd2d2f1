//! The deterministic choice behind [`ConvAlgo::Auto`]: rules on the shape, drawn from the
//! one-thread measurements in BENCHMARKS.md (AVX-512 on a Zen 4 core):
//!
//! - Winograd wins forward and backward-data wherever it applies and both channel counts
//!   are at least 8 (1.2-2.3x direct on the 3x3 benchmark shapes); with fewer channels its
//!   transforms cost more than the products they save (seed_conv1: 8x slower). F(4x4) wins
//!   or ties F(2x2) on every shape measured, even where its 4x4 tiles overhang the output
//!   by 30% (14x14 computed as 16x16: res14_256 8.6 vs 9.2 ms forward, 9.8 vs 10.3
//!   backward-data; resnet14_64 9.5 vs 13.0 and 9.3 vs 12.9; mnist_conv2 backward-data, 15x15
//!   as 16x16, 1.58 vs 1.58).
//! - Winograd also needs enough tiles per call to amortise its filter transform (done on every
//!   call): F(4x4) runs from 64 output tiles, F(2x2) from 32, and a pass with fewer runs
//!   direct. (The first rule, from 64 tiles for both, dated from when cifar_conv3's forward,
//!   8 images of 6x6x64 -> 4x4x64, ran F(4x4) at 47% of a Zen 4's peak against direct's
//!   94%. Winograd's per-call costs have shrunk since: on an Intel Xeon in session 41, one
//!   thread, that forward took 45 us in F(2x2) or F(4x4) against direct's 72-76 us with
//!   AVX-512, and 65 / 55 against 106 with AVX2; its 32 F(2x2) tiles now pass. Its
//!   backward-data, 32 F(4x4) tiles, keeps F(2x2): 61 against 60-64 us with AVX-512.)
//! - Backward-filter: Winograd F(4x4) wherever Winograd applies with at least 8 channels
//!   each way, whatever the overhang or tile count (its per-call transform is of the
//!   gradient, `α² x cin x cout` once, not of every tile): 1.3-1.9x direct on every such
//!   shape measured (cifar_conv3's 8 tiles: 77 vs 114 us; res14_256, 14x14 as 16x16: 13.3 vs
//!   17.7 ms; F(2x2) in between).
//! - Direct wins the other forward and backward-data passes (1x1, stride 2, one input
//!   channel) and the other backward-filter passes (the 1x1 ones by 0-28% over the plain
//!   GEMM).
//! - Stride-1 backward-data into one to four input channels with at least a vector of
//!   output channels runs direct, on its dot-product kernel for few outputs (`direct::narrow`):
//!   the seed's first layer 3.4x faster than before it and 2.8x im2col, cifar's (three
//!   input channels) 1.4x im2col, on a Zen 3 (BENCHMARKS.md, session 38).
//! - im2col wins the other backward-data passes with fewer than 8 input channels (direct's
//!   general tiles vectorise over them).

use super::direct::narrow_backward_data;
use super::{Conv2d, ConvAlgo, Pass};
use crate::arch::Isa;

/// Channel count from which Winograd's transforms pay for themselves.
const WINOGRAD_MIN_CHANNELS: usize = 8;

/// Output tiles (over the whole batch) from which F(4x4)'s per-call filter transform pays.
const WINOGRAD4X3_MIN_TILES: usize = 64;

/// The same for F(2x2): a filter transform of 16 positions instead of 36 and, per tile, a
/// quarter of F(4x4)'s outputs.
const WINOGRAD2X3_MIN_TILES: usize = 32;

/// The algorithm `Auto` runs (the rules above, measured with AVX-512; spot checks with AVX2
/// agree; not yet measured on NEON hardware).
pub(crate) fn choose(c: &Conv2d, pass: Pass, isa: Isa) -> ConvAlgo {
    let winograd =
        ConvAlgo::Winograd4x3.supports(c, pass) && c.cin >= WINOGRAD_MIN_CHANNELS && c.cout >= WINOGRAD_MIN_CHANNELS;
    // The output of the pass: forward writes ho x wo, backward-data h x w.
    let (oh, ow) = if pass == Pass::BackwardData { (c.h, c.w) } else { (c.ho, c.wo) };
    let tiles = |t: usize| c.n * oh.div_ceil(t) * ow.div_ceil(t);
    match pass {
        Pass::BackwardFilter if winograd => ConvAlgo::Winograd4x3,
        _ if winograd && tiles(4) >= WINOGRAD4X3_MIN_TILES => ConvAlgo::Winograd4x3,
        _ if winograd && tiles(2) >= WINOGRAD2X3_MIN_TILES => ConvAlgo::Winograd2x3,
        Pass::Forward => ConvAlgo::Direct,
        Pass::BackwardData if narrow_backward_data(isa, c) => ConvAlgo::Direct,
        Pass::BackwardData if c.cin < WINOGRAD_MIN_CHANNELS => ConvAlgo::Im2col,
        Pass::BackwardData => ConvAlgo::Direct,
        Pass::BackwardFilter => ConvAlgo::Direct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::Padding;

    /// The suite's 64-channel 6x6 layer at 8 images: its forward has 8 F(4x4)
    /// tiles and 32 F(2x2) tiles, its backward-data 32 and 72.
    #[test]
    fn few_tiles_pick_the_smaller_winograd_or_direct() {
        let conv = |n| Conv2d::simple([n, 6, 6, 64], [3, 3, 64, 64], Padding::Valid).unwrap();
        let part = conv(8);
        assert_eq!(choose(&part, Pass::Forward, Isa::Scalar), ConvAlgo::Winograd2x3);
        assert_eq!(choose(&part, Pass::BackwardData, Isa::Scalar), ConvAlgo::Winograd2x3);
        assert_eq!(choose(&part, Pass::BackwardFilter, Isa::Scalar), ConvAlgo::Winograd4x3);
        // Two images: 8 F(2x2) tiles forward, too few for either.
        assert_eq!(choose(&conv(2), Pass::Forward, Isa::Scalar), ConvAlgo::Direct);
        // Sixty-four images: 64 F(4x4) tiles.
        assert_eq!(choose(&conv(64), Pass::Forward, Isa::Scalar), ConvAlgo::Winograd4x3);
    }
}

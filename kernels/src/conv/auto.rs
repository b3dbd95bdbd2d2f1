//! The deterministic choice behind [`ConvAlgo::Auto`]: rules on the shape, drawn from the
//! one-thread measurements in BENCHMARKS.md (AVX-512 on a Zen 4 core unless said):
//!
//! - Winograd wins forward and backward-data wherever it applies and both channel counts
//!   are at least 8 (1.2-2.3x direct on the 3x3 benchmark shapes); with fewer channels its
//!   transforms cost more than the products they save (seed_conv1: 8x slower). On the
//!   larger shapes F(4x4) wins or ties F(2x2), even where its 4x4 tiles overhang the output
//!   by 30% (14x14 computed as 16x16: res14_256 8.6 vs 9.2 ms forward, 9.8 vs 10.3
//!   backward-data; resnet14_64 9.5 vs 13.0 and 9.3 vs 12.9; mnist_conv2 backward-data, 15x15
//!   as 16x16, 1.58 vs 1.58); on small outputs it can lose (the next rule).
//! - Between F(4x4) and F(2x2), and whether Winograd runs at all, by a cost in
//!   transformed positions: `α² x (tiles + 12)` for `α = m + 2`, the tiles those of the
//!   output the pass tiles (backward-data tiles `dy` or `dx`, whichever has fewer, as
//!   [`super::winograd`] does), and 12 tiles' worth for the filter's transform. The smaller
//!   cost wins, ties to F(2x2) (its transforms are cheaper per position); F(2x2) runs from 4
//!   tiles, and a pass with fewer runs direct. Measured on an Intel Xeon with AVX-512, one
//!   thread, 64 -> 64 channels unless said, direct / F(2x2) / F(4x4) in us with the filter
//!   transformed on each call (BENCHMARKS.md, session 60): a 4x4 output at 16 images 146 /
//!   83 / 65 (cifar_conv3's forward in its part, which the old rule, F(4x4) from 64 tiles,
//!   ran in F(2x2)); 6x6 outputs, where F(4x4)'s tiles overhang by 78%, at 16 images
//!   292 / 159 / 198 (the old rule took F(4x4)); 5x5, 16 images: 212 / 160 / 191; 7x7,
//!   16 images: 392 / 296 / 187; 2x2: 51 / 29 / 63; 6x6 -> 4x4 with 128 channels at 8
//!   images: 290 / 234 / 295 (F(4x4) ties F(2x2) only with its transform reused); and
//!   direct loses to F(2x2) down to one image of 4 tiles (15 / 15 / 31 us). The cost
//!   agrees with every one of these, and with the larger shapes below, where F(4x4) wins.
//!   (Earlier rules, from tile thresholds, dated from when Winograd transformed its filter
//!   on every call; a model's steps now reuse it per thread, `Ctx::weights_version`.)
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

/// Output tiles (over the whole batch) from which F(2x2) runs; fewer run direct.
const WINOGRAD_MIN_TILES: usize = 4;

/// The filter transform's cost in tiles' worth of transformed positions (see the notes).
const WINOGRAD_FILTER_TILES: usize = 12;

/// The algorithm `Auto` runs (the rules above, measured with AVX-512; spot checks with AVX2
/// agree; not yet measured on NEON hardware).
pub(crate) fn choose(c: &Conv2d, pass: Pass, isa: Isa) -> ConvAlgo {
    let winograd =
        ConvAlgo::Winograd4x3.supports(c, pass) && c.cin >= WINOGRAD_MIN_CHANNELS && c.cout >= WINOGRAD_MIN_CHANNELS;
    // The tiles of the pass: forward tiles its output, backward-data the smaller of `dy`
    // (its adjoint) and `dx` (the transposed problem), as `winograd::backward_data` picks.
    let tiles = |m: usize| {
        let over = |h: usize, w: usize| h.div_ceil(m) * w.div_ceil(m);
        let per_image = match pass {
            Pass::BackwardData => over(c.ho, c.wo).min(over(c.h, c.w)),
            _ => over(c.ho, c.wo),
        };
        c.n * per_image
    };
    let cost = |m: usize| (m + 2) * (m + 2) * (tiles(m) + WINOGRAD_FILTER_TILES);
    match pass {
        Pass::BackwardFilter if winograd => ConvAlgo::Winograd4x3,
        _ if winograd && tiles(2) >= WINOGRAD_MIN_TILES && cost(4) < cost(2) => ConvAlgo::Winograd4x3,
        _ if winograd && tiles(2) >= WINOGRAD_MIN_TILES => ConvAlgo::Winograd2x3,
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

    /// CIFAR's 64-channel layer, 6x6 -> 4x4 (one F(4x4) tile per image, four F(2x2)).
    #[test]
    fn a_whole_tile_output_takes_f4x4_from_sixteen_images() {
        let conv = |n| Conv2d::simple([n, 6, 6, 64], [3, 3, 64, 64], Padding::Valid).unwrap();
        let algo = |n, pass| choose(&conv(n), pass, Isa::Scalar);
        // 16 images: 36 x (16 + 12) = 1008 against 16 x (64 + 12) = 1216.
        assert_eq!(algo(16, Pass::Forward), ConvAlgo::Winograd4x3);
        // Backward-data tiles dy (4x4, one tile) rather than dx (6x6, four).
        assert_eq!(algo(16, Pass::BackwardData), ConvAlgo::Winograd4x3);
        // 8 images: 720 against 704, the filter transform's share larger.
        assert_eq!(algo(8, Pass::Forward), ConvAlgo::Winograd2x3);
        assert_eq!(algo(8, Pass::BackwardData), ConvAlgo::Winograd2x3);
        // One image: four F(2x2) tiles still run Winograd.
        assert_eq!(algo(1, Pass::Forward), ConvAlgo::Winograd2x3);
        // The backward-filter takes F(4x4) whatever the tiles.
        assert_eq!(algo(1, Pass::BackwardFilter), ConvAlgo::Winograd4x3);
    }

    /// Outputs that F(4x4)'s tiles overhang (6x6 as 8x8) tie on transformed positions and
    /// go to F(2x2); larger outputs go to F(4x4); fewer than 4 F(2x2) tiles run direct.
    #[test]
    fn overhanging_outputs_take_f2x2_and_tiny_ones_direct() {
        let conv = |n, hw, pad| Conv2d::simple([n, hw, hw, 64], [3, 3, 64, 64], pad).unwrap();
        let algo = |c: Conv2d, pass| choose(&c, pass, Isa::Scalar);
        assert_eq!(algo(conv(16, 8, Padding::Valid), Pass::Forward), ConvAlgo::Winograd2x3);
        // dx 8x8 and dy 6x6: four F(4x4) tiles each, nine F(2x2) over dy.
        assert_eq!(algo(conv(16, 8, Padding::Valid), Pass::BackwardData), ConvAlgo::Winograd2x3);
        assert_eq!(algo(conv(8, 10, Padding::Valid), Pass::Forward), ConvAlgo::Winograd4x3);
        assert_eq!(algo(conv(8, 28, Padding::Same), Pass::Forward), ConvAlgo::Winograd4x3);
        assert_eq!(algo(conv(8, 14, Padding::Same), Pass::BackwardData), ConvAlgo::Winograd4x3);
        // One image, 4x4 -> 2x2: one F(2x2) tile.
        assert_eq!(algo(conv(1, 4, Padding::Valid), Pass::Forward), ConvAlgo::Direct);
        assert_eq!(algo(conv(1, 4, Padding::Valid), Pass::BackwardData), ConvAlgo::Direct);
    }
}

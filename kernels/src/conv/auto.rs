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
//!   call): a pass with fewer than 64 output tiles in all runs direct (cifar_conv3, 8 images
//!   of 6x6x64 -> 4x4x64: F(4x4) 47% of the one-thread peak, direct 94%).
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

/// Output tiles (over the whole batch) from which Winograd's per-call filter transform pays.
const WINOGRAD_MIN_TILES: usize = 64;

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
        _ if winograd && tiles(4) >= WINOGRAD_MIN_TILES => ConvAlgo::Winograd4x3,
        _ if winograd && tiles(2) >= WINOGRAD_MIN_TILES => ConvAlgo::Winograd2x3,
        Pass::Forward => ConvAlgo::Direct,
        Pass::BackwardData if narrow_backward_data(isa, c) => ConvAlgo::Direct,
        Pass::BackwardData if c.cin < WINOGRAD_MIN_CHANNELS => ConvAlgo::Im2col,
        Pass::BackwardData => ConvAlgo::Direct,
        Pass::BackwardFilter => ConvAlgo::Direct,
    }
}

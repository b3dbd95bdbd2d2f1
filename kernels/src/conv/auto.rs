//! The deterministic choice behind [`ConvAlgo::Auto`]: rules on the shape, drawn from the
//! measurements in BENCHMARKS.md (one thread, this repository's benchmark shapes).

use super::{Conv2d, ConvAlgo, Pass};
use crate::arch::Isa;

/// The algorithm `Auto` runs.
pub(crate) fn choose(c: &Conv2d, pass: Pass, _isa: Isa) -> ConvAlgo {
    let winograd = ConvAlgo::Winograd4x3.supports(c, pass);
    match pass {
        Pass::Forward | Pass::BackwardData if winograd && c.cin >= 8 && c.cout >= 8 => ConvAlgo::Winograd4x3,
        _ => ConvAlgo::Direct,
    }
}

//! The one context argument every dispatching kernel takes first: which instruction set's
//! microkernels to run, and for convolutions which algorithm. `Ctx::new()` is the process
//! default (the best ISA this CPU has, or `EMBER_ISA`; `ConvAlgo::Auto`).

use crate::arch::{default_isa, Isa};
use crate::conv::ConvAlgo;

/// What a kernel call needs besides its operands. Plain data, cheap to copy; the ISA is
/// checked against the CPU on every call (an [`crate::Error::IsaUnavailable`], never a
/// crash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ctx {
    /// The instruction set.
    pub isa: Isa,
    /// The convolution algorithm (read by the convolution passes only).
    pub algo: ConvAlgo,
}

impl Default for Ctx {
    fn default() -> Self {
        Ctx { isa: default_isa(), algo: ConvAlgo::Auto }
    }
}

impl Ctx {
    /// The process default: [`default_isa`], `ConvAlgo::Auto`.
    pub fn new() -> Self {
        Self::default()
    }
    /// The default context on instruction set `isa`.
    pub fn for_isa(isa: Isa) -> Self {
        Ctx { isa, ..Self::default() }
    }
    /// This context with convolution algorithm `algo`.
    pub fn with_algo(self, algo: ConvAlgo) -> Self {
        Ctx { algo, ..self }
    }
    /// This context on instruction set `isa`.
    pub fn with_isa(self, isa: Isa) -> Self {
        Ctx { isa, ..self }
    }
}

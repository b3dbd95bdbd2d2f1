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
    /// The version of the filter the convolution passes are given, if the caller tracks
    /// one: a number that names the filter's values at its address, so that a pass may
    /// reuse the filter's Winograd transform made by an earlier call on the same thread
    /// with the same filter address and version instead of transforming it again. The
    /// caller promises that a (filter address, version) pair always means the same values:
    /// a new version whenever the values change (a model's parameter store counts them).
    /// `None` (the default): every call transforms its filter.
    pub weights_version: Option<u64>,
}

impl Default for Ctx {
    fn default() -> Self {
        Ctx { isa: default_isa(), algo: ConvAlgo::Auto, weights_version: None }
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
    /// This context with the filter's version `v` (see [`Ctx::weights_version`]).
    pub fn with_weights_version(self, v: u64) -> Self {
        Ctx { weights_version: Some(v), ..self }
    }
}

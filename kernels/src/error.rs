//! The one error type of `ember-kernels`: every public function checks its arguments and
//! says precisely what was wrong instead of panicking.

use crate::arch::Isa;

/// What was wrong with a call into `ember-kernels`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A buffer is shorter than the shape and strides that describe it require.
    #[error("{name}: buffer holds {len} elements but its shape and strides reach index {needed}")]
    BufferTooSmall {
        /// Which argument.
        name: &'static str,
        /// The smallest length that would do (last index reached + 1).
        needed: usize,
        /// The length given.
        len: usize,
    },
    /// Two dimensions that must agree do not.
    #[error("shape mismatch: {what}: expected {expected}, got {got}")]
    ShapeMismatch {
        /// Which dimension, in words ("A.cols vs B.rows").
        what: &'static str,
        /// The value required by the other operands.
        expected: usize,
        /// The value given.
        got: usize,
    },
    /// An output view whose strides map two elements onto the same memory.
    #[error("{name}: strides (row {row_stride}, col {col_stride}) for a {rows}x{cols} view make elements overlap")]
    OverlappingOutput {
        /// Which argument.
        name: &'static str,
        /// Rows of the view.
        rows: usize,
        /// Columns of the view.
        cols: usize,
        /// Row stride.
        row_stride: usize,
        /// Column stride.
        col_stride: usize,
    },
    /// The shape's element count does not fit in `usize`.
    #[error("{name}: shape is too large (element count overflows usize)")]
    SizeOverflow {
        /// Which argument.
        name: &'static str,
    },
    /// A prepacked operand was packed for another instruction set than the one requested.
    #[error("operand was packed for {packed_for:?} but the call runs on {requested:?}")]
    PackedForOtherIsa {
        /// The ISA the operand was packed for.
        packed_for: Isa,
        /// The ISA of the call.
        requested: Isa,
    },
    /// The requested instruction set is not supported by this CPU (or this build's target).
    #[error("instruction set {0:?} is not available on this CPU")]
    IsaUnavailable(Isa),
    /// `EMBER_ISA` or a parsed ISA name was not one of `scalar|avx2|avx512|neon`.
    #[error("unknown instruction set {0:?}: expected one of scalar, avx2, avx512, neon")]
    UnknownIsa(String),
    /// An argument outside its domain, with a sentence saying which and why.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// The most f32 elements an array can hold (`isize::MAX` bytes). Sizes past it are
/// [`Error::SizeOverflow`] even when they fit in `usize`: no buffer could hold them, and a
/// scratch buffer sized from one would abort or wrap.
pub(crate) const MAX_ELEMENTS: usize = isize::MAX as usize / 4;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

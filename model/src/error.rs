//! The error type of `ember-model`: every misconfiguration or bad input names what was wrong.

use std::path::PathBuf;

/// What went wrong in building, training or loading a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A kernel rejected its arguments (an internal shape bug if it happens during training).
    #[error(transparent)]
    Kernel(#[from] ember_kernels::Error),
    /// A layer's configuration does not fit the shape of its input.
    #[error("layer {layer}: {what} (input shape {input:?})")]
    LayerShape {
        /// The layer's name (`conv2d`, `dense_1`, ...).
        layer: String,
        /// The per-sample input shape it was given.
        input: Vec<usize>,
        /// What does not fit.
        what: String,
    },
    /// A configuration value outside its domain.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Training or evaluation data that does not fit the model or itself.
    #[error("invalid data: {0}")]
    Data(String),
    /// The model was used before `compile()` (or `build`).
    #[error("the model is not compiled: call compile() first")]
    NotCompiled,
    /// The loss became NaN or infinite.
    #[error("non-finite loss {loss} at epoch {epoch}, step {step}")]
    NonFiniteLoss {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based step within the epoch.
        step: usize,
        /// The loss value.
        loss: f32,
    },
    /// A malformed IDX file.
    #[error("{path}: malformed IDX data: {what}")]
    Idx {
        /// The file (or `<bytes>`).
        path: String,
        /// What is wrong.
        what: String,
    },
    /// A malformed or mismatched weights / checkpoint file.
    #[error("weights {path}: {what}")]
    Weights {
        /// The file (or `<bytes>`).
        path: String,
        /// What is wrong.
        what: String,
    },
    /// An I/O error on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A data-parallel run failed: a rank reported an error, or a message could not be
    /// exchanged (the text names the rank).
    #[error("data-parallel training: {0}")]
    Distributed(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

//! # ember-model
//!
//! A trainable CNN on [`ember_kernels`]: layers ([`layers`]), losses ([`losses`]),
//! optimizers ([`optimizers`]), a Keras-like [`Sequential`] model with `fit` / `evaluate` /
//! `predict`, IDX data ([`data`]) and safetensors weights and checkpoints ([`io`]).
//!
//! Layouts and semantics follow Keras, so a Keras model maps one to one: NHWC activations,
//! HWIO convolution kernels, `[in, out]` dense kernels, glorot-uniform kernels and zero
//! biases, Keras's Adam and SGD updates, sparse categorical cross-entropy from the logits.
//!
//! ```
//! use ember_model::layers::{Activation, Conv2D, Dense, Flatten, MaxPooling2D};
//! use ember_model::{losses::{Loss, Metric}, optimizers::Adam, Sequential};
//!
//! let mut model = Sequential::new();
//! model
//!     .add(Conv2D::new(32, (3, 3)).activation(Activation::Relu).input_shape([28, 28, 1]))
//!     .add(MaxPooling2D::new((2, 2)))
//!     .add(Flatten::new())
//!     .add(Dense::new(10).activation(Activation::Softmax));
//! model.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[Metric::Accuracy])?;
//! assert_eq!(model.param_count(), 54_410);
//! # Ok::<(), ember_model::Error>(())
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod data;
mod error;
pub mod io;
pub mod layers;
pub mod losses;
pub mod optimizers;
pub mod plan;
pub mod rng;
mod sequential;
mod tensor;

pub use error::{Error, Result};
pub use sequential::{BatchLogs, Callback, EpochLogs, Evaluation, FitOptions, History, Sequential};
pub use tensor::Tensor;

/// The README's Rust examples (model, GEMM, convolution), compiled and run as doctests so
/// they stay true; here because this crate sees both.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

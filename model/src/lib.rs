//! # ember-model
//!
//! Trainable CNNs on [`ember_kernels`], in Keras's shape: layers ([`layers`]), a
//! [`Sequential`] builder and a functional form ([`Input`], [`Apply`], [`Model::new`]),
//! `compile` / `fit` / `evaluate` / `predict`, losses ([`losses`]), optimizers
//! ([`optimizers`]), IDX data ([`data`]) and safetensors weights and checkpoints ([`io`]).
//!
//! Layouts and semantics follow Keras, so a Keras model maps one to one: NHWC activations,
//! HWIO convolution kernels, `[in, out]` dense kernels, glorot-uniform kernels and zero
//! biases, Keras's Adam and SGD updates, sparse categorical cross-entropy.
//!
//! ## Map of `model/src`
//!
//! | owner | files | what it owns |
//! |---|---|---|
//! | parameters | `params/*.rs` | [`ParamStore`]: every named tensor (trainable or state), flat 64-byte-aligned value and gradient arenas, Keras names and layouts |
//! | layers | `layers/*.rs` (one per layer) | the [`layers::Layer`] contract: built once, immutable, `forward` / `backward` with the mode and a workspace handed in |
//! | graph and executor | `graph/mod.rs`, `graph/plan.rs`, `graph/fusion/*.rs` (one per rule), `graph/reduction.rs`, `graph/liveness.rs`, `graph/segments.rs`, `graph/executor/*.rs` | nodes of (layer, inputs); fusion rules; ops that reduce over the batch in halves; buffers planned by liveness (one part's buffer for values that live within one part's run between reductions); shards run by the executor (`coupled.rs`: batches joined by batch reductions) |
//! | trainer | `trainer/*.rs` | compile, fit, evaluate, callbacks, checkpoints, the [`GradientHook`] between backward and the optimizer step |
//!
//! Around them: `model/` ([`Model`]: a graph, its store, its plan, its threads; predict;
//! `saving.rs`: weights files and checkpoints), `sequential.rs` (the chaining builder),
//! `summary.rs`, `optimizers/` (update the store's trainable arena), `losses.rs`,
//! `metrics.rs`, `targets.rs` ([`Targets`]: labels or dense rows), `export.rs`
//! ([`Model::fold_batch_norm`]), `io.rs` (records of named tensors, atomic writes; knows no
//! model), `data.rs`, `threads.rs` (pools shared by models),
//! `rng.rs`, `tensor.rs`, `error.rs`; `explain/` (attributions: saliency, SmoothGrad, Integrated
//! Gradients, Grad-CAM, occlusion; on plans of their own that differentiate a class score
//! with respect to the input or an inner layer); `distributed/` (the ranks of a
//! data-parallel fit: [`distributed::Collective`], threads or MPI) with the trainer's
//! `trainer/data_parallel.rs` (shards over ranks, the ordered gradient chain).
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
pub mod distributed;
mod error;
pub mod explain;
mod export;
mod graph;
pub mod io;
pub mod layers;
pub mod losses;
pub mod metrics;
mod model;
pub mod optimizers;
pub mod params;
pub mod rng;
mod sequential;
mod summary;
pub mod targets;
mod tensor;
mod threads;
pub mod trainer;

pub use error::{Error, Result};
pub use graph::executor::Shard;
pub use graph::plan::{COUPLED_PART, PART};
pub use graph::profile::{OpPass, OpProfile, OpTime};
pub use graph::{Apply, Input, Node};
pub use model::Model;
pub use params::{ParamId, ParamKind, ParamStore};
pub use sequential::Sequential;
pub use targets::{to_categorical, Targets};
pub use tensor::Tensor;
pub use threads::MAX_THREADS;
pub use trainer::{
    BatchLogs, Callback, ClipByGlobalNorm, CsvLogger, EarlyStopping, EpochLogs, Evaluation, FitOptions, GradientHook,
    History, LearningRateScheduler, ModelCheckpoint, ReduceLrOnPlateau,
};

/// The README's Rust examples (model, GEMM, convolution), compiled and run as doctests so
/// they stay true; here because this crate sees both.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

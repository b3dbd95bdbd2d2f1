//! # ember-kernels
//!
//! Hand-tuned SIMD, multithreaded CPU kernels for convolutional networks: f32 GEMM
//! (BLIS-style, [`gemm`]), 2-D convolution by direct, im2col and Winograd algorithms in all
//! three training passes ([`conv`]), pooling ([`pool`]), batch normalization
//! ([`batchnorm`]), dropout's mask ([`dropout`]) and the elementwise pieces of a CNN
//! ([`elementwise`]), with AVX-512, AVX2+FMA, NEON and portable microkernels chosen at run
//! time ([`arch`]). Every kernel has a naive twin in [`reference`](mod@reference) that the tests check it
//! against.
//!
//! Layout conventions: matrices are strided views ([`gemm::MatRef`]); activations are NHWC
//! and filters HWIO, as in TensorFlow/Keras.
//!
//! Threads: a kernel splits its work over the current rayon pool, the one the call runs in
//! (`ThreadPool::install`), else rayon's global pool; the split never changes a result.
//! Called from a thread outside every pool, each call hands its tasks to the pool's workers
//! and blocks until they have run, so a short pass costs several times its work: a batch
//! normalization over 4 x 28 x 28 x 32 floats took 14 µs a call inside a pool, 40-90 µs
//! from outside, and hundreds after the workers had gone idle (BENCHMARKS.md, session 64).
//! Run a sequence of calls inside `install` on the pool that should run them, as
//! `ember-model` does.
//!
//! Every public function checks its arguments and returns an [`Error`] that says what was
//! wrong; none panics on bad input. (The one exception is by design: the element accessors
//! [`gemm::MatRef::at`] and [`gemm::MatMut::at_mut`] index like a slice and panic outside
//! the view; `get` and `get_mut` return `None` instead.) `unsafe` is confined to the
//! microkernels (the GEMM's, the convolution tiles, the Winograd transforms, the pooling and
//! dense kernels, and the per-ISA vector type in `arch::simd` they are written on), their
//! call sites, and the one place that shares C between threads; every block has its own
//! `SAFETY:` comment, and a function whose body needs its caller's target features is an
//! `unsafe fn`. The portable paths run under Miri (`scripts/miri.sh`).

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod activation;
pub mod arch;
pub mod batchnorm;
pub mod conv;
mod ctx;
pub mod desc;
pub mod dropout;
pub mod elementwise;
mod error;
pub mod gemm;
mod geometry;
pub mod linear;
pub mod pool;
pub mod reference;
mod scratch;

pub use arch::Isa;
pub use ctx::Ctx;
pub use error::{Error, Result};

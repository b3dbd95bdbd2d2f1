//! The elementwise pieces a CNN needs, on rows of `channels` values (NHWC activations or
//! `[batch, features]` matrices): bias, ReLU, softmax with cross-entropy, and the optimizers' updates.
//! Memory-bound loops written so LLVM vectorises them for any target; every reduction runs
//! in a fixed order, so results never depend on threads.
//!
//! One file per family: `bias` (the bias and its gradient), `sums` (elementwise sums:
//! Keras's `Add`, gradient accumulation), `relu`, `softmax` (with cross-entropy), `adam`, `rms`
//! (RMSprop's and Adagrad's update), `sgd`, and `flush` (TensorFlow's flush-to-zero, which the
//! optimizers follow).

use crate::error::{Error, Result};

mod adam;
mod bias;
mod flush;
mod relu;
mod rms;
mod sgd;
mod softmax;
mod sums;

pub use adam::{adam_alpha, adam_update, adam_update_summed, AdamParams};
pub use bias::{bias_add, bias_grad};
pub use flush::flush_subnormal;
pub use relu::{relu_backward, relu_forward};
pub use rms::{rms_update, rms_update_summed, RmsParams};
pub use sgd::{sgd_update, sgd_update_summed, SgdParams};
pub use softmax::{softmax, softmax_cross_entropy, softmax_cross_entropy_sum};
pub(crate) use sums::add_assign;
pub use sums::{accumulate, accumulate_in_order, add_forward};

fn check_rows(what: &'static str, len: usize, channels: usize) -> Result<usize> {
    if channels == 0 {
        return Err(Error::InvalidArgument(format!("{what}: channel count must be at least 1")));
    }
    if !len.is_multiple_of(channels) {
        return Err(Error::ShapeMismatch { what, expected: len.div_ceil(channels) * channels, got: len });
    }
    Ok(len / channels)
}

fn check_same(what: &'static str, a: usize, b: usize) -> Result<()> {
    if a != b {
        return Err(Error::ShapeMismatch { what, expected: a, got: b });
    }
    Ok(())
}

/// The optimizers' length checks: a gradient of `grad` floats and each of the shards'
/// gradients `more` summed into it, against `len` parameters.
fn check_gradients(len: usize, grad: usize, more: &[&[f32]]) -> Result<()> {
    check_same("gradient length vs parameter length", len, grad)?;
    for x in more {
        check_same("summed gradient length vs parameter length", len, x.len())?;
    }
    Ok(())
}

/// A gradient's address, shared by the parallel tasks of an optimizer's step.
#[derive(Clone, Copy)]
pub(super) struct SharedGradient(pub(super) *mut f32);

// SAFETY: the tasks of an optimizer's step read (and with `SUMMED` write) disjoint chunks of the
// gradient, each its own, and the caller holds the gradient exclusively (or, without
// `SUMMED`, shared and unwritten) for the whole step.
unsafe impl Send for SharedGradient {}
// SAFETY: as for `Send`.
unsafe impl Sync for SharedGradient {}

impl SharedGradient {
    /// The address of float `i` (a method, so that a closure captures the whole wrapper).
    pub(super) fn at(self, i: usize) -> *mut f32 {
        self.0.wrapping_add(i)
    }
}

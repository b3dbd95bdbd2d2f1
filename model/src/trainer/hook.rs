//! The gradient hook: the seam between the backward pass and the optimizer step. A
//! training step is forward and backward over the batch, then the hook (none by default),
//! then the optimizer. The hook sees the whole flat gradient arena of the parameter store
//! (an all-reduce is one message), may change it, and can stop training with an error.

use crate::error::{Error, Result};
use crate::params::ParamTable;

/// Called once per training step between the backward pass and the optimizer step.
pub trait GradientHook: Send + Sync {
    /// `step`: the 1-based number of the update about to be applied; `grads`: the
    /// gradients of every trainable tensor, laid out as `table` says (zeros in the gaps).
    fn on_gradients(&mut self, step: u64, grads: &mut [f32], table: &ParamTable) -> Result<()>;
}

/// Keras's `global_clipnorm`: scales all gradients by `clip / max(clip, ‖g‖₂)`, the norm
/// taken over every trainable tensor together (summed in f64, in arena order).
#[derive(Debug, Clone, Copy)]
pub struct ClipByGlobalNorm(pub f32);

impl GradientHook for ClipByGlobalNorm {
    fn on_gradients(&mut self, _step: u64, grads: &mut [f32], _table: &ParamTable) -> Result<()> {
        if !(self.0.is_finite() && self.0 > 0.0) {
            return Err(Error::Config(format!("global clip norm {} must be finite and positive", self.0)));
        }
        let norm = grads.iter().map(|&g| f64::from(g) * f64::from(g)).sum::<f64>().sqrt();
        let clip = f64::from(self.0);
        if norm > clip {
            let scale = (clip / norm) as f32;
            grads.iter_mut().for_each(|g| *g *= scale);
        }
        Ok(())
    }
}

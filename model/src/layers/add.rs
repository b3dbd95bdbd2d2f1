//! Keras's `Add`: the elementwise sum of two or more inputs of one shape (a residual
//! connection's join), in one pass. Its backward pass hands `dy` to every input.

use super::{copy, Backward, Forward, Layer};
use crate::error::{Error, Result};
use crate::params::ParamBuilder;
use crate::rng::Rng;

/// Keras's `Add()`.
#[derive(Debug, Clone, Default)]
pub struct Add {
    name: String,
}

impl Add {
    /// An add layer (inputs given when it is applied).
    pub fn new() -> Self {
        Self::default()
    }
}

impl Layer for Add {
    super::layer_plumbing!(name);
    fn class_name(&self) -> &'static str {
        "Add"
    }
    fn build(&mut self, inputs: &[&[usize]], _params: &mut ParamBuilder, _rng: &mut Rng) -> Result<Vec<usize>> {
        let [first, rest @ ..] = inputs else {
            return Err(Error::Config(format!("layer {}: Add needs at least two inputs", self.name)));
        };
        if rest.is_empty() {
            return Err(Error::Config(format!("layer {}: Add needs at least two inputs", self.name)));
        }
        if let Some(other) = rest.iter().find(|s| s != &first) {
            return Err(Error::LayerShape {
                layer: self.name.clone(),
                input: other.to_vec(),
                what: format!("Add's inputs must have one shape; the first is {first:?}"),
            });
        }
        Ok(first.to_vec())
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        self.forward_then(f, false)
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        self.backward_then(b, false)
    }
}

impl Add {
    /// The forward pass, followed by a ReLU with `relu` (`y = max(Σ x, 0)` in the same pass
    /// over memory; the `add_relu` fusion rule).
    pub(crate) fn forward_then(&self, f: Forward<'_>, relu: bool) -> Result<()> {
        ember_kernels::elementwise::add_forward(&ember_kernels::Ctx::new(), f.x, relu, f.y)?;
        Ok(())
    }

    /// The backward pass of [`Self::forward_then`] with the same `relu`: every input's
    /// gradient is `dy` (where `y > 0`, with the ReLU), computed once and copied.
    pub(crate) fn backward_then(&self, b: Backward<'_, '_>, relu: bool) -> Result<()> {
        let mut wanted = b.dx.iter_mut().flatten();
        let Some(first) = wanted.next() else { return Ok(()) };
        if relu {
            // The ReLU's derivative read from its output: y > 0 exactly where Σ x > 0.
            let ctx = ember_kernels::Ctx::new();
            ember_kernels::activation::act_backward_to(
                &ctx,
                ember_kernels::activation::Act::Relu,
                b.y,
                b.y,
                b.dy,
                first,
            )?;
        } else {
            copy(b.dy, first);
        }
        for dx in wanted {
            copy(first, dx);
        }
        Ok(())
    }
}

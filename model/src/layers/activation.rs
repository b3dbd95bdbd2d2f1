//! Activations: ReLU and softmax, as a layer option or a layer of their own.

use super::{copy, single_input, Backward, Forward, Layer};
use crate::error::{Error, Result};
use crate::params::ParamBuilder;
use crate::rng::Rng;
use ember_kernels::elementwise;

/// An elementwise (ReLU) or row-wise (softmax, over the last axis) activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    /// The identity.
    #[default]
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// `exp(x) / Σ exp(x)` over the last axis.
    Softmax,
}

impl std::str::FromStr for Activation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "linear" => Ok(Activation::Linear),
            "relu" => Ok(Activation::Relu),
            "softmax" => Ok(Activation::Softmax),
            _ => Err(Error::Config(format!("unknown activation {s:?}: expected linear, relu or softmax"))),
        }
    }
}

impl Activation {
    /// Applies the activation in place to `y`, rows of `width` values.
    pub(crate) fn apply(self, y: &mut [f32], width: usize) -> Result<()> {
        match self {
            Activation::Linear => {}
            Activation::Relu => elementwise::relu_forward(y),
            Activation::Softmax => elementwise::softmax(y, width)?,
        }
        Ok(())
    }

    /// Turns `dy` (gradient of the activation's output `y`) into the gradient of its input,
    /// in place.
    pub(crate) fn backward(self, y: &[f32], dy: &mut [f32], width: usize) -> Result<()> {
        match self {
            Activation::Linear => {}
            Activation::Relu => elementwise::relu_backward(y, dy)?,
            Activation::Softmax => {
                // dz = y ⊙ (dy - <dy, y>) per row.
                for (yr, dr) in y.chunks_exact(width).zip(dy.chunks_exact_mut(width)) {
                    let dot: f32 = yr.iter().zip(dr.iter()).map(|(a, b)| a * b).sum();
                    dr.iter_mut().zip(yr).for_each(|(d, &yv)| *d = yv * (*d - dot));
                }
            }
        }
        Ok(())
    }
}

/// An activation as a layer of its own (Keras's `Activation`, `ReLU`, `Softmax`).
#[derive(Debug, Clone)]
pub struct ActivationLayer {
    name: String,
    act: Activation,
    width: usize,
}

impl ActivationLayer {
    /// A layer applying `act`.
    pub fn new(act: Activation) -> Self {
        ActivationLayer { name: String::new(), act, width: 1 }
    }
    fn applies(&self, logits: bool) -> bool {
        !(logits && self.act == Activation::Softmax)
    }
}

impl Layer for ActivationLayer {
    super::layer_plumbing!(name);
    fn class_name(&self) -> &'static str {
        "Activation"
    }
    fn build(&mut self, inputs: &[&[usize]], _params: &mut ParamBuilder, _rng: &mut Rng) -> Result<Vec<usize>> {
        let input = single_input(&self.name, inputs)?;
        self.width = input.last().copied().unwrap_or(1).max(1);
        Ok(input.to_vec())
    }
    fn activation(&self) -> Activation {
        self.act
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        copy(f.x[0], f.y);
        if self.applies(f.mode.logits) {
            self.act.apply(f.y, self.width)?;
        }
        Ok(())
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        if self.applies(b.mode.logits) {
            self.act.backward(b.y, b.dy, self.width)?;
        }
        if let Some(dx) = b.dx[0].as_deref_mut() {
            copy(b.dy, dx);
        }
        Ok(())
    }
}

//! Activations (Keras's names and formulas), as a layer option or a layer of their own.

use super::{copy, single_input, Backward, Forward, Layer};
use crate::error::{Error, Result};
use crate::params::ParamBuilder;
use crate::rng::Rng;
use ember_kernels::activation::{self, Act};
use ember_kernels::elementwise;

/// An activation: elementwise (Keras's formulas, `ember_kernels::activation`) or row-wise
/// (softmax, over the last axis). From Keras's names with `str::parse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    /// The identity.
    #[default]
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// `exp(x) / Σ exp(x)` over the last axis.
    Softmax,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh x`.
    Tanh,
    /// Exponential linear unit (α = 1).
    Elu,
    /// Scaled exponential linear unit.
    Selu,
    /// Gaussian error linear unit, exact (Keras's default).
    Gelu,
    /// `x σ(x)` (Keras's `silu` and `swish`).
    Silu,
    /// Leaky ReLU, negative slope 0.2 (Keras's default).
    LeakyRelu,
    /// `ln(1 + e^x)`.
    Softplus,
}

/// Keras's names, in the order the error message lists them.
const NAMES: [(&str, Activation); 12] = [
    ("linear", Activation::Linear),
    ("relu", Activation::Relu),
    ("sigmoid", Activation::Sigmoid),
    ("tanh", Activation::Tanh),
    ("softmax", Activation::Softmax),
    ("elu", Activation::Elu),
    ("selu", Activation::Selu),
    ("gelu", Activation::Gelu),
    ("silu", Activation::Silu),
    ("swish", Activation::Silu),
    ("leaky_relu", Activation::LeakyRelu),
    ("softplus", Activation::Softplus),
];

impl std::str::FromStr for Activation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        NAMES.iter().find(|(n, _)| *n == s).map(|&(_, a)| a).ok_or_else(|| {
            let names: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
            Error::Config(format!("unknown activation {s:?}: expected one of {}", names.join(", ")))
        })
    }
}

impl Activation {
    /// The elementwise kernel's kind, for the activations it computes (not softmax).
    pub fn elementwise(self) -> Option<Act> {
        Some(match self {
            Activation::Softmax => return None,
            Activation::Linear => Act::Linear,
            Activation::Relu => Act::Relu,
            Activation::Sigmoid => Act::Sigmoid,
            Activation::Tanh => Act::Tanh,
            Activation::Elu => Act::Elu,
            Activation::Selu => Act::Selu,
            Activation::Gelu => Act::Gelu,
            Activation::Silu => Act::Silu,
            Activation::LeakyRelu => Act::LeakyRelu,
            Activation::Softplus => Act::Softplus,
        })
    }

    /// Whether the backward pass needs the pre-activation (not only the output): every
    /// activation but the identity, ReLU and softmax.
    pub(crate) fn needs_input(self) -> bool {
        !matches!(self, Activation::Linear | Activation::Relu | Activation::Softmax)
    }

    /// Applies the activation in place to `y` (which holds the pre-activation), rows of
    /// `width` values; where the backward pass needs the pre-activation, `keep` gets a copy.
    pub(crate) fn apply(self, y: &mut [f32], width: usize, keep: &mut Vec<f32>) -> Result<()> {
        match self {
            Activation::Linear => {}
            Activation::Relu => elementwise::relu_forward(y),
            Activation::Softmax => elementwise::softmax(y, width)?,
            other => {
                keep.clear();
                keep.extend_from_slice(y);
                if let Some(a) = other.elementwise() {
                    activation::act_forward_inplace(&ember_kernels::Ctx::new(), a, y)?;
                }
            }
        }
        Ok(())
    }

    /// Turns `dy` (gradient of the activation's output `y`) into the gradient of its input
    /// `x`, in place (`x` is read only by the activations that [`Activation::needs_input`]).
    pub(crate) fn backward(self, x: &[f32], y: &[f32], dy: &mut [f32], width: usize) -> Result<()> {
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
            other => {
                if let Some(a) = other.elementwise() {
                    activation::act_backward(&ember_kernels::Ctx::new(), a, x, y, dy)?;
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
    /// Whether the activation runs: not on the model's output when the loss absorbed it.
    fn applies(&self, logits: bool) -> bool {
        !logits
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
        let ctx = ember_kernels::Ctx::new();
        match self.act.elementwise().filter(|_| self.applies(f.mode.logits)) {
            // One pass from x to y (the input stays available to the backward pass).
            Some(a) => activation::act_forward(&ctx, a, f.x[0], f.y)?,
            None => {
                copy(f.x[0], f.y);
                if self.applies(f.mode.logits) {
                    let mut unused = Vec::new();
                    self.act.apply(f.y, self.width, &mut unused)?;
                }
            }
        }
        Ok(())
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        let ctx = ember_kernels::Ctx::new();
        match (self.act.elementwise().filter(|_| self.applies(b.mode.logits)), b.dx[0].as_deref_mut()) {
            // One pass from dy to dx.
            (Some(a), Some(dx)) => activation::act_backward_to(&ctx, a, b.x[0], b.y, b.dy, dx)?,
            (_, dx) => {
                if self.applies(b.mode.logits) {
                    self.act.backward(b.x[0], b.y, b.dy, self.width)?;
                }
                if let Some(dx) = dx {
                    copy(b.dy, dx);
                }
            }
        }
        Ok(())
    }
}

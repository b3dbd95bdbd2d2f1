//! Keras's `Add`: the elementwise sum of two or more inputs of one shape (a residual
//! connection's join). Its backward pass hands `dy` to every input.

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
        copy(f.x[0], f.y);
        for x in &f.x[1..] {
            f.y.iter_mut().zip(x.iter()).for_each(|(y, x)| *y += x);
        }
        Ok(())
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        for dx in b.dx.iter_mut().flatten() {
            copy(b.dy, dx);
        }
        Ok(())
    }
}

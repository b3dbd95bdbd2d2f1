//! Dropout (Keras's `Dropout(rate)`): in training, each value is zeroed with probability
//! `rate` and the survivors scaled by `1 / (1 - rate)`; the identity in inference.

use super::{Ctx, Layer};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// Keras's `Dropout`.
#[derive(Debug, Clone)]
pub struct Dropout {
    name: String,
    rate: f32,
    /// Per element: 0 (dropped) or `1 / (1 - rate)`, from the last training forward pass.
    mask: Vec<f32>,
    training: bool,
}

impl Dropout {
    /// Drops each value with probability `rate` in `[0, 1)`.
    pub fn new(rate: f32) -> Self {
        Dropout { name: String::new(), rate, mask: Vec::new(), training: false }
    }
}

impl Layer for Dropout {
    super::layer_plumbing!(name);
    fn class_name(&self) -> &'static str {
        "Dropout"
    }
    fn build(&mut self, input: &[usize], _rng: &mut Rng) -> Result<Vec<usize>> {
        if !(0.0..1.0).contains(&self.rate) {
            return Err(Error::Config(format!("{}: dropout rate {} is not in [0, 1)", self.name, self.rate)));
        }
        Ok(input.to_vec())
    }
    fn forward(&mut self, x: &[f32], y: &mut [f32], _n: usize, ctx: &mut Ctx) -> Result<()> {
        self.training = ctx.training && self.rate > 0.0;
        if !self.training {
            y.copy_from_slice(x);
            return Ok(());
        }
        let scale = 1.0 / (1.0 - self.rate);
        self.mask.clear();
        self.mask.extend((0..x.len()).map(|_| if ctx.rng.next_f32() < self.rate { 0.0 } else { scale }));
        y.iter_mut().zip(x).zip(&self.mask).for_each(|((y, x), m)| *y = x * m);
        Ok(())
    }
    fn backward(
        &mut self,
        _x: &[f32],
        _y: &[f32],
        dy: &mut [f32],
        dx: Option<&mut [f32]>,
        _n: usize,
        _accumulate: bool,
    ) -> Result<()> {
        if let Some(dx) = dx {
            if self.training {
                dx.iter_mut().zip(dy.iter()).zip(&self.mask).for_each(|((d, g), m)| *d = g * m);
            } else {
                dx.copy_from_slice(dy);
            }
        }
        Ok(())
    }
}

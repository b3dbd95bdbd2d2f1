//! Flatten: `[h, w, c]` samples as `[h * w * c]` vectors. The memory does not change (NHWC
//! is already row-major), so the model runs nothing for it.

use super::{Ctx, Layer};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// Keras's `Flatten`.
#[derive(Debug, Clone, Default)]
pub struct Flatten {
    name: String,
}

impl Flatten {
    /// A flatten layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Layer for Flatten {
    super::layer_plumbing!(name);
    fn class_name(&self) -> &'static str {
        "Flatten"
    }
    fn build(&mut self, input: &[usize], _rng: &mut Rng) -> Result<Vec<usize>> {
        let len = input.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        Ok(vec![len.ok_or_else(|| Error::Config(format!("{}: input {input:?} overflows", self.name)))?])
    }
    fn is_reshape(&self) -> bool {
        true
    }
    fn forward(&mut self, x: &[f32], y: &mut [f32], _n: usize, _ctx: &mut Ctx) -> Result<()> {
        y.copy_from_slice(x);
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
            dx.copy_from_slice(dy);
        }
        Ok(())
    }
}

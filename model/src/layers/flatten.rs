//! Flatten: `[h, w, c]` samples as `[h * w * c]` vectors. The memory does not change (NHWC
//! is already row-major): the layer is a view, its output shares its input's buffer and
//! nothing runs for it.

use super::{copy, single_input, Backward, Forward, Layer, LayerTraits};
use crate::error::{Error, Result};
use crate::params::ParamBuilder;
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
    fn build(&mut self, inputs: &[&[usize]], _params: &mut ParamBuilder, _rng: &mut Rng) -> Result<Vec<usize>> {
        let input = single_input(&self.name, inputs)?;
        let len = input.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        Ok(vec![len.ok_or_else(|| Error::Config(format!("{}: input {input:?} overflows", self.name)))?])
    }
    fn traits(&self) -> LayerTraits {
        LayerTraits { view: true, ..LayerTraits::default() }
    }
    // A planner that did not alias the buffers would get a copy: same values.
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        copy(f.x[0], f.y);
        Ok(())
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        if let Some(dx) = b.dx[0].as_deref_mut() {
            copy(b.dy, dx);
        }
        Ok(())
    }
}

//! Keras's `GlobalAveragePooling2D` and `GlobalMaxPooling2D`: `[h, w, c]` images to `[c]`
//! vectors, the mean or the maximum of each channel over the image.

use super::{image_shape, single_input, Backward, Forward, Layer};
use crate::error::{Error, Result};
use crate::params::ParamBuilder;
use crate::rng::Rng;
use ember_kernels::conv::Padding;
use ember_kernels::pool::{self, Pool2d};
use ember_kernels::Ctx;

/// The pooling window over a whole image of a batch of `n`.
fn whole_image(input: [usize; 3], n: usize) -> Result<Pool2d> {
    let [h, w, c] = input;
    Ok(Pool2d::new([n, h, w, c], (h, w), (h, w), Padding::Valid)?)
}

/// Checks the input and returns `(input, [c])`.
fn build_global(name: &str, inputs: &[&[usize]]) -> Result<([usize; 3], Vec<usize>)> {
    let input = image_shape(name, single_input(name, inputs)?)?;
    if input.contains(&0) {
        return Err(Error::LayerShape {
            layer: name.into(),
            input: input.to_vec(),
            what: "global pooling needs a non-empty image".into(),
        });
    }
    Ok((input, vec![input[2]]))
}

/// Keras's `GlobalAveragePooling2D()`: the mean of each channel.
#[derive(Debug, Clone, Default)]
pub struct GlobalAveragePooling2D {
    name: String,
    input: [usize; 3],
}

impl GlobalAveragePooling2D {
    /// A global average pooling.
    pub fn new() -> Self {
        Self::default()
    }
    fn shape(&self, n: usize) -> [usize; 4] {
        let [h, w, c] = self.input;
        [n, h, w, c]
    }
}

impl Layer for GlobalAveragePooling2D {
    super::layer_plumbing!(name);
    fn class_name(&self) -> &'static str {
        "GlobalAveragePooling2D"
    }
    fn build(&mut self, inputs: &[&[usize]], _params: &mut ParamBuilder, _rng: &mut Rng) -> Result<Vec<usize>> {
        let (input, out) = build_global(&self.name, inputs)?;
        self.input = input;
        Ok(out)
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        pool::global_avg_pool_forward(self.shape(f.n), f.x[0], f.y)?;
        Ok(())
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        if let Some(dx) = b.dx[0].as_deref_mut() {
            pool::global_avg_pool_backward(self.shape(b.n), b.dy, dx)?;
        }
        Ok(())
    }
}

/// Keras's `GlobalMaxPooling2D()`: the maximum of each channel (its position kept in the
/// workspace for the backward pass).
#[derive(Debug, Clone, Default)]
pub struct GlobalMaxPooling2D {
    name: String,
    input: [usize; 3],
}

impl GlobalMaxPooling2D {
    /// A global max pooling.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Layer for GlobalMaxPooling2D {
    super::layer_plumbing!(name);
    fn class_name(&self) -> &'static str {
        "GlobalMaxPooling2D"
    }
    fn build(&mut self, inputs: &[&[usize]], _params: &mut ParamBuilder, _rng: &mut Rng) -> Result<Vec<usize>> {
        let (input, out) = build_global(&self.name, inputs)?;
        self.input = input;
        Ok(out)
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let p = whole_image(self.input, f.n)?;
        f.ws.indices.resize(f.y.len(), 0);
        pool::max_pool_forward(&Ctx::new(), &p, f.x[0], f.y, &mut f.ws.indices)?;
        Ok(())
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        if let Some(dx) = b.dx[0].as_deref_mut() {
            pool::max_pool_backward(&Ctx::new(), &whole_image(self.input, b.n)?, b.dy, &b.ws.indices, dx)?;
        }
        Ok(())
    }
}

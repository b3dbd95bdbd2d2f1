//! Layers: each one file with its forward and backward passes and its tests. A layer is
//! configured by a builder, built once for a per-sample input shape (which creates its
//! weights), then runs on batches of `n` samples laid out one after another (NHWC images,
//! `[n, features]` vectors).

mod activation;
mod conv2d;
mod dense;
mod dropout;
mod flatten;
mod pooling;

pub use activation::{Activation, ActivationLayer};
pub use conv2d::Conv2D;
pub use dense::Dense;
pub use dropout::Dropout;
pub use flatten::Flatten;
pub use pooling::{AveragePooling2D, MaxPooling2D};

use crate::error::{Error, Result};
use crate::rng::Rng;
use std::any::Any;

/// A trainable tensor of a layer: its value and the gradient of the last backward pass.
#[derive(Debug, Clone)]
pub struct Param {
    /// Keras's name for it within the layer: `kernel` or `bias`.
    pub name: &'static str,
    /// Shape (`[kh, kw, cin, cout]` for a convolution kernel, `[in, out]` for a dense one).
    pub shape: Vec<usize>,
    /// The values.
    pub value: Vec<f32>,
    /// The gradient of the loss with respect to `value`, from the last backward pass.
    pub grad: Vec<f32>,
    /// Whether `value` (and `grad`) hold the 2-D `shape` transposed: a dense kernel is
    /// stored `[out, in]` for its kernels and shown as Keras's `[in, out]` by
    /// [`Param::to_keras`] and the weight files.
    pub transposed: bool,
}

impl Param {
    pub(crate) fn new(name: &'static str, shape: Vec<usize>, value: Vec<f32>) -> Self {
        let grad = vec![0.0; value.len()];
        Param { name, shape, value, grad, transposed: false }
    }

    /// The values in Keras's layout (`shape`, row-major).
    pub fn to_keras(&self) -> Vec<f32> {
        if !self.transposed {
            return self.value.clone();
        }
        let (r, c) = (self.shape[0], self.shape[1]);
        (0..r * c).map(|k| self.value[(k % c) * r + k / c]).collect()
    }

    /// Sets the values from Keras's layout (`shape`, row-major); `v` must have as many
    /// elements.
    pub fn set_from_keras(&mut self, v: &[f32]) -> Result<()> {
        if v.len() != self.value.len() {
            return Err(Error::Config(format!("{}: {} values for shape {:?}", self.name, v.len(), self.shape)));
        }
        if !self.transposed {
            self.value.copy_from_slice(v);
            return Ok(());
        }
        let (r, c) = (self.shape[0], self.shape[1]);
        for (k, &x) in v.iter().enumerate() {
            self.value[(k % c) * r + k / c] = x;
        }
        Ok(())
    }
}

/// Glorot (Xavier) uniform initialisation, Keras's default for kernels:
/// `U(-l, l)` with `l = sqrt(6 / (fan_in + fan_out))`.
/// An error (not an allocation abort) when the weights cannot be allocated.
pub(crate) fn glorot_uniform(rng: &mut Rng, len: usize, fan_in: usize, fan_out: usize) -> Result<Vec<f32>> {
    let limit = (6.0 / (fan_in as f64 + fan_out as f64)).sqrt() as f32;
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|e| Error::Config(format!("cannot allocate {len} weights: {e}")))?;
    v.extend((0..len).map(|_| rng.uniform(-limit, limit)));
    Ok(v)
}

/// What a forward pass is for.
pub struct Ctx<'a> {
    /// Training (dropout active) or inference.
    pub training: bool,
    /// Random numbers for dropout.
    pub rng: &'a mut Rng,
}

/// A layer of a [`crate::Sequential`] model.
pub trait Layer: Send + Any {
    /// The layer's name (`conv2d`, `dense_1`, ...), unique within a model.
    fn name(&self) -> &str;
    /// Renames the layer (the model names layers as Keras does when they are added).
    fn set_name(&mut self, name: String);
    /// Keras's class name (`Conv2D`), shown by `summary()`.
    fn class_name(&self) -> &'static str;
    /// The per-sample input shape this layer declares, if any (the first layer's sets the
    /// model's input).
    fn declared_input_shape(&self) -> Option<&[usize]> {
        None
    }
    /// Builds the layer for a per-sample input shape: checks that it fits, creates the
    /// weights, and returns the per-sample output shape.
    fn build(&mut self, input: &[usize], rng: &mut Rng) -> Result<Vec<usize>>;
    /// The trainable parameters (empty for layers without weights).
    fn params(&self) -> &[Param] {
        &[]
    }
    /// The trainable parameters, mutable.
    fn params_mut(&mut self) -> &mut [Param] {
        &mut []
    }
    /// The activation applied at the end of the layer.
    fn activation(&self) -> Activation {
        Activation::Linear
    }
    /// Makes a trailing softmax produce logits instead (the loss then applies it, fused with
    /// the cross-entropy). Returns whether the layer had a softmax to drop.
    fn emit_logits(&mut self, _logits: bool) -> bool {
        false
    }
    /// Whether the output is the input's memory reinterpreted (Flatten): the model then
    /// runs nothing for it.
    fn is_reshape(&self) -> bool {
        false
    }
    /// `y = layer(x)` for `n` samples; `x` and `y` hold `n` samples each.
    fn forward(&mut self, x: &[f32], y: &mut [f32], n: usize, ctx: &mut Ctx) -> Result<()>;
    /// From `dy` (the gradient of `y`; the layer may overwrite it), the parameter gradients
    /// (added to the current ones with `accumulate`: a batch processed in parts) and, if
    /// `dx` is given, the gradient of `x`. `x` and `y` are the last forward pass's.
    fn backward(
        &mut self,
        x: &[f32],
        y: &[f32],
        dy: &mut [f32],
        dx: Option<&mut [f32]>,
        n: usize,
        accumulate: bool,
    ) -> Result<()>;
    /// For the model's planner: downcasting to the concrete layer.
    fn as_any(&self) -> &dyn Any;
    /// For the model's planner: downcasting to the concrete layer.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// The `Layer` methods every layer writes the same way: its name (in field `$($name)+`)
/// and the downcasts the planner uses.
macro_rules! layer_plumbing {
    ($($name:ident).+) => {
        fn name(&self) -> &str {
            &self.$($name).+
        }
        fn set_name(&mut self, name: String) {
            self.$($name).+ = name;
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
        fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
            self
        }
    };
}
pub(crate) use layer_plumbing;

/// A per-sample shape of rank 3 (`[h, w, c]`), or an error naming the layer.
pub(crate) fn image_shape(layer: &str, input: &[usize]) -> Result<[usize; 3]> {
    match *input {
        [h, w, c] => Ok([h, w, c]),
        _ => Err(Error::LayerShape {
            layer: layer.into(),
            input: input.to_vec(),
            what: "expects images [height, width, channels]".into(),
        }),
    }
}

/// Wraps a kernel's shape error as a layer error that names the layer and its input.
pub(crate) fn shape_err<'a>(layer: &'a str, input: &'a [usize]) -> impl FnOnce(ember_kernels::Error) -> Error + 'a {
    move |e| Error::LayerShape { layer: layer.into(), input: input.to_vec(), what: e.to_string() }
}

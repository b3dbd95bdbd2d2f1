//! Layers: one file each, Keras's names and defaults. A layer is configured by a builder,
//! built once for its per-sample input shapes (declaring its tensors in the parameter
//! store, keeping their ids), then runs batches of `n` samples laid out one after another
//! (NHWC images, `[n, features]` vectors).
//!
//! The contract ([`Layer`]): a built layer is immutable. Both passes get the mode
//! ([`Mode`]: training or inference), read the weights from the store, and keep what the
//! backward pass needs from the forward pass (argmax, dropout masks, scratch) in a
//! [`Workspace`] the executor hands them, one per layer and shard; so one model can run
//! several shards of a batch at once. What the planner needs to know of a layer is data
//! ([`LayerTraits`]), not methods that exist for it alone.

mod activation;
mod add;
mod batch_norm;
mod concatenate;
mod conv2d;
mod dense;
mod depthwise_conv2d;
mod dropout;
mod flatten;
mod global_pooling;
mod pooling;

pub use activation::{Activation, ActivationLayer};
pub use add::Add;
pub use batch_norm::BatchNormalization;
pub use concatenate::Concatenate;
pub use conv2d::Conv2D;
pub use dense::Dense;
pub use depthwise_conv2d::{DepthwiseConv2D, SeparableConv2D};
pub use dropout::Dropout;
/// TensorFlow's VALID / SAME padding (re-exported from `ember_kernels::conv`).
pub use ember_kernels::conv::Padding;
pub use flatten::Flatten;
pub use global_pooling::{GlobalAveragePooling2D, GlobalMaxPooling2D};
pub use pooling::{AveragePooling2D, MaxPooling2D};

use crate::error::{Error, Result};
use crate::params::{ParamBuilder, ParamId, ParamKind, Weights};
use crate::rng::Rng;
use std::any::Any;

/// What a pass is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mode {
    /// Training (dropout active, batch statistics) or inference.
    pub training: bool,
    /// Leave out the layer's trailing activation: the loss takes the logits (the
    /// cross-entropy fusion rule sets this on the op that produces the model's output, whose
    /// activation is the one the loss absorbs).
    pub logits: bool,
    /// The seed of this step's random draws (dropout masks): a function of the model's seed
    /// and the step number only.
    pub seed: u64,
    /// The index within the batch of the first sample of this call: random draws depend on
    /// (seed, layer, sample), never on how a batch is split into parts, shards or ranks.
    pub first_sample: usize,
}

/// What the planner reads of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerTraits {
    /// The output is the input's memory reinterpreted (Flatten): nothing runs for it, and
    /// its output shares the input's buffer.
    pub view: bool,
    /// The layer mixes the samples of a batch (batch normalization's statistics): unless
    /// the planner runs it as an op with reduction halves (batch normalization's), its
    /// batch cannot be split into parts.
    pub couples_batch: bool,
    /// The backward pass adds an input's gradient to what its buffer holds where
    /// [`Backward::add_to_dx`] asks it to: where a value feeds several layers, its
    /// gradients then sum in place, without a buffer and a pass for the sum.
    pub adds_input_gradient: bool,
}

/// A layer's padding as a model definition writes it: a [`Padding`], or Keras's strings
/// `"valid"` and `"same"` (any case). A string that is neither is reported when the layer
/// is built.
pub trait IntoPadding {
    /// The padding, or what is wrong with the string.
    fn into_padding(self) -> std::result::Result<Padding, String>;
}

impl IntoPadding for Padding {
    fn into_padding(self) -> std::result::Result<Padding, String> {
        Ok(self)
    }
}

impl IntoPadding for &str {
    fn into_padding(self) -> std::result::Result<Padding, String> {
        match self.to_ascii_lowercase().as_str() {
            "valid" => Ok(Padding::Valid),
            "same" => Ok(Padding::Same),
            _ => Err(format!("padding {self:?}: expected \"valid\" or \"same\"")),
        }
    }
}

/// The padding a builder was given, or a configuration error naming the layer.
pub(crate) fn padding_of(layer: &str, p: &std::result::Result<Padding, String>) -> Result<Padding> {
    p.clone().map_err(|e| Error::Config(format!("{layer}: {e}")))
}

/// Whether a layer runs fused with its neighbours (a fusion rule's pattern).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fusion {
    /// The planner decides (its rule, and the model's `set_fusion`).
    #[default]
    Auto,
    /// Fuse wherever the pattern holds, even with the model's fusion off.
    On,
    /// Never fuse this layer.
    Off,
}

/// Floating-point operations of a layer's passes over a batch, counted as a direct
/// implementation does them (2 per multiply-add, whatever algorithm runs: Winograd's
/// savings show as a rate above the peak). Elementwise and pooling work counts 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flops {
    /// `y = layer(x)`.
    pub forward: u64,
    /// The input gradient.
    pub backward_data: u64,
    /// The weight gradient.
    pub backward_weights: u64,
}

/// Per-layer, per-shard side data of a step: whatever the backward pass needs from the
/// forward pass, and scratch. Owned by the executor; sized by the layer on use.
#[derive(Debug, Clone, Default)]
pub struct Workspace {
    /// Indices (max-pooling argmax).
    pub indices: Vec<u32>,
    /// Values kept from forward to backward (dropout masks).
    pub kept: Vec<f32>,
    /// Scratch within one pass (a part's gradient before it is added).
    pub scratch: Vec<f32>,
    /// The gradient of a value inside the layer, within the backward pass (a separable
    /// convolution's depthwise output).
    pub inner_grad: Vec<f32>,
    /// The workspaces of the stateful layers a fused op runs inside it (one each, in the
    /// op's order: the batch normalizations of a `bn_add_relu` join).
    pub inner: Vec<Workspace>,
}

/// The arguments of a forward pass over `n` samples.
pub struct Forward<'a> {
    /// The weights.
    pub weights: Weights<'a>,
    /// The inputs, `n` samples each.
    pub x: &'a [&'a [f32]],
    /// The output, `n` samples.
    pub y: &'a mut [f32],
    /// Samples.
    pub n: usize,
    /// This layer's side data in this shard.
    pub ws: &'a mut Workspace,
    /// Training or inference.
    pub mode: Mode,
}

/// The arguments of a backward pass over the `n` samples of the last forward pass.
pub struct Backward<'a, 'b> {
    /// The weights.
    pub weights: Weights<'a>,
    /// The gradient arena (the store's trainable length) this pass writes into.
    pub grads: &'a mut [f32],
    /// Add the parameter gradients to what `grads` holds (a batch run in parts) instead of
    /// overwriting them.
    pub accumulate: bool,
    /// Whether to compute the parameter gradients at all: false when the pass only carries
    /// gradients to the input or an inner layer (attributions), where `grads` is scratch.
    pub weight_grads: bool,
    /// The forward pass's inputs.
    pub x: &'a [&'a [f32]],
    /// The forward pass's output.
    pub y: &'a [f32],
    /// The gradient of `y`; the layer may overwrite it.
    pub dy: &'a mut [f32],
    /// Per input, where to write its gradient (overwriting), or `None` when not needed.
    pub dx: &'a mut [Option<&'b mut [f32]>],
    /// Per input, whether `dx[q]` already holds a gradient (its value feeds several layers)
    /// that this pass adds its own to instead of overwriting it. Only ever true for a layer
    /// whose [`LayerTraits::adds_input_gradient`] is set; missing entries are false.
    pub add_to_dx: &'a [bool],
    /// Samples.
    pub n: usize,
    /// This layer's side data in this shard (as the forward pass left it).
    pub ws: &'a mut Workspace,
    /// Training or inference (as in the forward pass).
    pub mode: Mode,
}

/// A layer of a model.
pub trait Layer: Send + Sync + Any {
    /// The layer's name (`conv2d`, `dense_1`, ...), unique within a model.
    fn name(&self) -> &str;
    /// Renames the layer (the model names layers as Keras does).
    fn set_name(&mut self, name: String);
    /// Keras's class name (`Conv2D`), shown by `summary()`.
    fn class_name(&self) -> &'static str;
    /// The per-sample input shape this layer declares, if any (the first layer of a
    /// `Sequential` sets the model's input with it).
    fn declared_input_shape(&self) -> Option<&[usize]> {
        None
    }
    /// Builds the layer for its inputs' per-sample shapes: checks that they fit, declares
    /// its tensors in `params`, and returns the per-sample output shape.
    fn build(&mut self, inputs: &[&[usize]], params: &mut ParamBuilder, rng: &mut Rng) -> Result<Vec<usize>>;
    /// The ids of the layer's tensors (after `build`).
    fn params(&self) -> &[ParamId] {
        &[]
    }
    /// What the planner reads.
    fn traits(&self) -> LayerTraits {
        LayerTraits::default()
    }
    /// The activation applied at the end of the layer.
    fn activation(&self) -> Activation {
        Activation::Linear
    }
    /// After a training step, updates the layer's non-trainable state in `store` from what
    /// the forward pass left in `ws` (batch normalization's moving statistics): statistics
    /// of the whole batch (the reduced ones where the batch ran in parts, else the batch
    /// ran whole, [`LayerTraits::couples_batch`]).
    fn update_state(&self, _ws: &Workspace, _store: &mut crate::params::ParamStore) -> Result<()> {
        Ok(())
    }
    /// The operations of each pass over `n` samples (after `build`).
    fn flops(&self, _n: usize) -> Flops {
        Flops::default()
    }
    /// `y = layer(x)`.
    fn forward(&self, f: Forward<'_>) -> Result<()>;
    /// Parameter gradients and input gradients from the output gradient.
    fn backward(&self, b: Backward<'_, '_>) -> Result<()>;
    /// The concrete layer, for the fusion rules that match on it.
    fn as_any(&self) -> &dyn Any;
    /// A copy of the layer, boxed: its configuration and name (and, once built, the ids of
    /// its tensors, which building it into another model replaces).
    fn clone_layer(&self) -> Box<dyn Layer>;
}

/// The `Layer` methods every layer writes the same way: its name (in field `$($name)+`),
/// the downcast the fusion rules use, and the copy export makes.
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
        fn clone_layer(&self) -> Box<dyn $crate::layers::Layer> {
            Box::new(self.clone())
        }
    };
}
pub(crate) use layer_plumbing;

/// The one input of a single-input layer, or an error naming the layer.
pub(crate) fn single_input<'s>(layer: &str, inputs: &[&'s [usize]]) -> Result<&'s [usize]> {
    match inputs {
        [x] => Ok(x),
        _ => Err(Error::Config(format!("layer {layer} takes one input, got {}", inputs.len()))),
    }
}

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

/// Declares `layer/bias` of `len` zeros (trainable, Keras's layout).
pub(crate) fn declare_bias(params: &mut ParamBuilder, layer: &str, len: usize) -> Result<ParamId> {
    params.declare(
        format!("{layer}/bias"),
        vec![len],
        ParamKind::Trainable,
        crate::params::Layout::Keras,
        vec![0.0; len],
    )
}

/// Copies `x` to `y` (same length): identity passes.
pub(crate) fn copy(x: &[f32], y: &mut [f32]) {
    use rayon::prelude::*;
    // Chunks across the pool: one thread alone does not reach the memory's bandwidth.
    const CHUNK: usize = 16 * 1024;
    y.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(a, b)| a.copy_from_slice(b));
}

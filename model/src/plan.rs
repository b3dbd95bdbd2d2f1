//! The plan: how a model's layers map onto kernel calls, decided once at `compile()`.
//!
//! - `Conv2D(relu)` directly followed by a 2x2/2 VALID `MaxPooling2D` is one fused step
//!   (`ember_kernels::conv::conv_relu_maxpool_*`): the full-resolution activation is never
//!   stored, and backward starts from the pooled gradient.
//! - `Flatten` changes no memory (NHWC is row-major): it is no step at all.
//! - A softmax at the end of the model, under a cross-entropy on probabilities, is dropped
//!   from the layer during training and fused into the loss (computed from the logits).
//! - Steps before the first one with weights run no backward pass, and the first one with
//!   weights computes no input gradient.
//! - A batch runs in parts of [`PART`] samples (forward, loss, backward each), its
//!   parameter gradients accumulated over the parts.

use crate::layers::{Conv2D, Layer, MaxPooling2D};

/// Samples per part of a batch: a training step runs forward, loss and backward part by
/// part (parameter gradients add up over the parts), so that a part's activations (about
/// 0.4 MB for the reference model's 8 images) stay in the L2 cache between the passes
/// instead of streaming a whole batch's through memory. The parts depend only on the batch
/// size, never on the thread count.
pub const PART: usize = 8;

/// One unit of execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// A layer on its own.
    Layer(usize),
    /// A ReLU convolution and the 2x2 max pooling after it, as one fused kernel.
    ConvReluPool {
        /// Index of the `Conv2D`.
        conv: usize,
        /// Index of the `MaxPooling2D`.
        pool: usize,
    },
}

/// A step and the per-sample length of what it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// What runs.
    pub kind: StepKind,
    /// Elements per sample of its output.
    pub out_len: usize,
}

impl Step {
    /// The index of the last layer the step covers.
    pub fn last_layer(&self) -> usize {
        match self.kind {
            StepKind::Layer(i) => i,
            StepKind::ConvReluPool { pool, .. } => pool,
        }
    }
}

/// Plans `layers`, whose built output shapes are `shapes`; `fuse` enables the fused steps.
pub fn plan(layers: &[Box<dyn Layer>], shapes: &[Vec<usize>], fuse: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut i = 0;
    while i < layers.len() {
        let len = |j: usize| shapes[j].iter().product();
        if fuse && i + 1 < layers.len() {
            let conv = layers[i].as_any().downcast_ref::<Conv2D>();
            let pool = layers[i + 1].as_any().downcast_ref::<MaxPooling2D>();
            if let (Some(c), Some(p)) = (conv, pool) {
                if c.fusable() && p.is_fusable() {
                    steps.push(Step { kind: StepKind::ConvReluPool { conv: i, pool: i + 1 }, out_len: len(i + 1) });
                    i += 2;
                    continue;
                }
            }
        }
        if !layers[i].is_reshape() {
            steps.push(Step { kind: StepKind::Layer(i), out_len: len(i) });
        }
        i += 1;
    }
    steps
}

/// A readable description of the plan, one line per step.
pub fn describe(layers: &[Box<dyn Layer>], steps: &[Step]) -> String {
    steps
        .iter()
        .map(|s| match s.kind {
            StepKind::Layer(i) => format!("{} ({})", layers[i].name(), layers[i].class_name()),
            StepKind::ConvReluPool { conv, pool } => {
                format!("{} + {} (fused conv+bias+relu+maxpool)", layers[conv].name(), layers[pool].name())
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

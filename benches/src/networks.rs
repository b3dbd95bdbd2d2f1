//! The networks of the benchmark suite, as users write them (the same three in
//! `scripts/keras_seed.py --model`):
//!
//! - `seed`: Keras's reference program, `Conv2D(32, 3x3, relu) -> MaxPooling2D(2) ->
//!   Flatten -> Dense(10, softmax)` on 28x28x1, batch 32;
//! - `convnet`: keras.io's "Simple MNIST convnet", `Conv2D(32, 3x3, relu) -> MaxPooling2D(2)
//!   -> Conv2D(64, 3x3, relu) -> MaxPooling2D(2) -> Flatten -> Dropout(0.5) ->
//!   Dense(10, softmax)` on 28x28x1, batch 128;
//! - `cifar`: TensorFlow's CIFAR-10 tutorial CNN, `Conv2D(32, 3x3, relu) -> MaxPooling2D(2)
//!   -> Conv2D(64, 3x3, relu) -> MaxPooling2D(2) -> Conv2D(64, 3x3, relu) -> Flatten ->
//!   Dense(64, relu) -> Dense(10)` on 32x32x3 with cross-entropy from the logits, batch 32;
//! - `resnet`: the mnist example's residual network (issue 14), `Conv2D(32, 3x3, same)-BN-ReLU`,
//!   two residual blocks (conv-BN-ReLU-conv-BN + identity, ReLU), a strided block to 64
//!   channels with a 1x1 projection shortcut, global average pooling, `Dense(10)` logits, on
//!   28x28x1, batch 128.
//!
//! All with Adam and sparse categorical cross-entropy, on synthetic data.

use ember_model::layers::{Activation, Conv2D, Dense, Dropout, Flatten, MaxPooling2D};
use ember_model::losses::{Loss, Metric};
use ember_model::optimizers::Adam;
use ember_model::{Model, Sequential};

/// A network of the suite with its batch size and per-sample input shape.
pub struct Network {
    /// `seed`, `convnet`, `cifar` or `resnet`.
    pub name: &'static str,
    /// The compiled model.
    pub model: Model,
    /// Samples per step.
    pub batch: usize,
    /// Per-sample input shape.
    pub input: [usize; 3],
}

/// The names of the suite's networks.
pub const NAMES: [&str; 4] = ["seed", "convnet", "cifar", "resnet"];

/// Network `name` on `threads` threads (0: all CPUs), compiled; `None` for an unknown name.
pub fn network(name: &str, threads: usize) -> Option<Network> {
    let relu_conv = |f: usize| Conv2D::new(f, (3, 3)).activation(Activation::Relu);
    let mut m = Sequential::new();
    m.seed(1).set_threads(threads).expect("threads");
    let (batch, input, from_logits) = match name {
        "seed" => {
            m.add(relu_conv(32).input_shape([28, 28, 1]))
                .add(MaxPooling2D::new((2, 2)))
                .add(Flatten::new())
                .add(Dense::new(10).activation(Activation::Softmax));
            (32, [28, 28, 1], false)
        }
        "convnet" => {
            m.add(relu_conv(32).input_shape([28, 28, 1]))
                .add(MaxPooling2D::new((2, 2)))
                .add(relu_conv(64))
                .add(MaxPooling2D::new((2, 2)))
                .add(Flatten::new())
                .add(Dropout::new(0.5))
                .add(Dense::new(10).activation(Activation::Softmax));
            (128, [28, 28, 1], false)
        }
        "cifar" => {
            m.add(relu_conv(32).input_shape([32, 32, 3]))
                .add(MaxPooling2D::new((2, 2)))
                .add(relu_conv(64))
                .add(MaxPooling2D::new((2, 2)))
                .add(relu_conv(64))
                .add(Flatten::new())
                .add(Dense::new(64).activation(Activation::Relu))
                .add(Dense::new(10));
            (32, [32, 32, 3], true)
        }
        "resnet" => {
            let mut model = resnet();
            model.seed(1).set_threads(threads).expect("threads");
            let loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
            model.compile(Adam::new(), loss, &[Metric::Accuracy]).expect("compile");
            return Some(Network { name: "resnet", model, batch: 128, input: [28, 28, 1] });
        }
        _ => return None,
    };
    let loss = Loss::SparseCategoricalCrossentropy { from_logits };
    m.compile(Adam::new(), loss, &[Metric::Accuracy]).expect("compile");
    Some(Network { name: NAMES.into_iter().find(|n| *n == name)?, model: m.into_model(), batch, input })
}

/// The mnist example's networks, compiled from the example's own source so that its
/// residual network is written once (the suite uses only that builder; the example's
/// training settings go unused here).
#[allow(dead_code)]
#[path = "../../model/examples/mnist/networks.rs"]
mod example;

/// The mnist example's residual network, with the default convolution algorithm.
fn resnet() -> Model {
    example::resnet(ember_kernels::conv::ConvAlgo::Auto).expect("the residual network")
}

/// A synthetic batch for `net`: inputs like scaled image bytes (about 60% zeros for MNIST
/// shapes) and labels cycling through the 10 classes.
pub fn batch(net: &Network) -> (Vec<f32>, Vec<u32>) {
    let len = net.batch * net.input.iter().product::<usize>();
    let x = crate::fill(7, len).iter().map(|v| if *v < 0.6 { 0.0 } else { (v - 0.6) * 2.5 }).collect();
    let labels = (0..net.batch as u32).map(|i| i % 10).collect();
    (x, labels)
}

//! Finite-difference checks of every layer's backward pass and of the loss, through whole
//! models (so each layer's input gradient is checked by the layers before it), fused and
//! unfused.
//!
//! Central differences in f32 with step h = 1e-3 on a loss of order 1: truncation error
//! ~h²·|f'''| and rounding ~ε·|f|/h ≈ 1e-5; kinks (ReLU, max) are avoided by random data
//! (a tie or a zero crossing within h of a sample point is improbable; where one happens
//! the quotients for h and h/4 disagree and the point is skipped, at most one in five).
//! Each checked entry must agree within 2e-3 + 2% of its magnitude.

mod common;

use ember_kernels::conv::Padding;
use ember_model::layers::Add;
use ember_model::layers::{
    Activation, ActivationLayer, AveragePooling2D, Conv2D, Dense, Dropout, Flatten, MaxPooling2D,
};
use ember_model::losses::{Loss, Metric};
use ember_model::optimizers::Sgd;
use ember_model::rng::Rng;
use ember_model::{Apply, Input, Model, Sequential};

fn check(m: impl std::ops::DerefMut<Target = Model>, input: [usize; 3], classes: u32, fuse: bool, what: &str) {
    check_model(m, input, classes, fuse, true, what)
}

fn check_model(
    m: impl std::ops::DerefMut<Target = Model>,
    input: [usize; 3],
    classes: u32,
    fuse: bool,
    compile: bool,
    what: &str,
) {
    check_samples(m, input, classes, (fuse, compile), what, 3);
}

/// [`check_model`] over a batch of `n` samples.
fn check_samples(
    mut m: impl std::ops::DerefMut<Target = Model>,
    input: [usize; 3],
    classes: u32,
    (fuse, compile): (bool, bool),
    what: &str,
    n: usize,
) {
    let m = &mut *m;
    m.set_fusion(fuse);
    if compile {
        m.compile(Sgd::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[Metric::Accuracy]).unwrap();
    }
    let mut rng = Rng::new(11);
    let x: Vec<f32> = (0..n * input.iter().product::<usize>()).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let labels: Vec<u32> = (0..n).map(|i| i as u32 % classes).collect();
    m.loss_and_gradients(&x, &labels).unwrap();
    let analytic = common::grads(m);
    let h = 1e-3f32;
    let (mut checked, mut kinks) = (0, 0);
    for (pi, g) in analytic.iter().enumerate() {
        // Up to 12 entries per parameter, spread over it.
        let step = (g.len() / 12).max(1);
        for j in (0..g.len()).step_by(step) {
            let mut at = |delta: f32| {
                let id = m.params().table().ids().nth(pi).unwrap();
                let old = m.params().value(id)[j];
                m.params_mut().value_mut(id)[j] = old + delta;
                let l = m.loss_and_gradients(&x, &labels).unwrap();
                m.params_mut().value_mut(id)[j] = old;
                l
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            // A kink (ReLU zero crossing, max-pooling switch) inside [-h, h] makes the
            // difference quotient depend on h: such points are not differentiable samples
            // and are skipped (at most a fifth of them, else the test fails).
            let fd4 = (at(h / 4.0) - at(-h / 4.0)) / (h / 2.0);
            if (fd - fd4).abs() > 1e-3 + 0.01 * fd.abs() {
                kinks += 1;
                continue;
            }
            assert!(
                (fd - g[j]).abs() <= 2e-3 + 0.02 * g[j].abs().max(fd.abs()),
                "{what}: parameter {pi} entry {j}: finite difference {fd} vs backward {}",
                g[j]
            );
            checked += 1;
        }
    }
    assert!(checked > 10 && kinks * 5 <= checked, "{what}: {checked} entries checked, {kinks} skipped at kinks");
}

#[test]
fn seed_architecture_fused_and_unfused() {
    for fuse in [false, true] {
        check(common::seed_model(8, 4, 3, 1), [8, 8, 1], 3, fuse, &format!("seed model, fused {fuse}"));
    }
}

#[test]
fn deeper_cnn_every_layer() {
    // Two convolutions (the second one needs its input gradient, fused and not), same
    // padding and strides, average pooling, a ReLU dense layer and a separate softmax.
    for fuse in [false, true] {
        let mut m = Sequential::new();
        m.seed(5);
        m.add(Conv2D::new(3, (3, 3)).activation(Activation::Relu).padding(Padding::Same).input_shape([9, 9, 2]))
            .add(AveragePooling2D::new((2, 2)).strides((1, 1)))
            .add(Conv2D::new(4, (3, 3)).activation(Activation::Relu))
            .add(MaxPooling2D::new((2, 2)))
            .add(Conv2D::new(3, (2, 2)).strides((2, 2)).padding(Padding::Same).use_bias(false))
            .add(Flatten::new())
            .add(Dense::new(5).activation(Activation::Relu))
            .add(Dropout::new(0.0))
            .add(Dense::new(3))
            .add(ActivationLayer::new(Activation::Softmax));
        check(m, [9, 9, 2], 3, fuse, &format!("deeper CNN, fused {fuse}"));
    }
}

#[test]
fn dense_only_and_probabilities_loss() {
    // Softmax as the loss's input (no fusion possible when from_logits is false and the
    // softmax is not last: here it is last, but a linear output with from_logits=true).
    let mut m = Sequential::new();
    m.seed(3);
    m.add(Flatten::new()).add(Dense::new(6).activation(Activation::Relu)).add(Dense::new(4));
    m.input(&[2, 3, 1]);
    m.compile(Sgd::new(), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[]).unwrap();
    check_model(m, [2, 3, 1], 4, true, false, "dense, from logits");
}

/// A functional model whose inner value `h` feeds three layers (two convolutions and a
/// residual `Add`): its gradient is the sum of theirs, checked through the convolution
/// before it; fused and unfused (the pooled branch fuses). The branch convolutions are
/// linear: with ReLUs on them too, this small model puts a ReLU kink within h of some
/// sample points in a way the h vs h/4 test does not always catch (seen: one entry off by
/// 4e-3, matching the analytic gradient at h = 3e-4).
fn branching_model(seed: u64) -> Box<Model> {
    let x = Input::new(&[8, 8, 2]);
    let h = Conv2D::new(3, (3, 3)).padding(Padding::Same).activation(Activation::Relu).apply(&x);
    let a = Conv2D::new(3, (3, 3)).padding(Padding::Same).apply(&h);
    let b = Conv2D::new(3, (1, 1)).apply(&h);
    let s = Add::new().apply_to(&[&a, &b, &h]);
    let p = Conv2D::new(4, (3, 3)).activation(Activation::Relu).apply(&s);
    let p = MaxPooling2D::new((2, 2)).apply(&p);
    let y = Dense::new(3).activation(Activation::Softmax).apply(&Flatten::new().apply(&p));
    let mut m = Model::new(&x, &y).unwrap();
    m.seed(seed);
    Box::new(m)
}

#[test]
fn every_activation_in_dense_conv_and_its_own_layer() {
    use ember_model::layers::Activation::*;
    for act in [Sigmoid, Tanh, Elu, Selu, Gelu, Silu, LeakyRelu, Softplus] {
        let mut m = Sequential::new();
        m.seed(8);
        m.add(Conv2D::new(3, (3, 3)).activation(act).input_shape([5, 5, 2]))
            .add(Flatten::new())
            .add(Dense::new(6).activation(act))
            .add(ActivationLayer::new(act))
            .add(Dense::new(3));
        m.compile(Sgd::new(), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[]).unwrap();
        check_model(m, [5, 5, 2], 3, true, false, &format!("{act:?}"));
    }
}

#[test]
fn dilated_convolutions() {
    for fuse in [false, true] {
        let mut m = Sequential::new();
        m.seed(12);
        m.add(
            Conv2D::new(3, (3, 3))
                .dilation_rate((2, 2))
                .padding("same")
                .activation(Activation::Relu)
                .input_shape([9, 9, 2]),
        )
        .add(Conv2D::new(4, (2, 3)).dilation_rate((2, 1)).activation(Activation::Relu))
        .add(MaxPooling2D::new((2, 2)))
        .add(Flatten::new())
        .add(Dense::new(3).activation(Activation::Softmax));
        check(m, [9, 9, 2], 3, fuse, &format!("dilated, fused {fuse}"));
    }
}

#[test]
fn every_loss_fused_and_not() {
    let cases = [
        (Loss::CATEGORICAL_CROSSENTROPY, Activation::Softmax, 3),
        (Loss::CategoricalCrossentropy { from_logits: false, label_smoothing: 0.2 }, Activation::Softmax, 3),
        (Loss::CategoricalCrossentropy { from_logits: true, label_smoothing: 0.1 }, Activation::Linear, 3),
        (Loss::BINARY_CROSSENTROPY, Activation::Sigmoid, 1),
        (Loss::BinaryCrossentropy { from_logits: false, label_smoothing: 0.1 }, Activation::Sigmoid, 1),
        (Loss::BinaryCrossentropy { from_logits: true, label_smoothing: 0.0 }, Activation::Linear, 1),
        (Loss::MeanSquaredError, Activation::Softmax, 3),
        (Loss::MeanSquaredError, Activation::Linear, 1),
    ];
    for (loss, act, width) in cases {
        for fuse in [false, true] {
            let mut m = Sequential::new();
            m.seed(4);
            m.add(Conv2D::new(3, (3, 3)).activation(Activation::Relu).input_shape([6, 6, 1]))
                .add(MaxPooling2D::new((2, 2)))
                .add(Flatten::new())
                .add(Dense::new(width).activation(act));
            m.set_fusion(fuse);
            m.compile(Sgd::new(), loss, &[]).unwrap();
            let classes = if width == 1 { 2 } else { width as u32 };
            check_model(m, [6, 6, 1], classes, fuse, false, &format!("{loss:?} after {act:?}, fused {fuse}"));
        }
    }
}

#[test]
fn batch_normalization_in_training_mode() {
    use ember_model::layers::BatchNormalization;
    // Fused: the first normalization and its ReLU run as one op (`bn_relu`); unfused: as
    // the layers.
    for (center, scale, fuse) in [(true, true, true), (false, true, true), (true, false, true), (true, true, false)] {
        let mut m = Sequential::new();
        m.seed(10);
        m.add(Conv2D::new(4, (3, 3)).use_bias(false).input_shape([7, 7, 2]))
            .add(BatchNormalization::new().center(center).scale(scale))
            .add(ActivationLayer::new(Activation::Relu))
            .add(MaxPooling2D::new((2, 2)))
            .add(Flatten::new())
            .add(Dense::new(6))
            .add(BatchNormalization::new())
            .add(Dense::new(3).activation(Activation::Softmax));
        check(m, [7, 7, 2], 3, fuse, &format!("batch norm, center {center}, scale {scale}, fused {fuse}"));
    }
}

/// The example's residual network in miniature: Conv-BN-ReLU, a residual block, a strided
/// block with a 1x1 projection shortcut, global average pooling, Dense logits.
#[test]
fn a_residual_network_end_to_end() {
    use ember_model::layers::{BatchNormalization, GlobalAveragePooling2D};
    let conv = |f: usize, s: usize, k: usize| Conv2D::new(f, (k, k)).strides((s, s)).padding("same").use_bias(false);
    let bn = |x: &ember_model::Node| BatchNormalization::new().apply(x);
    let relu = |x: &ember_model::Node| ActivationLayer::new(Activation::Relu).apply(x);
    let x = Input::new(&[8, 8, 1]);
    let h = relu(&bn(&conv(4, 1, 3).apply(&x)));
    let r = bn(&conv(4, 1, 3).apply(&relu(&bn(&conv(4, 1, 3).apply(&h)))));
    let h = relu(&Add::new().apply_to(&[&h, &r]));
    let r = bn(&conv(6, 1, 3).apply(&relu(&bn(&conv(6, 2, 3).apply(&h)))));
    let h = relu(&Add::new().apply_to(&[&r, &bn(&conv(6, 2, 1).apply(&h))]));
    let y = Dense::new(3).apply(&GlobalAveragePooling2D::new().apply(&h));
    let mut m = Model::new(&x, &y).unwrap();
    m.seed(21);
    m.compile(Sgd::new(), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[]).unwrap();
    check_model(Box::new(m), [8, 8, 1], 3, true, false, "residual network");
}

/// The residual network over a batch of 67: nine parts, in eight shards of up to two
/// parts each (a shard then holds two parts' values in each buffer, where values of
/// different sizes take turns), joined by every normalization's reductions forward and
/// backward.
#[test]
fn a_residual_network_over_a_batch_in_parts() {
    use ember_model::layers::{BatchNormalization, GlobalAveragePooling2D};
    let conv = |f: usize, s: usize, k: usize| Conv2D::new(f, (k, k)).strides((s, s)).padding("same").use_bias(false);
    let bn = |x: &ember_model::Node| BatchNormalization::new().apply(x);
    let relu = |x: &ember_model::Node| ActivationLayer::new(Activation::Relu).apply(x);
    let x = Input::new(&[6, 6, 1]);
    let h = relu(&bn(&conv(3, 1, 3).apply(&x)));
    let r = bn(&conv(3, 1, 3).apply(&relu(&bn(&conv(3, 1, 3).apply(&h)))));
    let h = relu(&Add::new().apply_to(&[&h, &r]));
    let h = relu(&Add::new().apply_to(&[&bn(&conv(4, 2, 3).apply(&h)), &bn(&conv(4, 2, 1).apply(&h))]));
    let y = Dense::new(3).apply(&GlobalAveragePooling2D::new().apply(&h));
    let mut m = Model::new(&x, &y).unwrap();
    m.seed(22);
    m.compile(Sgd::new(), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[]).unwrap();
    check_samples(Box::new(m), [6, 6, 1], 3, (true, false), "residual network in parts", 67);
}

/// Joins whose plain input's gradient another consumer writes first (a convolution after
/// the join reads it too: the join adds its share in place) or that take one value twice
/// (its buffer cannot also carry the join's gradient between the backward's halves), over
/// 67 samples in parts.
#[test]
fn joins_that_share_their_plain_input() {
    use ember_model::layers::{BatchNormalization, GlobalAveragePooling2D};
    let conv = |f: usize| Conv2D::new(f, (3, 3)).padding("same").use_bias(false);
    let bn = |x: &ember_model::Node| BatchNormalization::new().apply(x);
    let relu = |x: &ember_model::Node| ActivationLayer::new(Activation::Relu).apply(x);
    let x = Input::new(&[5, 5, 1]);
    let h = relu(&bn(&conv(3).apply(&x)));
    let j = relu(&Add::new().apply_to(&[&bn(&conv(3).apply(&h)), &h]));
    let z = conv(3).apply(&h);
    let k = relu(&Add::new().apply_to(&[&j, &bn(&conv(3).apply(&j)), &j]));
    let y = Dense::new(3).apply(&GlobalAveragePooling2D::new().apply(&Add::new().apply_to(&[&k, &z])));
    let mut m = Model::new(&x, &y).unwrap();
    m.seed(23);
    m.compile(Sgd::new(), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[]).unwrap();
    assert!(m.plan().matches("fused batch norm+add+relu").count() == 2, "{}", m.plan());
    check_samples(Box::new(m), [5, 5, 1], 3, (true, false), "joins sharing their plain input", 67);
}

#[test]
fn global_pooling_layers() {
    use ember_model::layers::{GlobalAveragePooling2D, GlobalMaxPooling2D};
    for global_max in [false, true] {
        let mut m = Sequential::new();
        m.seed(6);
        m.add(Conv2D::new(5, (3, 3)).activation(Activation::Relu).input_shape([7, 7, 2]));
        if global_max {
            m.add(GlobalMaxPooling2D::new());
        } else {
            m.add(GlobalAveragePooling2D::new());
        }
        m.add(Dense::new(3).activation(Activation::Softmax));
        check(m, [7, 7, 2], 3, true, &format!("global pooling, max {global_max}"));
    }
}

#[test]
fn concatenated_branches() {
    use ember_model::layers::Concatenate;
    for fuse in [false, true] {
        let x = Input::new(&[8, 8, 2]);
        let a = Conv2D::new(3, (3, 3)).padding("same").activation(Activation::Relu).apply(&x);
        let b = Conv2D::new(2, (1, 1)).apply(&a);
        let c = Concatenate::new().apply_to(&[&a, &x, &b]);
        let p = MaxPooling2D::new((2, 2)).apply(&Conv2D::new(4, (3, 3)).activation(Activation::Relu).apply(&c));
        let y = Dense::new(3).activation(Activation::Softmax).apply(&Flatten::new().apply(&p));
        let mut m = Model::new(&x, &y).unwrap();
        m.seed(2);
        check(Box::new(m), [8, 8, 2], 3, fuse, &format!("concatenate, fused {fuse}"));
    }
}

#[test]
fn functional_model_with_fan_out_and_add() {
    for fuse in [false, true] {
        let m = branching_model(9);
        check(m, [8, 8, 2], 3, fuse, &format!("branching model, fused {fuse}"));
    }
}

/// DepthwiseConv2D (a depth multiplier, strides, SAME padding, tanh) and SeparableConv2D
/// (dilation, ReLU, and without bias) through finite differences: every weight, and each
/// layer's input gradient through the layers before it.
#[test]
fn depthwise_and_separable_convolutions() {
    use ember_model::layers::{DepthwiseConv2D, SeparableConv2D};
    let mut m = Sequential::new();
    m.seed(31);
    m.add(
        DepthwiseConv2D::new((3, 3))
            .depth_multiplier(2)
            .strides((2, 1))
            .padding("same")
            .activation(Activation::Tanh)
            .input_shape([7, 6, 2]),
    )
    .add(SeparableConv2D::new(3, (2, 2)).dilation_rate((2, 1)).activation(Activation::Relu))
    .add(SeparableConv2D::new(2, (1, 2)).use_bias(false).depth_multiplier(2))
    .add(Flatten::new())
    .add(Dense::new(3).activation(Activation::Softmax));
    check(m, [7, 6, 2], 3, true, "depthwise and separable");
}

/// Normalizations at both ends of a network over a batch of 19 in three parts: the first
/// reads the model's input (no input gradient), the last produces the logits (its second
/// half runs just before the loss, its backward first).
#[test]
fn batch_norms_at_the_input_and_the_output() {
    use ember_model::layers::BatchNormalization;
    for fuse in [true, false] {
        let x = Input::new(&[5, 5, 2]);
        let h = Conv2D::new(3, (3, 3)).activation(Activation::Relu).apply(&BatchNormalization::new().apply(&x));
        let y = BatchNormalization::new().apply(&Dense::new(3).apply(&Flatten::new().apply(&h)));
        let mut m = Model::new(&x, &y).unwrap();
        m.seed(23);
        m.compile(Sgd::new(), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[]).unwrap();
        let what = format!("batch norms at both ends, fusion {fuse}");
        check_samples(Box::new(m), [5, 5, 2], 3, (fuse, false), &what, 19);
    }
}

//! `Model::fold_batch_norm`: the folded copy predicts what the model predicts (whose own
//! inference plan folds the same way), has no batch normalization where one followed a
//! linear convolution alone, keeps the ones it cannot fold, saves a weight file a model of
//! the BN-free architecture loads, and leaves the original untouched.

mod common;

use ember_model::layers::{
    Activation, ActivationLayer, Add, BatchNormalization, Conv2D, Dense, Flatten, GlobalAveragePooling2D,
};
use ember_model::losses::{Loss, Metric};
use ember_model::optimizers::Adam;
use ember_model::{Apply, FitOptions, Input, Model, Node};

/// Conv-BN-ReLU, a residual block (its first conv feeds a BN alone; the block input has
/// two readers), a conv with a bias and BN, a BN after a Dense (not foldable), logits.
fn model(bias_conv: bool) -> Model {
    let bn = |x: &Node| BatchNormalization::new().apply(x);
    let relu = |x: &Node| ActivationLayer::new(Activation::Relu).apply(x);
    let conv = |f: usize| Conv2D::new(f, (3, 3)).padding("same").use_bias(false);
    let x = Input::new(&[10, 10, 1]);
    let h = relu(&bn(&conv(4).apply(&x)));
    let r = relu(&bn(&conv(4).apply(&h)));
    let r = bn(&conv(4).apply(&r));
    let h = relu(&Add::new().apply_to(&[&h, &r]));
    let h = relu(&bn(&Conv2D::new(6, (3, 3)).use_bias(bias_conv).apply(&h)));
    let h = bn(&Dense::new(8).apply(&Flatten::new().apply(&GlobalAveragePooling2D::new().apply(&h))));
    let y = Dense::new(4).apply(&relu(&h));
    let mut m = Model::new(&x, &y).unwrap();
    m.seed(3);
    m
}

fn trained(bias_conv: bool) -> (Model, ember_model::data::Dataset) {
    let data = common::quadrant_task(64, 10, 5);
    let mut m = model(bias_conv);
    m.compile(
        Adam::new().learning_rate(0.01),
        Loss::SparseCategoricalCrossentropy { from_logits: true },
        &[Metric::Accuracy],
    )
    .unwrap();
    // Moving statistics well away from 0 / 1.
    m.fit(&data, None, &FitOptions { epochs: 3, batch_size: 16, ..FitOptions::default() }, &mut ()).unwrap();
    (m, data)
}

#[test]
fn folded_model_predicts_what_the_model_predicts() {
    for bias_conv in [false, true] {
        let (mut m, data) = trained(bias_conv);
        let before: Vec<Vec<f32>> = common::weights(&m);
        let want = m.predict(&data, 16).unwrap();
        let mut f = m.fold_batch_norm().unwrap();
        assert_eq!(common::weights(&m), before, "the original is untouched");
        let got = f.predict(&data, 16).unwrap();
        // Bit for bit: `predict` folds with the same formula into the same convolution.
        assert_eq!(got.data(), want.data(), "bias {bias_conv}");
        // Four BNs folded into the four convolutions; the one after the Dense stays.
        let names: Vec<String> = f.params().infos().iter().map(|i| i.name.clone()).collect();
        let bns = names.iter().filter(|n| n.ends_with("/moving_mean")).count();
        assert_eq!(bns, 1, "{names:?}");
        assert_eq!(names.iter().filter(|n| n.ends_with("/bias") && n.starts_with("conv2d")).count(), 4, "{names:?}");
        assert!(names.contains(&"batch_normalization/moving_mean".to_string()), "renamed as new: {names:?}");
        // Compiled, it evaluates as the original does.
        f.compile(Adam::new(), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[Metric::Accuracy]).unwrap();
        let (a, b) = (m.evaluate(&data, 16).unwrap(), f.evaluate(&data, 16).unwrap());
        assert_eq!(a.accuracy, b.accuracy);
        assert!((a.loss - b.loss).abs() <= 1e-5 * a.loss.abs(), "{} vs {}", a.loss, b.loss);
    }
}

#[test]
fn the_folded_weight_file_loads_into_the_bn_free_architecture() {
    let (m, data) = trained(false);
    let mut f = m.fold_batch_norm().unwrap();
    let path = std::env::temp_dir().join(format!("ember-folded-{}.safetensors", std::process::id()));
    f.save_weights(&path).unwrap();
    // The same network written without the foldable BNs, convolutions with biases.
    let bn = |x: &Node| BatchNormalization::new().apply(x);
    let relu = |x: &Node| ActivationLayer::new(Activation::Relu).apply(x);
    let conv = |f: usize| Conv2D::new(f, (3, 3)).padding("same");
    let x = Input::new(&[10, 10, 1]);
    let h = relu(&conv(4).apply(&x));
    let r = relu(&conv(4).apply(&h));
    let r = conv(4).apply(&r);
    let h = relu(&Add::new().apply_to(&[&h, &r]));
    let h = relu(&Conv2D::new(6, (3, 3)).apply(&h));
    let g = relu(&bn(&Dense::new(8).apply(&Flatten::new().apply(&GlobalAveragePooling2D::new().apply(&h)))));
    let y = Dense::new(4).apply(&g);
    let mut plain = Model::new(&x, &y).unwrap();
    plain.build().unwrap();
    plain.load_weights(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let (a, b) = (f.predict(&data, 16).unwrap(), plain.predict(&data, 16).unwrap());
    assert_eq!(a.data(), b.data());
}

#[test]
fn an_unbuilt_model_is_refused() {
    let m = model(false);
    assert!(matches!(m.fold_batch_norm(), Err(ember_model::Error::Config(_))));
}

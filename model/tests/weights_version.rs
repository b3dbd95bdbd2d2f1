//! The Winograd convolutions keep their filter's transform from part to part and batch to
//! batch (`ember_kernels::Ctx::weights_version`, the parameter store's version): a model
//! whose weights change in place between two calls, by any of the store's ways to change
//! them, must predict what a fresh model holding the new weights predicts, bit for bit.

use ember_kernels::conv::ConvAlgo;
use ember_model::data::Dataset;
use ember_model::layers::{Activation, Conv2D, Dense, Flatten, MaxPooling2D};
use ember_model::params::ParamStore;
use ember_model::{Apply, Input, Model};

/// A plain Winograd convolution (forward and backward-data), then a Winograd one fused with
/// its ReLU and pooling, then a dense layer.
fn build(seed: u64) -> Model {
    let conv = |f: usize| Conv2D::new(f, (3, 3)).padding("same").algorithm(ConvAlgo::Winograd4x3);
    let x = Input::new(&[12, 12, 4]);
    let h = conv(8).apply(&x);
    let h = MaxPooling2D::new((2, 2)).apply(&conv(8).activation(Activation::Relu).apply(&h));
    let y = Dense::new(3).apply(&Flatten::new().apply(&h));
    let mut m = Model::new(&x, &y).unwrap();
    m.seed(seed);
    m.build().unwrap();
    m
}

fn data() -> Dataset {
    let n = 20;
    let x = (0..n * 12 * 12 * 4).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    Dataset::from_f32(x, vec![12, 12, 4], (0..n as u32).map(|i| i % 3).collect()).unwrap()
}

/// Predictions in batches of 4 (several calls, so a kept transform is reused), as bits.
fn predict(m: &mut Model, d: &Dataset) -> Vec<u32> {
    m.predict(d, 4).unwrap().data().iter().map(|v| v.to_bits()).collect()
}

/// Bits of a fresh model given `store`'s values.
fn fresh_prediction(store: &ParamStore, d: &Dataset) -> Vec<u32> {
    let mut fresh = build(99);
    fresh.params_mut().copy_values_from(store).unwrap();
    predict(&mut fresh, d)
}

#[test]
fn predictions_follow_weights_changed_in_place() {
    let d = data();
    let other = build(2);
    let kernel = |m: &Model| m.params().find("conv2d/kernel").unwrap();
    let file = std::env::temp_dir().join(format!("ember_weights_version_{}.safetensors", std::process::id()));
    build(3).save_weights(&file).unwrap();
    let saved = file.clone();
    type Change = Box<dyn Fn(&mut Model)>;
    let changes: Vec<(&str, Change)> = vec![
        (
            "value_mut",
            Box::new(move |m: &mut Model| {
                let id = kernel(m);
                m.params_mut().value_mut(id).iter_mut().for_each(|v| *v = 0.3 - *v);
            }),
        ),
        (
            "set_from_keras",
            Box::new(move |m: &mut Model| {
                let id = kernel(m);
                let k: Vec<f32> = m.params().to_keras(id).iter().map(|v| v * 1.5).collect();
                m.params_mut().set_from_keras(id, &k).unwrap();
            }),
        ),
        (
            "trainable_mut",
            Box::new(|m: &mut Model| m.params_mut().trainable_mut().0.iter_mut().for_each(|v| *v *= -0.75)),
        ),
        ("copy_values_from", Box::new(move |m: &mut Model| m.params_mut().copy_values_from(other.params()).unwrap())),
        ("load_weights", Box::new(move |m: &mut Model| m.load_weights(&saved).unwrap())),
    ];
    let mut m = build(1);
    for (how, change) in &changes {
        let before = predict(&mut m, &d);
        change(&mut m);
        let after = predict(&mut m, &d);
        assert!(after != before, "{how}: the weights did not change the predictions");
        assert!(after == fresh_prediction(m.params(), &d), "{how}: a stale filter transform");
    }
    std::fs::remove_file(&file).unwrap();
}

//! BatchNormalization against Keras's (fixture from `scripts/keras_batchnorm_fixture.py`,
//! TensorFlow 2.21 / Keras 3.15): from Keras's initial weights, one Adam step through a
//! conv-BN-ReLU block under a dense head gives Keras's loss, Keras's weights (the moving
//! statistics included) and, in inference mode, Keras's predictions.
//!
//! Tolerances (f32 rounding of sums in other orders; Ember's moments are summed in f64):
//! the loss within 1e-6 relative; each tensor within 2e-6 of its largest magnitude (an Adam
//! step moves a weight by up to lr = 0.01: a first-step Adam update is `lr·sign(g)` up to ε,
//! so only the moving statistics and weights with tiny gradients carry the rounding);
//! predictions within 1e-5 of the largest logit.

use ember_model::io::Record;
use ember_model::layers::{Activation, ActivationLayer, BatchNormalization, Conv2D, Dense, Flatten};
use ember_model::losses::Loss;
use ember_model::optimizers::Adam;
use ember_model::Sequential;

#[test]
fn one_adam_step_through_conv_bn_relu_matches_keras() {
    let r = Record::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras_batchnorm.safetensors")).unwrap();
    let mut m = Sequential::new();
    m.set_threads(1).unwrap();
    m.add(Conv2D::new(4, (3, 3)).input_shape([8, 8, 2]))
        .add(BatchNormalization::new())
        .add(ActivationLayer::new(Activation::Relu))
        .add(Flatten::new())
        .add(Dense::new(3));
    m.compile(Adam::new().learning_rate(0.01), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[]).unwrap();
    let names: Vec<(String, Vec<usize>)> =
        m.params().infos().iter().map(|i| (i.name.clone(), i.shape.clone())).collect();
    assert_eq!(names.len(), 8);
    for (name, shape) in &names {
        let id = m.params().find(name).unwrap();
        m.params_mut().set_from_keras(id, r.get(&format!("init/{name}"), shape).unwrap()).unwrap();
    }
    let x = r.get("x", &[6, 8, 8, 2]).unwrap().to_vec();
    let labels: Vec<u32> = r.metadata["labels"].split(',').map(|v| v.parse().unwrap()).collect();
    let loss = m.train_on_batch(&x, &labels).unwrap().loss;
    let want: f32 = r.metadata["loss"].parse().unwrap();
    assert!((loss - want).abs() <= 1e-6 * want, "loss {loss} vs Keras {want}");
    for (name, shape) in &names {
        let id = m.params().find(name).unwrap();
        let got = m.params().to_keras(id);
        let keras = r.get(&format!("after/{name}"), shape).unwrap();
        if name == "conv2d/bias" {
            // Its exact gradient is zero (the batch norm subtracts the batch mean of every
            // channel), so both frameworks' gradients are rounding noise, which Adam's first
            // step turns into updates of up to lr either way: no agreement to check beyond
            // that bound.
            assert!(got.iter().all(|v| v.abs() <= 0.01 + 1e-6), "{name}: {got:?}");
            continue;
        }
        let scale = keras.iter().fold(0f32, |a, v| a.max(v.abs()));
        for (i, (g, k)) in got.iter().zip(keras).enumerate() {
            assert!((g - k).abs() <= 2e-6 * scale, "{name}[{i}]: {g} vs Keras {k}");
        }
    }
    // Inference uses the moving statistics, which do not cancel the convolution's bias: take
    // Keras's (noise) bias so the predictions compare the rest.
    let bias = m.params().find("conv2d/bias").unwrap();
    m.params_mut().set_from_keras(bias, r.get("after/conv2d/bias", &[4]).unwrap()).unwrap();
    let data = ember_model::data::Dataset::from_f32(x, vec![8, 8, 2], labels).unwrap();
    let p = m.predict(&data, 6).unwrap();
    let keras = r.get("predictions", &[6, 3]).unwrap();
    let scale = keras.iter().fold(0f32, |a, v| a.max(v.abs()));
    for (g, k) in p.data().iter().zip(keras) {
        assert!((g - k).abs() <= 1e-5 * scale, "prediction {g} vs Keras {k}");
    }
    assert!(m.summary().contains("Non-trainable params: 8 (32.00 B)"), "{}", m.summary());
}

/// 40 Adam steps through Conv2D(same, no bias) -> BatchNormalization -> ReLU -> Dense
/// logits from Keras's initial weights (fixture `scripts/keras_batchnorm_steps_fixture.py`):
/// every step's loss, the moving statistics after all of them and the inference-mode
/// predictions agree with Keras's. Over 40 steps f32 rounding compounds through Adam, so
/// the bounds are looser than for one step: losses within 1e-4 relative, the moving
/// statistics within 1e-4 of their largest magnitude, predictions within 1e-3 of the
/// largest logit.
#[test]
fn forty_adam_steps_keep_the_moving_statistics_and_predictions_of_keras() {
    let r =
        Record::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras_batchnorm_steps.safetensors")).unwrap();
    let mut m = Sequential::new();
    m.set_threads(1).unwrap();
    m.add(Conv2D::new(4, (3, 3)).padding("same").use_bias(false).input_shape([8, 8, 2]))
        .add(BatchNormalization::new())
        .add(ActivationLayer::new(Activation::Relu))
        .add(Flatten::new())
        .add(Dense::new(3));
    m.compile(Adam::new().learning_rate(0.01), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[]).unwrap();
    let names: Vec<(String, Vec<usize>)> =
        m.params().infos().iter().map(|i| (i.name.clone(), i.shape.clone())).collect();
    for (name, shape) in &names {
        let id = m.params().find(name).unwrap();
        m.params_mut().set_from_keras(id, r.get(&format!("init/{name}"), shape).unwrap()).unwrap();
    }
    let x = r.get("x", &[40, 16, 8, 8, 2]).unwrap();
    let labels = r.get("labels", &[40, 16]).unwrap();
    let losses = r.get("losses", &[40]).unwrap();
    for s in 0..40 {
        let xs = &x[s * 16 * 128..(s + 1) * 16 * 128];
        let ys: Vec<u32> = labels[s * 16..(s + 1) * 16].iter().map(|&v| v as u32).collect();
        let loss = m.train_on_batch(xs, &ys).unwrap().loss;
        assert!((loss - losses[s]).abs() <= 1e-4 * losses[s], "step {s}: loss {loss} vs Keras {}", losses[s]);
    }
    for name in ["batch_normalization/moving_mean", "batch_normalization/moving_variance"] {
        let got = m.params().to_keras(m.params().find(name).unwrap());
        let keras = r.get(&format!("after/{name}"), &[4]).unwrap();
        let scale = keras.iter().fold(0f32, |a, v| a.max(v.abs()));
        for (g, k) in got.iter().zip(keras) {
            assert!((g - k).abs() <= 1e-4 * scale, "{name}: {got:?} vs Keras {keras:?}");
        }
    }
    // Predictions run the inference plan: conv + BN + ReLU as one folded convolution.
    assert!(
        m.inference_plan().starts_with("conv2d + batch_normalization + activation (batch normalization folded"),
        "{}",
        m.inference_plan()
    );
    let xt = r.get("x_test", &[8, 8, 8, 2]).unwrap().to_vec();
    let data = ember_model::data::Dataset::from_f32(xt, vec![8, 8, 2], vec![0; 8]).unwrap();
    let p = m.predict(&data, 8).unwrap();
    let keras = r.get("predictions", &[8, 3]).unwrap();
    let scale = keras.iter().fold(0f32, |a, v| a.max(v.abs()));
    for (g, k) in p.data().iter().zip(keras) {
        assert!((g - k).abs() <= 1e-3 * scale, "prediction {g} vs Keras {k}: {:?} vs {keras:?}", p.data());
    }
}

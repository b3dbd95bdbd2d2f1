//! Ember's Adam against Keras's on the reference CNN: from Keras's initial weights, three
//! steps on the first 32 MNIST training images give Keras's losses and predictions
//! (fixture written by `scripts/keras_adam_fixture.py` with TensorFlow 2.21 / Keras 3.15).
//!
//! Tolerances: losses within 1e-6 relative (the bound); predictions after the
//! three steps within 6e-7 of the largest probability: a few f32 roundings of TensorFlow's
//! own (its kernels sum in other orders), where Adam's constants computed in f32 from the
//! f32 betas (0.100000024 and 0.000999987 instead of Keras's 0.1 and 0.001) put Ember
//! 4e-6 away.

mod common;

use ember_model::data::Dataset;
use ember_model::io::Record;
use ember_model::Tensor;

fn fixture() -> Record {
    Record::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras_adam_seed.safetensors")).unwrap()
}

#[test]
fn three_adam_steps_match_keras() {
    let r = fixture();
    let mut m = common::seed_model(28, 32, 10, 0);
    m.set_threads(1).unwrap();
    common::compile_adam(&mut m);
    for name in ["conv2d/kernel", "conv2d/bias", "dense/kernel", "dense/bias"] {
        let id = m.params().find(name).unwrap();
        let shape = m.params().table().info(id).shape.clone();
        let v = r.get(name, &shape).unwrap().to_vec();
        m.params_mut().set_from_keras(id, &v).unwrap();
    }
    let x = r.get("x", &[32, 28, 28, 1]).unwrap().to_vec();
    let labels: Vec<u32> = r.metadata["labels"].split(',').map(|v| v.parse().unwrap()).collect();
    let want: Vec<f64> = r.metadata["losses"].split(',').map(|v| v.parse().unwrap()).collect();
    for (step, &w) in want.iter().enumerate() {
        let got = f64::from(m.train_on_batch(&x, &labels).unwrap().loss);
        assert!((got - w).abs() <= 1e-6 * w, "step {}: loss {got} vs Keras {w}", step + 1);
    }
    let data = Dataset::from_f32(x, vec![28, 28, 1], labels).unwrap();
    let p: Tensor = m.predict(&data, 32).unwrap();
    let keras = r.get("predictions", &[32, 10]).unwrap();
    let top = keras.iter().fold(0f32, |a, &b| a.max(b));
    let worst = p.data().iter().zip(keras).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst <= 6e-7 * top, "predictions differ from Keras's by {worst} (largest probability {top})");
}

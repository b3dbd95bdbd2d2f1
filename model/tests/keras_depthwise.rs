//! DepthwiseConv2D and SeparableConv2D against Keras's (fixture from
//! `scripts/keras_depthwise_fixture.py`, TensorFlow 2.21 / Keras 3.15): from Keras's initial
//! weights, the predictions, then one Adam step's loss and weights.
//!
//! Tolerances as in `keras_batchnorm.rs`: predictions within 1e-5 of the largest logit, the
//! loss within 1e-6 relative, each tensor after the step within 2e-6 of its largest magnitude
//! (a first Adam step moves every weight by about lr = 0.01 whatever the gradient's size).

use ember_model::data::Dataset;
use ember_model::io::Record;
use ember_model::layers::{Activation, Dense, DepthwiseConv2D, Flatten, SeparableConv2D};
use ember_model::losses::Loss;
use ember_model::optimizers::Adam;
use ember_model::Sequential;

#[test]
fn depthwise_and_separable_convolutions_match_keras() {
    let r = Record::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras_depthwise.safetensors")).unwrap();
    let mut m = Sequential::new();
    m.set_threads(1).unwrap();
    m.add(DepthwiseConv2D::new((3, 3)).depth_multiplier(2).strides((2, 2)).padding("same").input_shape([9, 9, 3]))
        .add(SeparableConv2D::new(4, (3, 3)).padding("same").activation(Activation::Relu))
        .add(DepthwiseConv2D::new((2, 2)).activation(Activation::Tanh).use_bias(false))
        .add(Flatten::new())
        .add(Dense::new(3));
    m.compile(Adam::new().learning_rate(0.01), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[]).unwrap();
    let names: Vec<(String, Vec<usize>)> =
        m.params().infos().iter().map(|i| (i.name.clone(), i.shape.clone())).collect();
    assert_eq!(names.len(), 8, "{names:?}");
    for (name, shape) in &names {
        let id = m.params().find(name).unwrap();
        m.params_mut().set_from_keras(id, r.get(&format!("init/{name}"), shape).unwrap()).unwrap();
    }
    let x = r.get("x", &[6, 9, 9, 3]).unwrap().to_vec();
    let labels: Vec<u32> = r.metadata["labels"].split(',').map(|v| v.parse().unwrap()).collect();
    let data = Dataset::from_f32(x.clone(), vec![9, 9, 3], labels.clone()).unwrap();
    let p = m.predict(&data, 6).unwrap();
    let keras = r.get("predictions", &[6, 3]).unwrap();
    let scale = keras.iter().fold(0f32, |a, v| a.max(v.abs()));
    for (g, k) in p.data().iter().zip(keras) {
        assert!((g - k).abs() <= 1e-5 * scale, "prediction {g} vs Keras {k}");
    }
    let loss = m.train_on_batch(&x, &labels).unwrap().loss;
    let want: f32 = r.metadata["loss"].parse().unwrap();
    assert!((loss - want).abs() <= 1e-6 * want, "loss {loss} vs Keras {want}");
    for (name, shape) in &names {
        let got = m.params().to_keras(m.params().find(name).unwrap());
        let keras = r.get(&format!("after/{name}"), shape).unwrap();
        let scale = keras.iter().fold(0f32, |a, v| a.max(v.abs()));
        for (i, (g, k)) in got.iter().zip(keras).enumerate() {
            assert!((g - k).abs() <= 2e-6 * scale, "{name}[{i}]: {g} vs Keras {k}");
        }
    }
}

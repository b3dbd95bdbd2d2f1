//! Arbitrary bytes into the weights and checkpoint loaders of two small models (a
//! `Sequential` with a `DepthwiseConv2D` and a `SeparableConv2D`, and a functional one with a
//! residual `Add` and a `BatchNormalization`, whose moving statistics are non-trainable
//! tensors), and into the record parser:
//! `Ok` or a typed error, never a panic; a failed load leaves the weights as they were.
#![no_main]
use ember_model::io::Record;
use ember_model::layers::{
    Activation, Add, BatchNormalization, Conv2D, Dense, DepthwiseConv2D, Flatten, MaxPooling2D, Padding, SeparableConv2D,
};
use ember_model::losses::{Loss, Metric};
use ember_model::optimizers::Adam;
use ember_model::{Apply, Input, Model, Sequential};
use libfuzzer_sys::fuzz_target;
use std::sync::Mutex;

static MODELS: Mutex<Option<[Model; 2]>> = Mutex::new(None);

fn sequential() -> Model {
    let mut m = Sequential::new();
    m.set_threads(1).expect("one thread");
    m.add(Conv2D::new(2, (3, 3)).activation(Activation::Relu).input_shape([6, 6, 1]))
        .add(MaxPooling2D::new((2, 2)))
        .add(DepthwiseConv2D::new((2, 2)).depth_multiplier(2).padding("same"))
        .add(SeparableConv2D::new(2, (2, 2)))
        .add(Flatten::new())
        .add(Dense::new(3).activation(Activation::Softmax));
    let mut m = m.into_model();
    m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[Metric::Accuracy]).expect("compile");
    m
}

fn functional() -> Model {
    let x = Input::new(&[6, 6, 1]);
    let h = Conv2D::new(2, (3, 3)).padding(Padding::Same).activation(Activation::Relu).apply(&x);
    let r = BatchNormalization::new().apply(&Conv2D::new(2, (3, 3)).padding(Padding::Same).apply(&h));
    let y = Dense::new(3).apply(&Flatten::new().apply(&Add::new().apply_to(&[&h, &r])));
    let mut m = Model::new(&x, &y).expect("model");
    m.set_threads(1).expect("one thread");
    m.compile(Adam::new(), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[]).expect("compile");
    m
}

fuzz_target!(|data: &[u8]| {
    let _ = Record::from_bytes(data, "fuzz");
    let mut guard = MODELS.lock().unwrap_or_else(|e| e.into_inner());
    let models = guard.get_or_insert_with(|| [sequential(), functional()]);
    for (k, m) in models.iter_mut().enumerate() {
        let before = m.weights_to_bytes().expect("serialize");
        for checkpoint in [false, true] {
            if m.load_bytes(data, "fuzz", checkpoint).is_err() {
                assert_eq!(m.weights_to_bytes().expect("serialize"), before, "a failed load changed the weights");
            } else {
                *m = if k == 0 { sequential() } else { functional() };
            }
        }
    }
});

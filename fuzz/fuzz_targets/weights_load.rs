//! Arbitrary bytes into the weights and checkpoint loader of a small model: `Ok` or a typed
//! error, never a panic; a failed load leaves the weights as they were.
#![no_main]
use ember_model::layers::{Activation, Conv2D, Dense, Flatten, MaxPooling2D};
use ember_model::losses::{Loss, Metric};
use ember_model::optimizers::Adam;
use ember_model::Sequential;
use libfuzzer_sys::fuzz_target;
use std::sync::Mutex;

static MODEL: Mutex<Option<Sequential>> = Mutex::new(None);

fn model() -> Sequential {
    let mut m = Sequential::new();
    m.set_threads(1).expect("one thread");
    m.add(Conv2D::new(2, (3, 3)).activation(Activation::Relu).input_shape([6, 6, 1]))
        .add(MaxPooling2D::new((2, 2)))
        .add(Flatten::new())
        .add(Dense::new(3).activation(Activation::Softmax));
    m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[Metric::Accuracy]).expect("compile");
    m
}

fuzz_target!(|data: &[u8]| {
    let mut guard = MODEL.lock().unwrap_or_else(|e| e.into_inner());
    let m = guard.get_or_insert_with(model);
    let before = m.weights_to_bytes().expect("serialize");
    for checkpoint in [false, true] {
        if m.load_bytes(data, "fuzz", checkpoint).is_err() {
            assert_eq!(m.weights_to_bytes().expect("serialize"), before, "a failed load changed the weights");
        } else {
            *m = model();
        }
    }
});

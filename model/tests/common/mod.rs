//! Shared helpers of the model tests.
#![allow(dead_code)]

use ember_model::data::Dataset;
use ember_model::layers::{Activation, Conv2D, Dense, Flatten, MaxPooling2D};
use ember_model::losses::{Loss, Metric};
use ember_model::optimizers::Adam;
use ember_model::rng::Rng;
use ember_model::{Model, Sequential};

/// A synthetic 4-class task on `size x size` single-channel images: the class is the
/// quadrant holding a bright blob, over uniform noise.
pub fn quadrant_task(n: usize, size: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let mut x = Vec::with_capacity(n * size * size);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let class = rng.below(4);
        let (cy, cx) = (
            (class / 2) * size / 2 + rng.below(size / 2 - 2) + 1,
            (class % 2) * size / 2 + rng.below(size / 2 - 2) + 1,
        );
        for r in 0..size {
            for c in 0..size {
                let d2 = (r as f32 - cy as f32).powi(2) + (c as f32 - cx as f32).powi(2);
                x.push((-d2 / 2.0).exp() + 0.3 * rng.next_f32());
            }
        }
        y.push(class as u32);
    }
    Dataset::from_f32(x, vec![size, size, 1], y).unwrap()
}

/// The reference model's architecture on `size x size x 1` inputs with `classes` outputs.
pub fn seed_model(size: usize, filters: usize, classes: usize, seed: u64) -> Sequential {
    let mut m = Sequential::new();
    m.seed(seed);
    m.add(Conv2D::new(filters, (3, 3)).activation(Activation::Relu).input_shape([size, size, 1]))
        .add(MaxPooling2D::new((2, 2)))
        .add(Flatten::new())
        .add(Dense::new(classes).activation(Activation::Softmax));
    m
}

pub fn compile_adam(m: &mut Model) {
    m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[Metric::Accuracy]).unwrap();
}

/// Every weight of the model, in order.
pub fn weights(m: &Model) -> Vec<Vec<f32>> {
    m.params().table().ids().map(|id| m.params().value(id).to_vec()).collect()
}

/// Every gradient of the model, in order.
pub fn grads(m: &Model) -> Vec<Vec<f32>> {
    m.params().table().ids().map(|id| m.params().grad(id).to_vec()).collect()
}

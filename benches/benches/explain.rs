//! The explain module on the reference CNN (random weights: the time does not depend on
//! them) over the 10,000 vendored MNIST test images, 2 threads: group `explain`, ids
//! `saliency`, `integrated_gradients_32` (33 gradient passes), `grad_cam` (at `conv2d`).
//! Targets (issue 16): saliency <= 0.5 s, Integrated Gradients with 32 steps <= 10 s,
//! Grad-CAM <= 0.5 s.

use criterion::{criterion_group, criterion_main, Criterion};
use ember_model::data::load_mnist;
use ember_model::explain::{grad_cam, integrated_gradients, saliency, IntegratedGradients, Saliency, Target};
use ember_model::layers::{Activation, Conv2D, Dense, Flatten, MaxPooling2D};
use ember_model::{Sequential, Tensor};
use std::time::Duration;

fn explain(c: &mut Criterion) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/mnist");
    let (_, test) = load_mnist(dir).expect("the vendored MNIST");
    let n = test.len();
    let x: Vec<f32> = (0..n).flat_map(|i| test.sample(i).expect("a sample")).collect();
    let images = Tensor::new(vec![n, 28, 28, 1], x).expect("images");
    let mut m = Sequential::new();
    m.seed(1);
    m.add(Conv2D::new(32, (3, 3)).activation(Activation::Relu).input_shape([28, 28, 1]))
        .add(MaxPooling2D::new((2, 2)))
        .add(Flatten::new())
        .add(Dense::new(10).activation(Activation::Softmax));
    m.set_threads(2).expect("threads");
    m.build().expect("build");
    let t = Target::Predicted;
    let mut g = c.benchmark_group("explain");
    g.sample_size(10).warm_up_time(Duration::from_secs(1));
    g.bench_function("saliency", |b| b.iter(|| saliency(&m, &images, t, Saliency::default()).expect("saliency")));
    g.bench_function("grad_cam", |b| b.iter(|| grad_cam(&m, &images, t, "conv2d").expect("Grad-CAM")));
    g.measurement_time(Duration::from_secs(30));
    g.bench_function("integrated_gradients_32", |b| {
        let ig = IntegratedGradients { steps: 32, ..Default::default() };
        b.iter(|| integrated_gradients(&m, &images, t, ig).expect("IG"))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = ember_benches::criterion();
    targets = explain
}
criterion_main!(benches);

//! Adam's step (`ember_kernels::elementwise::adam_update`) on one thread over the CIFAR
//! network's 122,570 weights: group `adam_1t`, functions by the values it meets.
//! - `normal`: gradients in [-1, 1), moments from the earlier iterations.
//! - `tiny`: gradients of about 1e-20, whose squares are subnormal (1e-40).
//! - `dead`: zero gradients and moments a few ulps above zero, where IEEE arithmetic
//!   leaves the first moment of a unit that stopped receiving gradient.
//!
//!
//! Group `optimizers_1t`: each of the model's optimizers (Adam, AdamW, RMSprop, Adagrad; SGD
//! plain, with momentum 0.9 and Nesterov's) through `Optimizer::apply` over the same weights,
//! on `normal` and `tiny` gradients (the adaptive ones' square to subnormals; SGD's, 1e-36
//! of the normal ones, make subnormal products with its learning rate 0.01).
//!
//! Throughput in weights. On x86 a multiply, divide or square root that reads or makes a
//! subnormal takes a microcode assist; TensorFlow flushes subnormals to zero, and so does
//! Ember's Adam (`elementwise::flush_subnormal`): `normal` runs its plain path, `tiny` and
//! `dead` its careful one, which zeroes operands before the operations instead of letting
//! them make subnormals.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ember_benches::{bench_isa, fill, pool};
use ember_kernels::elementwise::{adam_update, AdamParams};
use ember_kernels::Ctx;
use ember_model::optimizers::{Adagrad, Adam, AdamW, Optimizer, RmsProp, Sgd};
use std::time::Duration;

/// The weights of the suite's CIFAR network.
const LEN: usize = 122_570;

fn adam(c: &mut Criterion) {
    let ctx = Ctx::for_isa(bench_isa());
    let one = pool(1);
    let mut g = c.benchmark_group("adam_1t");
    g.sample_size(20).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(LEN as u64));
    let p = AdamParams::default();
    let normal = fill(2, LEN);
    let cases: [(&str, Vec<f32>, f32, f32); 3] = [
        ("normal", normal.clone(), 0.0, 0.0),
        ("tiny", normal.iter().map(|x| x * 1e-20).collect(), 0.0, 0.0),
        ("dead", vec![0.0; LEN], 3e-45, 1e-44),
    ];
    for (name, grad, m0, v0) in cases {
        let mut w = fill(1, LEN);
        let (mut m, mut v) = (vec![m0; LEN], vec![v0; LEN]);
        g.bench_function(BenchmarkId::new("step", name), |b| {
            one.install(|| b.iter(|| adam_update(&ctx, &p, 1, &mut w, &grad, &mut m, &mut v).unwrap()))
        });
    }
    g.finish();
}

fn optimizers(c: &mut Criterion) {
    let one = pool(1);
    let mut g = c.benchmark_group("optimizers_1t");
    g.sample_size(20).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(LEN as u64));
    let normal = fill(2, LEN);
    let tiny: Vec<f32> = normal.iter().map(|x| x * 1e-20).collect();
    let sgd_tiny: Vec<f32> = normal.iter().map(|x| x * 1e-36).collect();
    for name in ["adam", "adamw", "rmsprop", "adagrad", "sgd", "sgd_momentum", "sgd_nesterov"] {
        let tiny = if name.starts_with("sgd") { &sgd_tiny } else { &tiny };
        for (case, grad) in [("normal", &normal), ("tiny", tiny)] {
            let mut o: Box<dyn Optimizer> = match name {
                "adam" => Box::new(Adam::new()),
                "adamw" => Box::new(AdamW::new()),
                "rmsprop" => Box::new(RmsProp::new()),
                "adagrad" => Box::new(Adagrad::new()),
                "sgd" => Box::new(Sgd::new()),
                "sgd_momentum" => Box::new(Sgd::new().momentum(0.9)),
                _ => Box::new(Sgd::new().momentum(0.9).nesterov(true)),
            };
            let mut w = fill(1, LEN);
            // The state exists after a first step.
            o.apply(&mut w, grad).unwrap();
            g.bench_function(BenchmarkId::new(name, case), |b| {
                one.install(|| b.iter(|| o.apply(&mut w, grad).unwrap()))
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = ember_benches::criterion();
    targets = adam, optimizers
}
criterion_main!(benches);

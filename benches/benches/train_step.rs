//! One full training step of the reference model (forward, softmax cross-entropy, backward,
//! Adam) on a batch of 32 MNIST-sized images, timed on the model's threads: group `train_step`, ids `seed_model/1t` and
//! `seed_model/mt` (all CPUs), and the same with the fused conv+ReLU+pool step disabled
//! (`seed_model_unfused/*`) for comparison. Throughput is in images.
//!
//! Also `conv_pool_1t/{fused,unfused}/{fwd,bwd}`: the first layer's convolution + ReLU +
//! 2x2 max pooling alone, forward and backward (filter and bias gradients from the pooled
//! gradient), fused kernel vs the separate kernels.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ember_benches::{bench_isa, fill, pool, time_on_model_threads};
use ember_kernels::conv::{
    conv2d_backward_filter, conv2d_forward, conv_relu_maxpool_backward_filter, conv_relu_maxpool_forward,
    unpool_relu_grad, Conv2d, ConvReluPool, Padding,
};
use ember_kernels::pool::{max_pool_forward, Pool2d};
use ember_kernels::Ctx;
use ember_model::layers::{Activation, Conv2D, Dense, Flatten, MaxPooling2D};
use ember_model::losses::{Loss, Metric};
use ember_model::optimizers::Adam;
use ember_model::Sequential;
use std::time::Duration;

const BATCH: usize = 32;

fn model(threads: usize, fuse: bool) -> Sequential {
    let mut m = Sequential::new();
    m.seed(1).set_threads(threads).expect("threads");
    m.add(Conv2D::new(32, (3, 3)).activation(Activation::Relu).input_shape([28, 28, 1]))
        .add(MaxPooling2D::new((2, 2)))
        .add(Flatten::new())
        .add(Dense::new(10).activation(Activation::Softmax));
    m.set_fusion(fuse);
    m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[Metric::Accuracy]).expect("compile");
    m
}

fn train_step(c: &mut Criterion) {
    bench_isa();
    // MNIST-like inputs: x / 255 of bytes, about 80% zeros.
    let x: Vec<f32> = fill(1, BATCH * 784).iter().map(|v| if *v < 0.6 { 0.0 } else { (v - 0.6) * 2.5 }).collect();
    let labels: Vec<u32> = (0..BATCH as u32).map(|i| i % 10).collect();
    let mut g = c.benchmark_group("train_step");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, fuse) in [("seed_model", true), ("seed_model_unfused", false)] {
        for (suffix, threads) in [("1t", 1), ("mt", 0)] {
            let mut m = model(threads, fuse);
            g.bench_function(BenchmarkId::new(name, suffix), |b| {
                b.iter_custom(|iters| {
                    time_on_model_threads(&mut m, iters, |m| {
                        m.train_on_batch(&x, &labels).expect("step");
                    })
                })
            });
        }
    }
    g.finish();
}

fn conv_pool(c: &mut Criterion) {
    bench_isa();
    let conv = Conv2d::simple([BATCH, 28, 28, 1], [3, 3, 1, 32], Padding::Valid).expect("conv");
    let cp = ConvReluPool::new(conv).expect("fusable");
    let p = Pool2d::new(conv.output_shape(), (2, 2), (2, 2), Padding::Valid).expect("pool");
    let (x, w, b) = (fill(1, BATCH * 784), fill(2, 288), fill(3, 32));
    let pooled = BATCH * 13 * 13 * 32;
    let dy = fill(4, pooled);
    let (mut y, mut a) = (vec![0.0; pooled], vec![0u32; pooled]);
    let mut yc = vec![0.0; BATCH * 26 * 26 * 32];
    let (mut dw, mut db) = (vec![0.0; 288], vec![0.0; 32]);
    let mut dconv = vec![0.0; yc.len()];
    let opts = Ctx::new();
    let pool1 = pool(1);
    let mut g = c.benchmark_group("conv_pool_1t");
    g.throughput(Throughput::Elements(BATCH as u64));
    // Timed inside a one-thread pool (iter_custom), so no call pays the pool's job injection.
    let mut timed = |id: BenchmarkId, f: &mut (dyn FnMut() + Send)| {
        g.bench_function(id, |bch| {
            bch.iter_custom(|iters| {
                pool1.install(|| {
                    let t = std::time::Instant::now();
                    for _ in 0..iters {
                        f();
                    }
                    t.elapsed()
                })
            })
        });
    };
    timed(BenchmarkId::new("fused", "fwd"), &mut || {
        conv_relu_maxpool_forward(&Ctx::new(), &cp, &x, &w, Some(&b), &mut y, &mut a).expect("fwd")
    });
    timed(BenchmarkId::new("unfused", "fwd"), &mut || {
        conv2d_forward(&opts, &conv, &x, &w, Some(&b), true, &mut yc).expect("conv");
        max_pool_forward(&Ctx::new(), &p, &yc, &mut y, &mut a).expect("pool");
    });
    conv_relu_maxpool_forward(&Ctx::new(), &cp, &x, &w, Some(&b), &mut y, &mut a).expect("fwd");
    let (y, a) = (&y, &a);
    timed(BenchmarkId::new("fused", "bwd"), &mut || {
        conv_relu_maxpool_backward_filter(&Ctx::new(), &cp, &x, y, &dy, a, &mut dw, Some(&mut db), false).expect("bwd")
    });
    timed(BenchmarkId::new("unfused", "bwd"), &mut || {
        // Max pooling's and ReLU's backward (the dense gradient), then the filter's.
        unpool_relu_grad(&cp, y, &dy, a, &mut dconv).expect("unpool");
        conv2d_backward_filter(&opts, &conv, &x, &dconv, &mut dw, Some(&mut db), false).expect("wgrad");
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = ember_benches::criterion().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = train_step, conv_pool
}
criterion_main!(benches);

//! Every layer of the suite's networks (`ember_benches::networks`) at the size the sharded
//! executor runs it: one part (16 samples; the residual network's, 8), one thread. Group
//! `layers_1t`, function `<pass>/<algorithm>`, parameter the layer: the convolutions in
//! each pass and algorithm (`auto` is what the model runs), the fused conv+ReLU+2x2-pool
//! step where the network has one (forward, the fused backward-filter, and the pooled
//! passes from the pooled gradient that wider layers run), and the dense layers. Throughput
//! is the direct-count FLOPs (read "Gelem/s" as GFLOP/s); the FMA peak at one thread is
//! printed first, measured in the same process.
//!
//! Groups `batchnorm_1t` and `batchnorm_2t`: the residual network's batch normalizations
//! over one part (the executor runs a batch's statistics part by part and joins them),
//! each pass with the ReLU the network fuses after them, and the residual join that applies
//! one inside the sum (`add_relu`). Throughput is the bytes each pass must move at least
//! (read and written once), against the memory bandwidth `peak` measures.
//!
//! Groups `resnet_convs_1t` and `resnet_convs_2t`: the residual network's convolutions
//! (same padding, strides 1 and 2, 3x3 and 1x1) at one part of 8 samples, each pass and
//! algorithm, in direct-count FLOPs.

use criterion::Throughput;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ember_benches::{bench_isa, flops, pool};
use ember_kernels::batchnorm::{
    batch_norm_add, batch_norm_apply, batch_norm_backward, batch_norm_moments, AddTerm, BatchNormSaved,
};
use ember_kernels::conv::{
    conv2d_backward_data, conv2d_backward_data_pooled, conv2d_backward_filter, conv2d_backward_filter_pooled,
    conv2d_forward, conv_relu_maxpool_backward_filter, conv_relu_maxpool_forward, Conv2d, ConvAlgo, ConvReluPool,
    Padding, Pass,
};
use ember_kernels::linear::{linear_backward_data, linear_backward_weights, linear_forward, Linear};
use ember_kernels::Ctx;
use ember_model::params::Arena;
use std::time::Duration;

/// Samples per call of the seed, convnet and CIFAR networks' layers: one part
/// (`ember_model::PART`).
const N: usize = ember_model::PART;

/// Samples per call of the residual network's layers: one part of a plan that reduces over
/// the batch (`ember_model::COUPLED_PART`).
const N_COUPLED: usize = ember_model::COUPLED_PART;

/// (layer, H = W, Cin, Cout, followed by a fusable 2x2 pool)
const CONVS: [(&str, usize, usize, usize, bool); 5] = [
    ("seed_conv1", 28, 1, 32, true),
    ("cifar_conv1", 32, 3, 32, true),
    ("convnet_conv2", 13, 32, 64, true),
    ("cifar_conv2", 15, 32, 64, true),
    ("cifar_conv3", 6, 64, 64, false),
];

/// (layer, inputs, outputs)
const DENSE: [(&str, usize, usize); 4] =
    [("seed_dense", 5408, 10), ("convnet_dense", 1600, 10), ("cifar_dense1", 1024, 64), ("cifar_dense2", 64, 10)];

const ALGOS: [(&str, ConvAlgo); 5] = [
    ("auto", ConvAlgo::Auto),
    ("direct", ConvAlgo::Direct),
    ("im2col", ConvAlgo::Im2col),
    ("winograd2x3", ConvAlgo::Winograd2x3),
    ("winograd4x3", ConvAlgo::Winograd4x3),
];

fn layers(c: &mut Criterion) {
    let isa = bench_isa();
    if let Some(p) = ember_benches::peak::fma_peak(isa, 1) {
        eprintln!("peak {isa} 1t: {p:.1} GFLOP/s");
    }
    let one = pool(1);
    let mut g = c.benchmark_group("layers_1t");
    g.sample_size(20).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    for (name, hw, cin, cout, fusable) in CONVS {
        let d = Conv2d::simple([N, hw, hw, cin], [3, 3, cin, cout], Padding::Valid).unwrap();
        let x = fill(1, d.input_shape().iter().product());
        let w = fill(2, d.filter_shape().iter().product());
        let b = fill(3, cout);
        let dy = fill(4, d.output_shape().iter().product());
        let (mut y, mut dx, mut dw, mut db) = (zeros(dy.len()), zeros(x.len()), zeros(w.len()), zeros(cout));
        g.throughput(flops(d.flops()));
        for (pass, kind) in
            [("fwd", Pass::Forward), ("bwd_data", Pass::BackwardData), ("bwd_filter", Pass::BackwardFilter)]
        {
            for (aname, algo) in ALGOS.into_iter().filter(|(_, a)| a.supports(&d, kind)) {
                let ctx = Ctx { algo, isa, weights_version: None };
                g.bench_function(BenchmarkId::new(format!("{pass}/{aname}"), name), |bch| {
                    one.install(|| match kind {
                        Pass::Forward => bch.iter(|| conv2d_forward(&ctx, &d, &x, &w, Some(&b), true, &mut y).unwrap()),
                        Pass::BackwardData => {
                            bch.iter(|| conv2d_backward_data(&ctx, &d, &dy, &w, &mut dx, false).unwrap())
                        }
                        Pass::BackwardFilter => bch
                            .iter(|| conv2d_backward_filter(&ctx, &d, &x, &dy, &mut dw, Some(&mut db), false).unwrap()),
                    })
                });
            }
        }
        if fusable {
            let cp = ConvReluPool::new(d).unwrap();
            let pooled: usize = cp.output_shape().iter().product();
            let (mut yp, mut arg) = (zeros(pooled), vec![0u32; pooled]);
            let dyp = fill(5, pooled);
            let ctx = Ctx::for_isa(isa);
            g.bench_function(BenchmarkId::new("fwd/fused_pool", name), |bch| {
                one.install(|| {
                    bch.iter(|| conv_relu_maxpool_forward(&ctx, &cp, &x, &w, Some(&b), &mut yp, &mut arg).unwrap())
                })
            });
            conv_relu_maxpool_forward(&ctx, &cp, &x, &w, Some(&b), &mut yp, &mut arg).unwrap();
            g.bench_function(BenchmarkId::new("bwd_filter/fused_pool", name), |bch| {
                one.install(|| {
                    bch.iter(|| {
                        conv_relu_maxpool_backward_filter(&ctx, &cp, &x, &yp, &dyp, &arg, &mut dw, Some(&mut db), false)
                            .unwrap()
                    })
                })
            });
            // The model's backward for wider inputs: the passes from the pooled gradient
            // (Winograd builds its tiles from it and skips an odd last row and column).
            g.bench_function(BenchmarkId::new("bwd_data/pooled", name), |bch| {
                one.install(|| {
                    bch.iter(|| conv2d_backward_data_pooled(&ctx, &cp, &yp, &dyp, &arg, &w, &mut dx).unwrap())
                })
            });
            g.bench_function(BenchmarkId::new("bwd_filter/pooled", name), |bch| {
                one.install(|| {
                    bch.iter(|| {
                        conv2d_backward_filter_pooled(&ctx, &cp, &x, &yp, &dyp, &arg, &mut dw, Some(&mut db), false)
                            .unwrap()
                    })
                })
            });
        }
    }
    for (name, inputs, outputs) in DENSE {
        let l = Linear::new(N, inputs, outputs).unwrap();
        let (x, w, b, dy) = (fill(1, N * inputs), fill(2, inputs * outputs), fill(3, outputs), fill(4, N * outputs));
        let (mut y, mut dx, mut dw, mut db) = (zeros(dy.len()), zeros(x.len()), zeros(w.len()), zeros(outputs));
        let ctx = Ctx::for_isa(isa);
        g.throughput(flops(2 * (N * inputs * outputs) as u64));
        g.bench_function(BenchmarkId::new("fwd/dense", name), |bch| {
            one.install(|| bch.iter(|| linear_forward(&ctx, &l, &x, &w, Some(&b), &mut y).unwrap()))
        });
        g.bench_function(BenchmarkId::new("bwd_data/dense", name), |bch| {
            one.install(|| bch.iter(|| linear_backward_data(&ctx, &l, &dy, &w, &mut dx).unwrap()))
        });
        g.bench_function(BenchmarkId::new("bwd_filter/dense", name), |bch| {
            one.install(|| {
                bch.iter(|| linear_backward_weights(&ctx, &l, &x, &dy, &mut dw, Some(&mut db), false).unwrap())
            })
        });
    }
    g.finish();
}

/// (layer, rows of one part, channels)
const BATCH_NORMS: [(&str, usize, usize); 2] =
    [("resnet_28x28x32", N_COUPLED * 28 * 28, 32), ("resnet_14x14x64", N_COUPLED * 14 * 14, 64)];

fn batch_norms(c: &mut Criterion) {
    let ctx = Ctx::for_isa(bench_isa());
    for threads in [1, 2] {
        let pool = pool(threads);
        let mut g = c.benchmark_group(format!("batchnorm_{threads}t"));
        g.sample_size(20).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
        for (name, rows, ch) in BATCH_NORMS {
            let (x, dy) = (fill(1, rows * ch), fill(2, rows * ch));
            let (scale, shift, gamma) = (fill(3, ch), fill(4, ch), vec![1.0f32; ch]);
            let (mut mean, mut var, mut inv) = (zeros(ch), zeros(ch), vec![1.0; ch]);
            let (mut y, mut dx, mut dg, mut db) = (zeros(x.len()), zeros(x.len()), zeros(ch), zeros(ch));
            let bytes = |tensors: u64| Throughput::Bytes(tensors * 4 * x.len() as u64);
            g.throughput(bytes(1));
            g.bench_function(BenchmarkId::new("moments", name), |bch| {
                pool.install(|| bch.iter(|| batch_norm_moments(&ctx, &x, ch, &mut mean, &mut var).unwrap()))
            });
            g.throughput(bytes(2));
            g.bench_function(BenchmarkId::new("apply_relu", name), |bch| {
                pool.install(|| bch.iter(|| batch_norm_apply(&ctx, &x, &scale, &shift, true, &mut y).unwrap()))
            });
            // The identity join: relu(bn(x) + h) in one pass (`bn_add_relu`).
            let h = fill(5, rows * ch);
            let terms = [AddTerm { x: &x, affine: Some((&scale, &shift)) }, AddTerm { x: &h, affine: None }];
            g.throughput(bytes(3));
            g.bench_function(BenchmarkId::new("add_relu", name), |bch| {
                pool.install(|| bch.iter(|| batch_norm_add(&ctx, &terms, ch, true, &mut y).unwrap()))
            });
            inv.iter_mut().zip(var.iter()).for_each(|(i, v)| *i = 1.0 / (v + 1e-3).sqrt());
            let saved =
                BatchNormSaved { x: &x, mean: &mean, inv_std: &inv, gamma: &gamma, relu: Some((&scale, &shift)) };
            g.throughput(bytes(3));
            g.bench_function(BenchmarkId::new("backward_relu", name), |bch| {
                pool.install(|| {
                    bch.iter(|| {
                        batch_norm_backward(&ctx, saved, &dy, Some(&mut dx), (&mut dg, &mut db), false).unwrap()
                    })
                })
            });
        }
        g.finish();
    }
}

/// (layer, H = W, Cin, Cout, kernel, stride): the residual network's convolutions (same
/// padding, no bias), at one part of samples: the executor runs a batch part by part and
/// joins its batch normalizations' statistics over the parts.
const RESNET_CONVS: [(&str, usize, usize, usize, usize, usize); 5] = [
    ("resnet_conv1", 28, 1, 32, 3, 1),
    ("resnet_block32", 28, 32, 32, 3, 1),
    ("resnet_down", 28, 32, 64, 3, 2),
    ("resnet_block64", 14, 64, 64, 3, 1),
    ("resnet_proj", 28, 32, 64, 1, 2),
];

fn resnet_convs(c: &mut Criterion) {
    let isa = bench_isa();
    for threads in [1, 2] {
        let pool = pool(threads);
        let mut g = c.benchmark_group(format!("resnet_convs_{threads}t"));
        g.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
        for (name, hw, cin, cout, k, s) in RESNET_CONVS {
            let d = Conv2d::new([N_COUPLED, hw, hw, cin], [k, k, cin, cout], (s, s), (1, 1), Padding::Same).unwrap();
            let x = fill(1, d.input_shape().iter().product());
            let w = fill(2, d.filter_shape().iter().product());
            let dy = fill(4, d.output_shape().iter().product());
            let (mut y, mut dx, mut dw) = (zeros(dy.len()), zeros(x.len()), zeros(w.len()));
            g.throughput(flops(d.flops()));
            for (pass, kind) in
                [("fwd", Pass::Forward), ("bwd_data", Pass::BackwardData), ("bwd_filter", Pass::BackwardFilter)]
            {
                if kind == Pass::BackwardData && cin == 1 {
                    continue; // the model needs no gradient of its input
                }
                for (aname, algo) in ALGOS.into_iter().filter(|(_, a)| a.supports(&d, kind)) {
                    let ctx = Ctx { algo, isa, weights_version: None };
                    g.bench_function(BenchmarkId::new(format!("{pass}/{aname}"), name), |bch| {
                        pool.install(|| match kind {
                            Pass::Forward => {
                                bch.iter(|| conv2d_forward(&ctx, &d, &x, &w, None, false, &mut y).unwrap())
                            }
                            Pass::BackwardData => {
                                bch.iter(|| conv2d_backward_data(&ctx, &d, &dy, &w, &mut dx, false).unwrap())
                            }
                            Pass::BackwardFilter => {
                                bch.iter(|| conv2d_backward_filter(&ctx, &d, &x, &dy, &mut dw, None, false).unwrap())
                            }
                        })
                    });
                }
            }
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = ember_benches::criterion();
    targets = layers, batch_norms, resnet_convs
}
criterion_main!(benches);

/// `len` values of `ember_benches::fill(seed, len)` in a buffer that starts on a 64-byte
/// line, as the model's activation, gradient and parameter buffers do (a `Vec` of a few
/// hundred KiB starts 16 bytes past one, and AVX-512 accesses that straddle two lines would
/// time something the model never runs).
fn fill(seed: u64, len: usize) -> Arena {
    Arena::from_values(&ember_benches::fill(seed, len)).expect("a bench buffer")
}

/// `len` zeros on a 64-byte line (see [`fill`]).
fn zeros(len: usize) -> Arena {
    Arena::zeros(len).expect("a bench buffer")
}

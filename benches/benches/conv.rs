//! Convolution and pooling benchmarks. Throughput is the direct-convolution FLOP count
//! `2·N·Ho·Wo·Cout·KH·KW·Cin` whatever the algorithm, so faster algorithms show their
//! *effective* rate. Groups: `conv_{fwd,bwd_data,bwd_filter}_{1t,mt}`, function = algorithm,
//! parameter = shape name; `pool_1t/{max_fwd,max_bwd}/seed_pool`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ember_benches::{bench_isa, fill, flops, pool};
use ember_kernels::conv::{
    conv2d_backward_data, conv2d_backward_filter, conv2d_forward, Conv2d, ConvAlgo, Padding, Pass,
};
use ember_kernels::pool::{max_pool_backward, max_pool_forward, Pool2d};
use ember_kernels::Ctx;
use std::time::Duration;

/// (name, N, H=W, Cin, Cout, K, stride, padding)
type Shape = (&'static str, usize, usize, usize, usize, usize, usize, Padding);

/// The shapes, plus `pw28_64_256_n1`: a cache-resident 1x1 convolution (N = 1) that
/// shows the kernels' own rate where `pw56_64_256` (25.7 MB of output) is bound by memory;
/// and the example resnet's convolutions as its training step runs them (whole batches of
/// 128: batch normalization couples the batch): its stem, its two 3x3 stride-1 shapes, the
/// stride-2 3x3 and the stride-2 1x1 projection of its downsampling block.
const SHAPES: [Shape; 13] = [
    ("seed_conv1", 32, 28, 1, 32, 3, 1, Padding::Valid),
    ("mnist_conv2", 32, 13, 32, 64, 3, 1, Padding::Valid),
    ("res56_64", 8, 56, 64, 64, 3, 1, Padding::Same),
    ("res28_128", 8, 28, 128, 128, 3, 1, Padding::Same),
    ("res14_256", 8, 14, 256, 256, 3, 1, Padding::Same),
    ("pw56_64_256", 8, 56, 64, 256, 1, 1, Padding::Valid),
    ("down56_64_128", 8, 56, 64, 128, 3, 2, Padding::Same),
    ("pw28_64_256_n1", 1, 28, 64, 256, 1, 1, Padding::Valid),
    ("resnet28_32", 128, 28, 32, 32, 3, 1, Padding::Same),
    ("resnet14_64", 128, 14, 64, 64, 3, 1, Padding::Same),
    ("resnet_stem", 128, 28, 1, 32, 3, 1, Padding::Same),
    ("resnet_down", 128, 28, 32, 64, 3, 2, Padding::Same),
    ("resnet_proj", 128, 28, 32, 64, 1, 2, Padding::Same),
];

const ALGOS: [(&str, ConvAlgo); 5] = [
    ("direct", ConvAlgo::Direct),
    ("im2col", ConvAlgo::Im2col),
    ("winograd2x3", ConvAlgo::Winograd2x3),
    ("winograd4x3", ConvAlgo::Winograd4x3),
    ("auto", ConvAlgo::Auto),
];

fn conv_groups(c: &mut Criterion, suffix: &str, threads: usize) {
    let isa = bench_isa();
    let pool = pool(threads);
    for pass in ["fwd", "bwd_data", "bwd_filter"] {
        let mut g = c.benchmark_group(format!("conv_{pass}_{suffix}"));
        g.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
        for (name, n, hw, cin, cout, k, s, pad) in SHAPES {
            let d = Conv2d::new([n, hw, hw, cin], [k, k, cin, cout], (s, s), (1, 1), pad).unwrap();
            let x = fill(1, d.input_shape().iter().product());
            let w = fill(2, d.filter_shape().iter().product());
            let bias = fill(3, cout);
            let dy = fill(4, d.output_shape().iter().product());
            let (mut y, mut dx, mut dw, mut db) =
                (vec![0.0; dy.len()], vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; cout]);
            g.throughput(flops(d.flops()));
            let pass_kind = match pass {
                "fwd" => Pass::Forward,
                "bwd_data" => Pass::BackwardData,
                _ => Pass::BackwardFilter,
            };
            for (aname, algo) in ALGOS.into_iter().filter(|(_, a)| a.supports(&d, pass_kind)) {
                let opts = Ctx { algo, isa, weights_version: None };
                g.bench_function(BenchmarkId::new(aname, name), |b| {
                    pool.install(|| match pass {
                        // The forward pass fuses bias + ReLU, as the CNN runs it.
                        "fwd" => b.iter(|| conv2d_forward(&opts, &d, &x, &w, Some(&bias), true, &mut y).unwrap()),
                        "bwd_data" => b.iter(|| conv2d_backward_data(&opts, &d, &dy, &w, &mut dx, false).unwrap()),
                        _ => b.iter(|| {
                            conv2d_backward_filter(&opts, &d, &x, &dy, &mut dw, Some(&mut db), false).unwrap()
                        }),
                    })
                });
            }
        }
        g.finish();
    }
}

fn conv_1t(c: &mut Criterion) {
    conv_groups(c, "1t", 1);
    let one = pool(1);
    let p = Pool2d::new([32, 26, 26, 32], (2, 2), (2, 2), Padding::Valid).unwrap();
    let x = fill(5, p.input_shape().iter().product());
    let dy = fill(6, p.output_shape().iter().product());
    let (mut y, mut arg, mut dx) = (vec![0.0; dy.len()], vec![0u32; dy.len()], vec![0.0; x.len()]);
    let mut g = c.benchmark_group("pool_1t");
    g.sample_size(20).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    g.bench_function(BenchmarkId::new("max_fwd", "seed_pool"), |b| {
        one.install(|| b.iter(|| max_pool_forward(&Ctx::new(), &p, &x, &mut y, &mut arg).unwrap()))
    });
    max_pool_forward(&Ctx::new(), &p, &x, &mut y, &mut arg).unwrap();
    g.bench_function(BenchmarkId::new("max_bwd", "seed_pool"), |b| {
        one.install(|| b.iter(|| max_pool_backward(&Ctx::new(), &p, &dy, &arg, &mut dx).unwrap()))
    });
    g.finish();
}

fn conv_mt(c: &mut Criterion) {
    conv_groups(c, "mt", std::thread::available_parallelism().map_or(1, |n| n.get()));
}

criterion_group! {
    name = conv;
    config = ember_benches::criterion();
    targets = conv_1t, conv_mt
}
criterion_main!(conv);

//! The elementwise activations on one thread, 2^20 floats (a conv layer's output for a
//! part of 16 samples is 0.1-0.5M; a whole batch of 128, 1-3M): group `activations_1t`,
//! functions `fwd/<act>` and `bwd/<act>` run the vectorised slice kernels on the bench ISA,
//! `fwd_scalar/<act>` and `bwd_scalar/<act>` the per-element formulas (`Act::apply`,
//! `Act::derivative` on the platform's `expf`/`tanhf`/`log1pf` and `libm`'s `erff`), which
//! is what the slice kernels ran before they were vectorised. Throughput in elements.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ember_benches::{bench_isa, pool};
use ember_kernels::activation::{act_backward, act_forward_inplace, Act};
use ember_kernels::Ctx;
use std::time::Duration;

const LEN: usize = 1 << 20;

const ACTS: [(&str, Act); 8] = [
    ("relu", Act::Relu),
    ("sigmoid", Act::Sigmoid),
    ("tanh", Act::Tanh),
    ("elu", Act::Elu),
    ("selu", Act::Selu),
    ("gelu", Act::Gelu),
    ("silu", Act::Silu),
    ("softplus", Act::Softplus),
];

fn activations(c: &mut Criterion) {
    let ctx = Ctx::for_isa(bench_isa());
    let one = pool(1);
    let x: Vec<f32> = (0..LEN).map(|i| ((i * 7919) % 2000) as f32 / 250.0 - 4.0).collect();
    let mut g = c.benchmark_group("activations_1t");
    g.sample_size(20).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(LEN as u64));
    for (name, a) in ACTS {
        let mut y = x.clone();
        act_forward_inplace(&ctx, a, &mut y).unwrap();
        let mut v = x.clone();
        let mut d = vec![1.0f32; LEN];
        g.bench_function(BenchmarkId::new("fwd", name), |b| {
            one.install(|| {
                b.iter(|| {
                    v.copy_from_slice(&x);
                    act_forward_inplace(&ctx, a, &mut v).unwrap()
                })
            })
        });
        g.bench_function(BenchmarkId::new("fwd_scalar", name), |b| {
            b.iter(|| v.iter_mut().zip(&x).for_each(|(v, &x)| *v = a.apply(x)))
        });
        g.bench_function(BenchmarkId::new("bwd", name), |b| {
            one.install(|| b.iter(|| act_backward(&ctx, a, &x, &y, &mut d).unwrap()))
        });
        g.bench_function(BenchmarkId::new("bwd_scalar", name), |b| {
            b.iter(|| d.iter_mut().zip(x.iter().zip(&y)).for_each(|(d, (&x, &y))| *d *= a.derivative(x, y)))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = ember_benches::criterion();
    targets = activations
}
criterion_main!(benches);

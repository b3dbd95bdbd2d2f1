//! Single-thread sgemm: groups `sgemm_1t` (square) and `sgemm_shapes` (the CNN's skinny
//! products). Ember runs in a 1-thread rayon pool, matrixmultiply with one thread.

mod sgemm_common;

use criterion::{criterion_group, criterion_main, Criterion};
use ember_benches::{bench_isa, pool, set_matrixmultiply_threads};
use sgemm_common::{bench_product, square_group};

/// (m, n, k) of the products the reference CNN runs (dense layer and conv lowering).
const SHAPES: [(usize, usize, usize); 5] =
    [(32, 10, 5408), (5408, 10, 32), (32, 5408, 10), (21632, 32, 9), (9, 32, 21632)];

fn benches(c: &mut Criterion) {
    set_matrixmultiply_threads(1);
    let isa = bench_isa();
    let one = pool(1);
    square_group(c, "sgemm_1t", isa, &one);
    let mut g = c.benchmark_group("sgemm_shapes");
    g.sample_size(20).warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(2));
    for (m, n, k) in SHAPES {
        bench_product(&mut g, isa, &format!("{m}x{n}x{k}"), (m, n, k), false, &one);
    }
    g.finish();
}

criterion_group! {
    name = sgemm_1t;
    config = ember_benches::criterion();
    targets = benches
}
criterion_main!(sgemm_1t);

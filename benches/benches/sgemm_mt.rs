//! Multi-thread sgemm: group `sgemm_mt`, every core for Ember (rayon) and matrixmultiply
//! (its `threading` feature).

mod sgemm_common;

use criterion::{criterion_group, criterion_main, Criterion};
use ember_benches::{bench_isa, pool, set_matrixmultiply_threads};
use sgemm_common::square_group;

fn benches(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    set_matrixmultiply_threads(threads);
    let isa = bench_isa();
    square_group(c, "sgemm_mt", isa, &pool(threads));
}

criterion_group! {
    name = sgemm_mt;
    config = ember_benches::criterion();
    targets = benches
}
criterion_main!(sgemm_mt);

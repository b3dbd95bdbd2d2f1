//! Shared helpers for Ember's criterion benchmarks and the `peak` probe.

use criterion::Throughput;

pub mod networks;
pub mod peak;

/// A rayon pool of exactly `n` threads (benchmarks run inside `pool.install`).
pub fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(n).build().expect("rayon pool")
}

/// Criterion throughput of `flops` floating-point operations, reported as elements/s: read
/// "Gelem/s" in the reports as GFLOP/s.
pub fn flops(flops: u64) -> Throughput {
    Throughput::Elements(flops)
}

pub use ember_kernels::reference::fill_uniform as fill;

/// Sets matrixmultiply's thread count. It reads `MATMUL_NUM_THREADS` once, on first use, so
/// each bench binary calls this at start-up before any product.
pub fn set_matrixmultiply_threads(n: usize) {
    std::env::set_var("MATMUL_NUM_THREADS", n.to_string());
}

/// The ISA the benchmarks run on: `EMBER_ISA` if set (an error if the CPU lacks it), else
/// the best detected. Also made the process default.
pub fn bench_isa() -> ember_kernels::Isa {
    let isa = ember_kernels::Isa::from_env().unwrap_or_else(|e| panic!("EMBER_ISA: {e}"));
    ember_kernels::arch::set_default_isa(isa).expect("checked above");
    eprintln!("ember benchmarks on ISA {isa}");
    isa
}

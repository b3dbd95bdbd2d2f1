//! The body shared by the `sgemm_1t` and `sgemm_mt` bench binaries.

use criterion::{BenchmarkId, Criterion};
use ember_benches::{fill, flops};
use ember_kernels::gemm::{sgemm_epilogue, Epilogue, MatMut, MatRef, Rhs};
use ember_kernels::Ctx;
use ember_kernels::{reference, Isa};

/// Square sizes of the `sgemm_1t` / `sgemm_mt` groups.
pub const SQUARE: [usize; 6] = [64, 128, 256, 512, 1024, 2048];

/// Benchmarks `C = A*B` (row-major, alpha 1, beta 0) for each function in a group.
pub fn bench_product(
    g: &mut criterion::BenchmarkGroup<criterion::measurement::WallTime>,
    isa: Isa,
    id: &str,
    (m, n, k): (usize, usize, usize),
    with_naive: bool,
    pool: &rayon::ThreadPool,
) {
    let a = fill(1, m * k);
    let b = fill(2, k * n);
    let mut c = vec![0.0f32; m * n];
    g.throughput(flops(2 * (m * n * k) as u64));
    g.bench_function(BenchmarkId::new("ember", id), |bch| {
        pool.install(|| {
            bch.iter(|| {
                sgemm_epilogue(
                    &Ctx::for_isa(isa),
                    1.0,
                    MatRef::row_major(&a, m, k).unwrap(),
                    Rhs::View(MatRef::row_major(&b, k, n).unwrap()),
                    0.0,
                    MatMut::row_major(&mut c, m, n).unwrap(),
                    Epilogue::NONE,
                )
                .unwrap()
            })
        })
    });
    g.bench_function(BenchmarkId::new("matrixmultiply", id), |bch| {
        bch.iter(|| {
            // SAFETY: dense row-major buffers of exactly m*k, k*n and m*n floats.
            unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    a.as_ptr(),
                    k as isize,
                    1,
                    b.as_ptr(),
                    n as isize,
                    1,
                    0.0,
                    c.as_mut_ptr(),
                    n as isize,
                    1,
                )
            }
        })
    });
    if with_naive {
        g.bench_function(BenchmarkId::new("naive", id), |bch| {
            bch.iter(|| {
                reference::sgemm(
                    1.0,
                    MatRef::row_major(&a, m, k).unwrap(),
                    MatRef::row_major(&b, k, n).unwrap(),
                    0.0,
                    &mut MatMut::row_major(&mut c, m, n).unwrap(),
                )
                .unwrap()
            })
        });
    }
}

/// Square products for one group name, every size.
pub fn square_group(c: &mut Criterion, name: &str, isa: Isa, pool: &rayon::ThreadPool) {
    let mut g = c.benchmark_group(name);
    g.sample_size(10).warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(2));
    for n in SQUARE {
        bench_product(&mut g, isa, &n.to_string(), (n, n, n), n <= 256, pool);
    }
    g.finish();
}

//! Single-thread sgemm: groups `sgemm_1t` (square), `sgemm_shapes` (the CNN's skinny
//! products) and `sgemm_positions` (Winograd's per-position products in two layouts).
//! Ember runs in a 1-thread rayon pool, matrixmultiply with one thread.

mod sgemm_common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ember_benches::{bench_isa, fill, flops, pool, set_matrixmultiply_threads};
use ember_kernels::gemm::{sgemm, MatMut, MatRef};
use ember_kernels::{Ctx, Isa};
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
    positions_group(c, isa, &one);
}

/// The 36 per-position products of one Winograd F(4x4) block of resnet_block32's forward
/// (42 tiles x 32 input channels times a 32 x 32 transformed filter, each), with each
/// operand laid out tile-major (a tile's 36 positions contiguous, so one product's rows are
/// `36 * 32` floats apart: the layout the convolution uses for A = the transformed input,
/// B = the transformed filter and C = the products) or position-major (one product's
/// matrix contiguous). `tile_major` and `position_major` lay out all three;
/// `a_position_major`, `b_position_major` and `c_position_major` one each. Same arithmetic;
/// the gaps are what each operand's layout costs the GEMM (BENCHMARKS.md, sessions 36 and
/// 37). Only the 32-channel shape: at 64 channels the public `sgemm` packs (the products
/// are no longer skinny), which the convolution's strided batch never does.
fn positions_group(c: &mut Criterion, isa: Isa, one: &rayon::ThreadPool) {
    const POSITIONS: usize = 36;
    const LAYOUTS: [(&str, [bool; 3]); 5] = [
        ("tile_major", [false; 3]),
        ("a_position_major", [true, false, false]),
        ("b_position_major", [false, true, false]),
        ("c_position_major", [false, false, true]),
        ("position_major", [true; 3]),
    ];
    let mut g = c.benchmark_group("sgemm_positions");
    g.sample_size(20).warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(2));
    let (t, k, n) = (42, 32, 32);
    let a = fill(1, POSITIONS * t * k);
    let b = fill(2, POSITIONS * k * n);
    let mut out = vec![0.0f32; POSITIONS * t * n];
    g.throughput(flops(2 * (POSITIONS * t * k * n) as u64));
    for (layout, [a_pm, b_pm, c_pm]) in LAYOUTS {
        // Offset of product p's `height x width` matrix per p, and its row stride.
        let step = |pm: bool, height: usize, width: usize| if pm { height * width } else { width };
        let rows = |pm: bool, width: usize| if pm { width } else { POSITIONS * width };
        g.bench_function(BenchmarkId::new("ember", layout), |bch| {
            one.install(|| {
                bch.iter(|| {
                    for p in 0..POSITIONS {
                        let av = MatRef::new(&a[p * step(a_pm, t, k)..], t, k, rows(a_pm, k), 1).unwrap();
                        let bv = MatRef::new(&b[p * step(b_pm, k, n)..], k, n, rows(b_pm, n), 1).unwrap();
                        let cv = MatMut::new(&mut out[p * step(c_pm, t, n)..], t, n, rows(c_pm, n), 1).unwrap();
                        sgemm(&Ctx::for_isa(isa), 1.0, av, bv, 0.0, cv).unwrap();
                    }
                })
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = sgemm_1t;
    config = ember_benches::criterion();
    targets = benches
}
criterion_main!(sgemm_1t);

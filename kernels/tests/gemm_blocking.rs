//! GEMM paths the random shapes of `gemm.rs` (dimensions up to 300) never reach: products
//! past every cache block (k > KC = 512, n > NC ≈ 4096, m > MC ≈ 252), so the `pc > 0`,
//! `jc > 0` and `ic > 0` loops and the packed-B offsets run; operands in general and zero
//! (broadcast) strides through the packing routines; and the epilogue (bias, ReLU) on a C
//! with non-unit column stride, whose tiles go through the stack-tile store. Every ISA.
//!
//! Tolerance as in `gemm.rs`: `(k + 3)·ε·(|α| Σ|a b| + |β c| + |bias|)` per element.

mod common;

use common::{assert_close, fill, EPS};
use ember_kernels::gemm::{sgemm_epilogue, Epilogue, MatMut, MatRef, PackedB, Rhs};
use ember_kernels::Ctx;
use ember_kernels::{reference, Isa};

/// Stores the row-major `rows x cols` matrix `v` with strides `(rs, cs)` in a buffer whose
/// other elements are NaN (so a read outside the view shows).
fn store(v: &[f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Vec<f32> {
    let len = if rows * cols == 0 { 0 } else { (rows - 1) * rs + (cols - 1) * cs + 1 };
    let mut buf = vec![f32::NAN; len];
    for i in 0..rows {
        for j in 0..cols {
            buf[i * rs + j * cs] = v[i * cols + j];
        }
    }
    buf
}

/// Strides of a `rows x cols` operand: row-major, padded row-major, column-major, padded
/// column-major, and interleaved (both strides above 1).
fn layouts(rows: usize, cols: usize) -> [(usize, usize); 5] {
    [(cols, 1), (cols + 5, 1), (1, rows), (1, rows + 3), (2 * cols, 2)]
}

/// `max(α·A·B + β·C + bias, 0)` (ReLU optional) and its error bound, from the f64 reference
/// on the values and on their magnitudes. A, B, C row-major.
#[allow(clippy::too_many_arguments)]
fn expected(
    (m, n, k): (usize, usize, usize),
    a: MatRef,
    b: MatRef,
    alpha: f32,
    beta: f32,
    c: &[f32],
    bias: &[f32],
    relu: bool,
) -> (Vec<f32>, Vec<f64>) {
    let mut want = c.to_vec();
    reference::sgemm(alpha, a, b, beta, &mut MatMut::row_major(&mut want, m, n).unwrap()).unwrap();
    let abs = |v: MatRef| {
        let mut d = vec![0.0; v.rows() * v.cols()];
        for i in 0..v.rows() {
            for j in 0..v.cols() {
                d[i * v.cols() + j] = v.at(i, j).abs();
            }
        }
        d
    };
    let (aa, ba) = (abs(a), abs(b));
    let mut mag: Vec<f32> = c.iter().map(|x| x.abs()).collect();
    let (av, bv) = (MatRef::row_major(&aa, m, k).unwrap(), MatRef::row_major(&ba, k, n).unwrap());
    reference::sgemm(alpha.abs(), av, bv, beta.abs(), &mut MatMut::row_major(&mut mag, m, n).unwrap()).unwrap();
    for (i, (w, g)) in want.iter_mut().zip(mag.iter_mut()).enumerate() {
        *w += bias[i % n];
        *g += bias[i % n].abs();
        if relu {
            *w = w.max(0.0);
        }
    }
    let tol = mag.iter().map(|&g| (k as f64 + 3.0) * EPS * f64::from(g) + 1e-30).collect();
    (want, tol)
}

/// Runs `sgemm_with` into a column-major C (leading dimension m + 2) on one thread and on
/// three (B is packed serially or in parallel), checks both agree, returns C row-major.
#[allow(clippy::too_many_arguments)]
fn run_col_major_c(
    isa: Isa,
    (m, n): (usize, usize),
    alpha: f32,
    a: MatRef,
    b: Rhs,
    beta: f32,
    c: &[f32],
    epi: Epilogue,
) -> Vec<f32> {
    let ld = m + 2;
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut buf = store(c, m, n, 1, ld);
        pool.install(|| {
            sgemm_epilogue(&Ctx::for_isa(isa), alpha, a, b, beta, MatMut::new(&mut buf, m, n, 1, ld).unwrap(), epi)
        })
        .unwrap();
        buf
    };
    let buf = run(1);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&buf), bits(&run(3)), "{isa}: 1 vs 3 threads");
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = buf[i + j * ld];
        }
    }
    out
}

#[test]
fn products_past_every_cache_block_in_every_layout() {
    let (alpha, beta) = (0.75f32, -0.5f32);
    // m = 17, n = 33: just past the sizes that take the unpacked kernels (16, 32).
    for (m, n, k) in [(17, 4096 + 37, 512 + 21), (260, 33, 512 + 88)] {
        let (a, b, c, bias) = (fill(1, m * k), fill(2, k * n), fill(3, m * n), fill(4, n));
        let (ar, br) = (MatRef::row_major(&a, m, k).unwrap(), MatRef::row_major(&b, k, n).unwrap());
        let (want, tol) = expected((m, n, k), ar, br, alpha, beta, &c, &bias, true);
        let epi = Epilogue { bias: Some(&bias), relu: true };
        for isa in Isa::available() {
            for (i, ((rsa, csa), (rsb, csb))) in layouts(m, k).into_iter().zip(layouts(k, n)).enumerate() {
                let (sa, sb) = (store(&a, m, k, rsa, csa), store(&b, k, n, rsb, csb));
                let av = MatRef::new(&sa, m, k, rsa, csa).unwrap();
                let bv = MatRef::new(&sb, k, n, rsb, csb).unwrap();
                let got = run_col_major_c(isa, (m, n), alpha, av, Rhs::View(bv), beta, &c, epi);
                assert_close(&got, &want, &tol, &format!("{isa} {m}x{n}x{k} layout {i}"));
                if i == 2 {
                    // B packed ahead of time from a column-major view.
                    let pb = PackedB::new(&Ctx::for_isa(isa), bv).unwrap();
                    let got = run_col_major_c(isa, (m, n), alpha, av, Rhs::Packed(&pb), beta, &c, epi);
                    assert_close(&got, &want, &tol, &format!("{isa} {m}x{n}x{k} packed"));
                }
            }
        }
    }
}

/// Zero strides: A with a zero column stride (every row one repeated value), B with a zero
/// row stride (every row the same), both zero (one value), through packing (shapes large
/// enough to skip the unpacked kernels, k past one depth block).
#[test]
fn broadcast_operands_through_packing() {
    let (m, n, k) = (37, 75, 600);
    let (a, b, bias) = (fill(5, m * k), fill(6, k * n), vec![0.0; n]);
    let c = vec![0.0; m * n];
    let cases: [(MatRef, MatRef); 3] = [
        (MatRef::new(&a, m, k, k, 0).unwrap(), MatRef::row_major(&b, k, n).unwrap()),
        (MatRef::row_major(&a, m, k).unwrap(), MatRef::new(&b, k, n, 0, 1).unwrap()),
        (MatRef::new(&a[..1], m, k, 0, 0).unwrap(), MatRef::new(&b[..1], k, n, 0, 0).unwrap()),
    ];
    for (i, (av, bv)) in cases.into_iter().enumerate() {
        let (want, tol) = expected((m, n, k), av, bv, 1.0, 0.0, &c, &bias, false);
        for isa in Isa::available() {
            let got = run_col_major_c(isa, (m, n), 1.0, av, Rhs::View(bv), 0.0, &c, Epilogue::NONE);
            assert_close(&got, &want, &tol, &format!("{isa} broadcast case {i}"));
            let pb = PackedB::new(&Ctx::for_isa(isa), bv).unwrap();
            let got = run_col_major_c(isa, (m, n), 1.0, av, Rhs::Packed(&pb), 0.0, &c, Epilogue::NONE);
            assert_close(&got, &want, &tol, &format!("{isa} broadcast case {i}, packed"));
        }
    }
}

//! sgemm on every available ISA against the f64 reference (and `matrixmultiply` as a second
//! opinion), over random shapes, strides, transposes and coefficients.
//!
//! Tolerance: the standard bound for a k-term dot product computed in f32 is
//! `|fl(a·b) - a·b| <= γ_k Σ|a_i b_i|` with `γ_k ≈ k·u`, `u = ε/2`. We allow
//! `(k + 2)·ε·(|α| Σ_p |a_ip b_pj| + |β c_ij|)`: twice that, plus the alpha/beta steps and
//! the reference's own final rounding. Blocking or FMA order cannot exceed it.

mod common;

use common::{assert_close, coeff, dim, fill, EPS};
use ember_kernels::gemm::sgemm;
use ember_kernels::gemm::{sgemm_epilogue, Epilogue, MatMut, MatRef, PackedB, Rhs};
use ember_kernels::Ctx;
use ember_kernels::{reference, Error, Isa};
use proptest::prelude::*;

/// How an operand is stored: transposed (column-major) or not, and padding per leading dim.
#[derive(Debug, Clone, Copy)]
struct Layout {
    trans: bool,
    pad: usize,
}

fn layout() -> impl Strategy<Value = Layout> {
    (any::<bool>(), prop_oneof![Just(0usize), 1usize..5]).prop_map(|(trans, pad)| Layout { trans, pad })
}

/// Buffer and strides for a `rows x cols` operand in layout `l`.
fn storage(rows: usize, cols: usize, l: Layout, seed: u64) -> (Vec<f32>, usize, usize) {
    let (outer, inner) = if l.trans { (cols, rows) } else { (rows, cols) };
    let ld = inner + l.pad;
    let buf = fill(seed, outer * ld);
    if l.trans {
        (buf, 1, ld)
    } else {
        (buf, ld, 1)
    }
}

#[derive(Debug, Clone)]
struct Case {
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    beta: f32,
    la: Layout,
    lb: Layout,
    lc: Layout,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (dim(), dim(), dim(), coeff(), coeff(), layout(), layout(), layout(), any::<u64>())
        .prop_map(|(m, n, k, alpha, beta, la, lb, lc, seed)| Case { m, n, k, alpha, beta, la, lb, lc, seed })
}

/// Runs the case on `isa` (and, when `check_mm`, on matrixmultiply), checking each against the
/// reference within the documented bound, and that C's padding is untouched.
fn check_case(isa: Isa, t: &Case, check_mm: bool) {
    let (a, rsa, csa) = storage(t.m, t.k, t.la, t.seed);
    let (b, rsb, csb) = storage(t.k, t.n, t.lb, t.seed.wrapping_add(1));
    let (mut c0, rsc, csc) = storage(t.m, t.n, t.lc, t.seed.wrapping_add(2));
    if t.beta == 0.0 {
        // beta = 0 must overwrite C without reading it: NaN here must not leak through.
        c0.iter_mut().step_by(3).for_each(|x| *x = f32::NAN);
    }
    let av = MatRef::new(&a, t.m, t.k, rsa, csa).unwrap();
    let bv = MatRef::new(&b, t.k, t.n, rsb, csb).unwrap();

    let mut want = c0.clone();
    reference::sgemm(t.alpha, av, bv, t.beta, &mut MatMut::new(&mut want, t.m, t.n, rsc, csc).unwrap()).unwrap();
    // Magnitude for the bound: |α||A||B| + |β||C|.
    let (aa, ba): (Vec<f32>, Vec<f32>) = (a.iter().map(|x| x.abs()).collect(), b.iter().map(|x| x.abs()).collect());
    let mut mag: Vec<f32> = c0.iter().map(|x| if x.is_nan() { 0.0 } else { x.abs() }).collect();
    reference::sgemm(
        t.alpha.abs(),
        MatRef::new(&aa, t.m, t.k, rsa, csa).unwrap(),
        MatRef::new(&ba, t.k, t.n, rsb, csb).unwrap(),
        t.beta.abs(),
        &mut MatMut::new(&mut mag, t.m, t.n, rsc, csc).unwrap(),
    )
    .unwrap();
    let tol: Vec<f64> = mag.iter().map(|&x| (t.k as f64 + 2.0) * EPS * f64::from(x) + 1e-30).collect();

    let mut got = c0.clone();
    sgemm_epilogue(
        &Ctx::for_isa(isa),
        t.alpha,
        av,
        Rhs::View(bv),
        t.beta,
        MatMut::new(&mut got, t.m, t.n, rsc, csc).unwrap(),
        Epilogue::NONE,
    )
    .unwrap();
    // Padding outside the view keeps its (possibly NaN) contents: compare only the view and
    // check the rest bit for bit.
    let in_view = view_mask(c0.len(), t.m, t.n, rsc, csc);
    for i in 0..c0.len() {
        if !in_view[i] {
            assert_eq!(got[i].to_bits(), c0[i].to_bits(), "{isa}: padding element {i} changed");
            got[i] = want[i];
        }
    }
    assert_close(&got, &want, &tol, &format!("{isa} {t:?}"));

    if check_mm && t.beta != 0.0 {
        let mut mm = c0.clone();
        // SAFETY: the views above were validated against these buffers and strides.
        unsafe {
            matrixmultiply::sgemm(
                t.m,
                t.k,
                t.n,
                t.alpha,
                a.as_ptr(),
                rsa as isize,
                csa as isize,
                b.as_ptr(),
                rsb as isize,
                csb as isize,
                t.beta,
                mm.as_mut_ptr(),
                rsc as isize,
                csc as isize,
            );
        }
        let tol2: Vec<f64> = tol.iter().map(|x| 2.0 * x).collect();
        for i in (0..c0.len()).filter(|&i| !in_view[i]) {
            mm[i] = got[i];
        }
        assert_close(&got, &mm, &tol2, &format!("{isa} vs matrixmultiply {t:?}"));
    }
}

fn view_mask(len: usize, m: usize, n: usize, rs: usize, cs: usize) -> Vec<bool> {
    let mut v = vec![false; len];
    for i in 0..m {
        for j in 0..n {
            v[i * rs + j * cs] = true;
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::cases(64)))]

    #[test]
    fn sgemm_matches_reference_on_every_isa(t in case()) {
        for isa in Isa::available() {
            check_case(isa, &t, isa == Isa::detect());
        }
    }

    #[test]
    fn prepacked_b_and_epilogue_match_reference(
        m in dim(), n in dim(), k in dim(), relu in any::<bool>(), seed in any::<u64>(),
    ) {
        let a = fill(seed, m * k);
        let b = fill(seed ^ 7, k * n);
        let bias = fill(seed ^ 9, n);
        let av = MatRef::row_major(&a, m, k).unwrap();
        let bv = MatRef::row_major(&b, k, n).unwrap();
        let mut want = vec![0.0; m * n];
        reference::sgemm(1.0, av, bv, 0.0, &mut MatMut::row_major(&mut want, m, n).unwrap()).unwrap();
        for (idx, w) in want.iter_mut().enumerate() {
            *w += bias[idx % n.max(1)];
            if relu { *w = w.max(0.0); }
        }
        let tol: Vec<f64> = vec![(k as f64 + 3.0) * EPS * (k as f64 + 1.0); m * n];
        for isa in Isa::available() {
            // Pack something else first, then repack: the buffer must be reused correctly.
            let mut pb = PackedB::new(&Ctx::for_isa(isa), MatRef::row_major(&[1.0; 6], 2, 3).unwrap()).unwrap();
            pb.repack(bv).unwrap();
            let mut got = vec![f32::NAN; m * n];
            let epi = Epilogue { bias: Some(&bias), relu };
            sgemm_epilogue(&Ctx::for_isa(isa), 1.0, av, Rhs::Packed(&pb), 0.0, MatMut::row_major(&mut got, m, n).unwrap(), epi).unwrap();
            assert_close(&got, &want, &tol, &format!("{isa} packed m={m} n={n} k={k}"));
        }
    }
}

#[test]
fn results_are_bit_identical_for_any_thread_count() {
    // A square product (packed path) and two skinny ones (unpacked path, where it exists).
    for (m, n, k) in [(301, 263, 300), (4000, 10, 64), (20000, 32, 9)] {
        check_thread_invariance(m, n, k);
    }
}

fn check_thread_invariance(m: usize, n: usize, k: usize) {
    let a = fill(1, m * k);
    let b = fill(2, k * n);
    for isa in Isa::available() {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut c = vec![0.0f32; m * n];
            pool.install(|| {
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
            });
            c.iter().map(|x| x.to_bits()).collect::<Vec<u32>>()
        };
        let one = run(1);
        assert_eq!(one, run(2), "{isa} {m}x{n}x{k}: 1 vs 2 threads");
        assert_eq!(one, run(3), "{isa} {m}x{n}x{k}: 1 vs 3 threads");
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    let a = vec![0.0f32; 6];
    let b = vec![0.0f32; 6];
    let mut c = vec![0.0f32; 4];
    let isa = Isa::detect();
    let av = MatRef::row_major(&a, 2, 3).unwrap();
    let bv = MatRef::row_major(&b, 2, 3).unwrap(); // 2x3, but A needs 3 rows
    let r = sgemm_epilogue(
        &Ctx::for_isa(isa),
        1.0,
        av,
        Rhs::View(bv),
        0.0,
        MatMut::row_major(&mut c, 2, 2).unwrap(),
        Epilogue::NONE,
    );
    assert!(matches!(r, Err(Error::ShapeMismatch { what: "A.cols vs B.rows", .. })), "{r:?}");

    let bv = MatRef::row_major(&b, 3, 2).unwrap();
    let mut c6 = vec![0.0f32; 6];
    let r = sgemm_epilogue(
        &Ctx::for_isa(isa),
        1.0,
        av,
        Rhs::View(bv),
        0.0,
        MatMut::row_major(&mut c6, 3, 2).unwrap(),
        Epilogue::NONE,
    );
    assert!(matches!(r, Err(Error::ShapeMismatch { what: "C.rows vs A.rows", .. })), "{r:?}");

    let bias = [0.0f32; 3];
    let epi = Epilogue { bias: Some(&bias), relu: false };
    let r =
        sgemm_epilogue(&Ctx::for_isa(isa), 1.0, av, Rhs::View(bv), 0.0, MatMut::row_major(&mut c, 2, 2).unwrap(), epi);
    assert!(matches!(r, Err(Error::ShapeMismatch { what: "bias length vs C.cols", .. })), "{r:?}");

    // Views that run past their buffer or overlap are refused at construction.
    assert!(matches!(MatRef::new(&a, 2, 3, 3, 2), Err(Error::BufferTooSmall { needed: 8, len: 6, .. })));
    assert!(matches!(MatMut::new(&mut c, 2, 2, 1, 1), Err(Error::OverlappingOutput { .. })));
    assert!(matches!(MatMut::row_major(&mut c, 3, 2), Err(Error::ShapeMismatch { .. })));

    for missing in Isa::ALL.into_iter().filter(|i| !i.is_available()) {
        let r = sgemm_epilogue(
            &Ctx::for_isa(missing),
            1.0,
            av,
            Rhs::View(bv),
            0.0,
            MatMut::row_major(&mut c, 2, 2).unwrap(),
            Epilogue::NONE,
        );
        assert_eq!(r, Err(Error::IsaUnavailable(missing)));
    }
    if Isa::available().len() > 1 {
        let pb = PackedB::new(&Ctx::for_isa(Isa::Scalar), bv).unwrap();
        let r = sgemm_epilogue(
            &Ctx::for_isa(Isa::detect()),
            1.0,
            av,
            Rhs::Packed(&pb),
            0.0,
            MatMut::row_major(&mut c, 2, 2).unwrap(),
            Epilogue::NONE,
        );
        assert!(matches!(r, Err(Error::PackedForOtherIsa { .. })), "{r:?}");
    }
}

/// Regression: a cloned `PackedB` gives the same products as the original. (A derived
/// `Clone` copied the buffer verbatim while `panels()` recomputes the 64-byte alignment
/// offset from the new allocation, so clones read shifted panels.)
#[test]
fn cloned_packed_b_gives_the_same_products() {
    let (m, k, n) = (7, 19, 37);
    let (a, b) = (fill(1, m * k), fill(2, k * n));
    for isa in Isa::available() {
        let pb = PackedB::new(&Ctx::for_isa(isa), MatRef::row_major(&b, k, n).unwrap()).unwrap();
        let mut want = vec![0.0; m * n];
        sgemm(
            &Ctx::for_isa(isa),
            1.0,
            MatRef::row_major(&a, m, k).unwrap(),
            &pb,
            0.0,
            MatMut::row_major(&mut want, m, n).unwrap(),
        )
        .unwrap();
        // Keep the clones alive so their allocations (and alignment offsets) differ.
        let clones: Vec<PackedB> = (0..16).map(|_| pb.clone()).collect();
        for (i, c) in clones.iter().enumerate() {
            let mut got = vec![0.0; m * n];
            sgemm(
                &Ctx::for_isa(isa),
                1.0,
                MatRef::row_major(&a, m, k).unwrap(),
                c,
                0.0,
                MatMut::row_major(&mut got, m, n).unwrap(),
            )
            .unwrap();
            assert_eq!(got, want, "{isa}: clone {i}");
        }
    }
}

/// Regression: broadcast (zero-stride) operands of a huge depth sized the packing scratch
/// from a wrapped product and the packing kernel read past it (a segfault in release
/// builds); now a typed error.
#[test]
fn huge_broadcast_operands_are_a_size_error() {
    let k = (1usize << 60) + 1;
    let b64 = vec![1.0f32; 64];
    let a = MatRef::new(&[1.0], 16, k, 0, 0).unwrap();
    let b = MatRef::new(&b64, k, 64, 0, 1).unwrap();
    for isa in Isa::available() {
        let mut c = vec![0.0; 16 * 64];
        let r = sgemm_epilogue(
            &Ctx::for_isa(isa),
            1.0,
            a,
            Rhs::View(b),
            0.0,
            MatMut::row_major(&mut c, 16, 64).unwrap(),
            Epilogue::NONE,
        );
        assert!(matches!(r, Err(Error::SizeOverflow { .. })), "{isa}: {r:?}");
        assert!(matches!(PackedB::new(&Ctx::for_isa(isa), b), Err(Error::SizeOverflow { .. })), "{isa}");
    }
}

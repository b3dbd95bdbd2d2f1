//! Convolution, every pass x algorithm x available ISA, against the f64 reference; plus the
//! adjoint identity ⟨dY, fwd(X,W)⟩ = ⟨bwd_data(dY,W), X⟩ = ⟨bwd_filter(X,dY), W⟩.
//!
//! Tolerance, derived like the GEMM's: an output that sums L products in f32 is within
//! `(L + 2)·ε·Σ|terms|` of the exact value. Σ|terms| is computed by running the reference on
//! absolute values; L is kh·kw·cin (forward), kh·kw·cout (backward-data) and n·ho·wo
//! (backward-filter; blocks are accumulated with beta = 1, which adds at most one rounding
//! per block, covered by the +2 for the block counts these tests reach).
//!
//! Winograd adds the rounding of its transforms, whose coefficients reach 8 (F(4x4)), and an
//! element's error follows the magnitude of its whole input tile rather than of its own
//! window; no useful a-priori bound exists, so its extra allowance is measured, in units of
//! ε·M with M the largest Σ|terms| of the tensor. `winograd_error` (benches; table in
//! BENCHMARKS.md) measures the worst error on the benchmark shapes at 1.04 ε·M for F(2x2)
//! and 25.2 ε·M for F(4x4) (direct: 2.42). The tests add K·ε·M to the bound above, with K
//! 4x the measurement rounded up to a power of two: 8 for F(2x2), 128 for F(4x4).

mod common;

use common::{assert_close, fill, padding, tol, winograd_extra, EPS};
use ember_kernels::conv::{
    conv2d_backward_data, conv2d_backward_filter, conv2d_forward, Conv2d, ConvAlgo, Padding, Pass,
};
use ember_kernels::Ctx;
use ember_kernels::{reference, Error, Isa};
use proptest::prelude::*;

const ALGOS: [ConvAlgo; 6] = [
    ConvAlgo::Auto,
    ConvAlgo::Measured,
    ConvAlgo::Direct,
    ConvAlgo::Im2col,
    ConvAlgo::Winograd2x3,
    ConvAlgo::Winograd4x3,
];

/// The measured extra allowance K of `algo` (see the module docs), in units of ε·M.
fn extra(algo: ConvAlgo, c: &Conv2d, pass: Pass, isa: Isa) -> usize {
    winograd_extra(algo.resolve(c, pass, isa))
}

/// A random valid descriptor: N 1..3, H, W 1..12, C 1..40 (across the 4-, 8- and 16-lane
/// vector widths and the 2-vector tiles), K in {1,2,3,5}, stride 1..3, dilation 1..2
/// (1x1 images and C = 1 included); half of the cases are 3x3, stride 1, dilation 1, the
/// shapes Winograd computes.
fn conv() -> impl Strategy<Value = Conv2d> {
    let general = (
        (1usize..4, 1usize..13, 1usize..13, 1usize..40, 1usize..40),
        (prop::sample::select(vec![1usize, 2, 3, 5]), prop::sample::select(vec![1usize, 2, 3, 5])),
        (1usize..4, 1usize..4, 1usize..3, 1usize..3),
        padding(),
    )
        .prop_filter_map(
            "window larger than padded input",
            |((n, h, w, ci, co), (kh, kw), (sh, sw, dh, dw), p)| {
                Conv2d::new([n, h, w, ci], [kh, kw, ci, co], (sh, sw), (dh, dw), p).ok()
            },
        );
    let winograd = ((1usize..4, 1usize..15, 1usize..15, 1usize..40, 1usize..40), padding())
        .prop_filter_map("window larger than padded input", |((n, h, w, ci, co), p)| {
            Conv2d::simple([n, h, w, ci], [3, 3, ci, co], p).ok()
        });
    prop_oneof![general, winograd]
}

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

fn len(shape: [usize; 4]) -> usize {
    shape.iter().product()
}

fn check_all_passes(c: &Conv2d, seed: u64, relu: bool) {
    let x = fill(seed, len(c.input_shape()));
    let w = fill(seed ^ 1, len(c.filter_shape()));
    let b = fill(seed ^ 2, c.cout());
    let dy = fill(seed ^ 3, len(c.output_shape()));

    let mut y_ref = vec![0.0; dy.len()];
    reference::conv2d_forward(c, &x, &w, Some(&b), relu, &mut y_ref).unwrap();
    let mut y_mag = vec![0.0; dy.len()];
    reference::conv2d_forward(c, &abs(&x), &abs(&w), Some(&abs(&b)), false, &mut y_mag).unwrap();
    let mut dx_ref = vec![0.0; x.len()];
    reference::conv2d_backward_data(c, &dy, &w, &mut dx_ref).unwrap();
    let mut dx_mag = vec![0.0; x.len()];
    reference::conv2d_backward_data(c, &abs(&dy), &abs(&w), &mut dx_mag).unwrap();
    let (mut dw_ref, mut db_ref) = (vec![0.0; w.len()], vec![0.0; c.cout()]);
    reference::conv2d_backward_filter(c, &x, &dy, &mut dw_ref, Some(&mut db_ref)).unwrap();
    let (mut dw_mag, mut db_mag) = (vec![0.0; w.len()], vec![0.0; c.cout()]);
    reference::conv2d_backward_filter(c, &abs(&x), &abs(&dy), &mut dw_mag, Some(&mut db_mag)).unwrap();

    for isa in Isa::available() {
        for algo in ALGOS {
            let opts = Ctx { algo, isa, weights_version: None };
            let what = format!("{isa} {algo:?} {c:?}");
            if algo.supports(c, Pass::Forward) {
                let mut y = vec![f32::NAN; dy.len()];
                conv2d_forward(&opts, c, &x, &w, Some(&b), relu, &mut y).unwrap();
                let k = extra(algo, c, Pass::Forward, isa);
                assert_close(&y, &y_ref, &tol(&y_mag, c.patch_len(), k), &format!("forward {what}"));
            }
            if algo.supports(c, Pass::BackwardData) {
                let mut dx = vec![f32::NAN; x.len()];
                conv2d_backward_data(&opts, c, &dy, &w, &mut dx, false).unwrap();
                let k = extra(algo, c, Pass::BackwardData, isa);
                let bound = tol(&dx_mag, c.kh() * c.kw() * c.cout(), k);
                assert_close(&dx, &dx_ref, &bound, &format!("backward-data {what}"));
                // Added to a gradient already there (an input that feeds two layers): within
                // the same bound of `dx0 + dx_ref`, plus the addition's rounding. Where the
                // algorithm sums each pixel whole (all but Winograd, whose adjoint adds as
                // it scatters), the bits are those of a separate `dx0 + dx`. `Measured`
                // times its candidates on scratch: adding there would show here as twice
                // the gradient.
                let dx0 = fill(seed ^ 4, x.len());
                let mut sum = dx0.clone();
                conv2d_backward_data(&opts, c, &dy, &w, &mut sum, true).unwrap();
                let want: Vec<f32> = dx_ref.iter().zip(&dx0).map(|(r, d)| r + d).collect();
                let bound: Vec<f64> = bound
                    .iter()
                    .zip(&dx0)
                    .zip(&dx_mag)
                    .map(|((b, d), m)| b + 2.0 * EPS * f64::from(d.abs() + m))
                    .collect();
                assert_close(&sum, &want, &bound, &format!("backward-data added {what}"));
                if winograd_extra(algo.resolve(c, Pass::BackwardData, isa)) == 0 {
                    let separate: Vec<f32> = dx0.iter().zip(&dx).map(|(d, g)| d + g).collect();
                    assert!(sum == separate, "backward-data added {what}: not dx0 + dx");
                }
            }
            if algo.supports(c, Pass::BackwardFilter) {
                let (mut dw, mut db) = (vec![f32::NAN; w.len()], vec![f32::NAN; c.cout()]);
                conv2d_backward_filter(&opts, c, &x, &dy, &mut dw, Some(&mut db), false).unwrap();
                let k = extra(algo, c, Pass::BackwardFilter, isa);
                assert_close(&dw, &dw_ref, &tol(&dw_mag, c.pixels(), k), &format!("backward-filter {what}"));
                assert_close(&db, &db_ref, &tol(&db_mag, c.pixels(), 0), &format!("bias gradient {what}"));
            }
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::cases(48)))]

    #[test]
    fn every_pass_matches_reference(c in conv(), seed in any::<u64>(), relu in any::<bool>()) {
        check_all_passes(&c, seed, relu);
    }

    /// The three passes are adjoints of each other: for the linear map X -> conv(X, W),
    /// ⟨dY, conv(X,W)⟩ = ⟨bwd_data(dY,W), X⟩, and for W -> conv(X, W),
    /// ⟨dY, conv(X,W)⟩ = ⟨bwd_filter(X,dY), W⟩. Bound: each side sums |terms| ≤ the
    /// magnitude M = ⟨|dY|, conv(|X|,|W|)⟩ with at most L = n·ho·wo·cout·kh·kw·cin roundings.
    #[test]
    fn passes_are_adjoint(c in conv(), seed in any::<u64>()) {
        let x = fill(seed, len(c.input_shape()));
        let w = fill(seed ^ 1, len(c.filter_shape()));
        let dy = fill(seed ^ 3, len(c.output_shape()));
        let mut mag_y = vec![0.0; dy.len()];
        reference::conv2d_forward(&c, &abs(&x), &abs(&w), None, false, &mut mag_y).unwrap();
        let mut mag_dx = vec![0.0; x.len()];
        reference::conv2d_backward_data(&c, &abs(&dy), &abs(&w), &mut mag_dx).unwrap();
        let base = 2.0 * (c.patch_len() + c.kh() * c.kw() * c.cout() + c.pixels() + 4) as f64 * EPS * dot(&abs(&dy), &mag_y);
        let max = |v: &[f32]| v.iter().fold(0f64, |m, &e| m.max(f64::from(e)));
        let sum = |v: &[f32]| v.iter().map(|&e| f64::from(e.abs())).sum::<f64>();
        let mut mag_dw = vec![0.0; w.len()];
        reference::conv2d_backward_filter(&c, &abs(&x), &abs(&dy), &mut mag_dw, None).unwrap();
        // Winograd's allowance K·ε·M per element of y (or dx, dw), summed against |dy| (or
        // |x|, |w|).
        let (wino_y, wino_dx) = (EPS * max(&mag_y) * sum(&dy), EPS * max(&mag_dx) * sum(&x));
        let wino_dw = EPS * max(&mag_dw) * sum(&w);
        for isa in Isa::available() {
            for algo in ALGOS {
                let opts = Ctx { algo, isa, weights_version: None };
                if !algo.supports(&c, Pass::Forward) {
                    continue;
                }
                let mut y = vec![0.0; dy.len()];
                conv2d_forward(&opts, &c, &x, &w, None, false, &mut y).unwrap();
                let mut dx = vec![0.0; x.len()];
                conv2d_backward_data(&opts, &c, &dy, &w, &mut dx, false).unwrap();
                let mut dw = vec![0.0; w.len()];
                conv2d_backward_filter(&opts, &c, &x, &dy, &mut dw, None, false).unwrap();
                // After the calls, so that `Measured` resolves to what it measured.
                let kf = extra(algo, &c, Pass::Forward, isa) as f64;
                let kd = extra(algo, &c, Pass::BackwardData, isa) as f64;
                let kw = extra(algo, &c, Pass::BackwardFilter, isa) as f64;
                let bound = base + kf * wino_y + kd * wino_dx + 1e-30;
                let bound_w = base + kf * wino_y + kw * wino_dw + 1e-30;
                let (l, r1, r2) = (dot(&dy, &y), dot(&dx, &x), dot(&dw, &w));
                prop_assert!((l - r1).abs() <= bound, "{isa} {algo:?}: <dy,y>={l} <dx,x>={r1} bound {bound}");
                prop_assert!((l - r2).abs() <= bound_w, "{isa} {algo:?}: <dy,y>={l} <dw,w>={r2} bound {bound_w}");
            }
        }
    }
}

/// The benchmark shapes' geometry (larger than the proptest ones), once each.
#[test]
fn cnn_shapes_match_reference() {
    for c in [
        Conv2d::simple([2, 28, 28, 1], [3, 3, 1, 32], Padding::Valid).unwrap(),
        Conv2d::simple([2, 13, 13, 32], [3, 3, 32, 64], Padding::Valid).unwrap(),
        Conv2d::simple([1, 14, 14, 16], [1, 1, 16, 24], Padding::Valid).unwrap(),
        Conv2d::new([1, 14, 14, 8], [3, 3, 8, 16], (2, 2), (1, 1), Padding::Same).unwrap(),
        // Stride 2 with right/bottom padding beyond the input: backward-data reads dy in place.
        Conv2d::new(
            [1, 4, 4, 8],
            [1, 1, 8, 16],
            (2, 2),
            (1, 1),
            Padding::Explicit { top: 0, bottom: 2, left: 0, right: 2 },
        )
        .unwrap(),
        // Backward-filter accumulates over more than one block of output rows.
        Conv2d::simple([1, 40, 40, 4], [3, 3, 4, 64], Padding::Same).unwrap(),
        // Winograd's backward-filter sums its tiles in several groups (F(4x4): three,
        // F(2x2): four) and adds the groups' sums in group order (no other shape here has
        // more than two: dropping the third group passed every kernel test before this one).
        Conv2d::simple([5, 28, 28, 32], [3, 3, 32, 32], Padding::Same).unwrap(),
    ] {
        check_all_passes(&c, 42, true);
    }
}

/// Few output channels (the direct forward's dot-product kernel, `cout <= 4` with at least
/// one vector of input channels) and, through the transposed problem, backward-data into
/// one to four input channels: whole and partial vectors of channels, rows that end in 0-3
/// leftover pixels (the kernel steps two or four at a time), stride, dilation and padding.
#[test]
fn narrow_outputs_match_reference() {
    for (shape, k, cin, cout, stride, dilation, pad) in [
        ([2, 9, 7, 1], 3, 1, 32, 1, 1, Padding::Valid),
        ([1, 8, 8, 3], 3, 3, 20, 1, 1, Padding::Same),
        ([1, 6, 5, 2], 3, 2, 17, 1, 2, Padding::Same),
        ([2, 5, 9, 4], 5, 4, 40, 1, 1, Padding::Same),
        ([1, 7, 7, 32], 3, 32, 1, 1, 1, Padding::Valid),
        ([2, 9, 6, 20], 3, 20, 3, 2, 1, Padding::Same),
        ([1, 6, 11, 33], 1, 33, 4, 1, 1, Padding::Valid),
        ([1, 10, 10, 16], 3, 16, 2, 1, 2, Padding::Same),
        // Strided backward-data into few channels keeps its own path.
        ([1, 9, 9, 3], 3, 3, 16, 2, 1, Padding::Same),
    ] {
        let c = Conv2d::new(shape, [k, k, cin, cout], (stride, stride), (dilation, dilation), pad).unwrap();
        check_all_passes(&c, 7, false);
        check_all_passes(&c, 8, true);
    }
}

/// Every pass (bias and bias gradient included) gives the same bits on 1, 2 and 3 threads,
/// on every ISA, for a stride-1 and a strided convolution.
#[test]
fn results_are_bit_identical_for_any_thread_count() {
    for c in [
        Conv2d::simple([4, 20, 20, 8], [3, 3, 8, 16], Padding::Same).unwrap(),
        Conv2d::new([3, 17, 15, 5], [3, 2, 5, 20], (2, 3), (1, 2), Padding::Same).unwrap(),
        // Winograd's backward-data as the adjoint (valid padding: fewer output tiles), in two
        // blocks that meet inside an image (a seam).
        Conv2d::simple([5, 13, 13, 8], [3, 3, 8, 16], Padding::Valid).unwrap(),
    ] {
        let x = fill(5, len(c.input_shape()));
        let w = fill(6, len(c.filter_shape()));
        let b = fill(8, c.cout());
        let dy = fill(7, len(c.output_shape()));
        for isa in Isa::available() {
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| {
                    let mut out = Vec::new();
                    // `Measured` may pick a different algorithm per thread count (it measures
                    // per thread count), so only the fixed choices are compared.
                    for algo in ALGOS.into_iter().filter(|&a| a != ConvAlgo::Measured && a.supports(&c, Pass::Forward))
                    {
                        let opts = Ctx { algo, isa, weights_version: None };
                        let mut y = vec![0.0; dy.len()];
                        conv2d_forward(&opts, &c, &x, &w, Some(&b), true, &mut y).unwrap();
                        let mut dx = vec![0.0; x.len()];
                        conv2d_backward_data(&opts, &c, &dy, &w, &mut dx, false).unwrap();
                        let (mut dw, mut db) = (vec![0.0; w.len()], vec![0.0; c.cout()]);
                        if algo.supports(&c, Pass::BackwardFilter) {
                            conv2d_backward_filter(&opts, &c, &x, &dy, &mut dw, Some(&mut db), false).unwrap();
                        }
                        out.extend([y, dx, dw, db].map(|v| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>()));
                    }
                    out
                })
            };
            let one = run(1);
            assert!(one == run(2), "{isa} {c:?}: 1 vs 2 threads");
            assert!(one == run(3), "{isa} {c:?}: 1 vs 3 threads");
        }
    }
}

#[test]
fn bad_buffers_are_typed_errors() {
    let c = Conv2d::simple([1, 5, 5, 2], [3, 3, 2, 4], Padding::Valid).unwrap();
    let (x, w, mut y) = (vec![0.0; 50], vec![0.0; 72], vec![0.0; 36]);
    let o = Ctx::new();
    assert!(matches!(conv2d_forward(&o, &c, &x[..49], &w, None, false, &mut y), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(conv2d_forward(&o, &c, &x, &w[..71], None, false, &mut y), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(conv2d_forward(&o, &c, &x, &w, Some(&[0.0; 3]), false, &mut y), Err(Error::ShapeMismatch { .. })));
    let mut dx = vec![0.0; 49];
    assert!(matches!(conv2d_backward_data(&o, &c, &y, &w, &mut dx, false), Err(Error::ShapeMismatch { .. })));
    let mut dw = vec![0.0; 72];
    let mut db = vec![0.0; 5];
    assert!(matches!(
        conv2d_backward_filter(&o, &c, &x, &y, &mut dw, Some(&mut db), false),
        Err(Error::ShapeMismatch { .. })
    ));
    // Winograd needs 3x3, stride 1, dilation 1 in every pass.
    let strided = Conv2d::new([1, 5, 5, 2], [3, 3, 2, 4], (2, 2), (1, 1), Padding::Valid).unwrap();
    let mut ys = vec![0.0; 16];
    for algo in [ConvAlgo::Winograd2x3, ConvAlgo::Winograd4x3] {
        let o = Ctx::new().with_algo(algo);
        assert!(matches!(conv2d_forward(&o, &strided, &x, &w, None, false, &mut ys), Err(Error::InvalidArgument(_))));
        let mut dw = vec![0.0; 72];
        assert!(matches!(
            conv2d_backward_filter(&o, &strided, &x, &ys, &mut dw, None, false),
            Err(Error::InvalidArgument(_))
        ));
        let mut dx = vec![0.0; 50];
        assert!(matches!(conv2d_backward_data(&o, &strided, &ys, &w, &mut dx, false), Err(Error::InvalidArgument(_))));
    }
    for missing in Isa::ALL.into_iter().filter(|i| !i.is_available()) {
        let o = Ctx { algo: ConvAlgo::Auto, isa: missing, weights_version: None };
        assert_eq!(conv2d_forward(&o, &c, &x, &w, None, false, &mut y), Err(Error::IsaUnavailable(missing)));
    }
}

#[test]
fn an_empty_batch_is_fine_for_every_algorithm() {
    for c in [
        Conv2d::simple([0, 6, 6, 3], [3, 3, 3, 4], Padding::Same).unwrap(),
        Conv2d::new([0, 6, 6, 3], [3, 3, 3, 4], (2, 2), (1, 1), Padding::Valid).unwrap(),
    ] {
        for algo in ALGOS.into_iter().filter(|a| a.supports(&c, Pass::Forward)) {
            let opts = Ctx::new().with_algo(algo);
            conv2d_forward(&opts, &c, &[], &vec![0.0; 108], None, true, &mut []).unwrap();
            conv2d_backward_data(&opts, &c, &[], &vec![0.0; 108], &mut [], false).unwrap();
            let mut dw = vec![f32::NAN; 108];
            conv2d_backward_filter(&opts, &c, &[], &[], &mut dw, Some(&mut [f32::NAN; 4]), false).unwrap();
            assert!(dw.iter().all(|&v| v == 0.0), "{algo:?}: dw of an empty batch is 0");
        }
    }
}

/// `accumulate` adds the part's gradients (computed whole) to what `dw` and `db` hold: two
/// parts of a batch give exactly (part 1) + (part 2), on every backward-filter algorithm
/// (`Measured` included, which times the candidates on the first call) and ISA.
#[test]
fn backward_filter_accumulates_into_what_it_holds() {
    for c in [
        Conv2d::new([2, 9, 7, 3], [3, 3, 3, 5], (1, 2), (1, 1), Padding::Same).unwrap(),
        Conv2d::simple([2, 9, 7, 3], [3, 3, 3, 5], Padding::Same).unwrap(),
    ] {
        accumulates(&c);
    }
}

fn accumulates(c: &Conv2d) {
    let (x1, x2) = (fill(1, len(c.input_shape())), fill(2, len(c.input_shape())));
    let (d1, d2) = (fill(3, len(c.output_shape())), fill(4, len(c.output_shape())));
    let wl = len(c.filter_shape());
    for isa in Isa::available() {
        for algo in ALGOS.into_iter().filter(|a| a.supports(c, Pass::BackwardFilter)) {
            let ctx = Ctx::for_isa(isa).with_algo(algo);
            let part = |x: &[f32], dy: &[f32]| {
                let (mut dw, mut db) = (vec![f32::NAN; wl], vec![f32::NAN; 5]);
                conv2d_backward_filter(&ctx, c, x, dy, &mut dw, Some(&mut db), false).unwrap();
                (dw, db)
            };
            let ((w1, b1), (w2, b2)) = (part(&x1, &d1), part(&x2, &d2));
            let (mut dw, mut db) = (w1.clone(), b1.clone());
            conv2d_backward_filter(&ctx, c, &x2, &d2, &mut dw, Some(&mut db), true).unwrap();
            let sum = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| p + q).collect::<Vec<f32>>();
            assert_eq!(dw, sum(&w1, &w2), "{isa:?} {algo:?}: filter gradient");
            assert_eq!(db, sum(&b1, &b2), "{isa:?} {algo:?}: bias gradient");
        }
    }
}

/// A filter passed with a version ([`Ctx::weights_version`]) gives, on every ISA and both
/// Winograd tile sizes, the bits the same call gives without one: on the first call (the
/// transform made and kept), on the second (the kept one reused) and after the filter's
/// values change in place under a new version (made again, not the stale one). Forward,
/// backward-data in both forms (the transposed problem for "same", the adjoint for
/// "valid"), and the pooled forward and backward-data.
#[test]
fn a_versioned_filter_gives_the_unversioned_bits_and_follows_new_versions() {
    use ember_kernels::conv::{conv2d_backward_data_pooled, conv_relu_maxpool_forward, ConvReluPool};
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
    // Versions this test alone uses (the cache is per thread and keyed by the filter's
    // address too, so other tests' filters cannot match them).
    let mut next_version = 0x5eed_0000_0000u64;
    for c in [
        Conv2d::simple([3, 12, 12, 8], [3, 3, 8, 16], Padding::Same).unwrap(),
        Conv2d::simple([3, 13, 13, 8], [3, 3, 8, 16], Padding::Valid).unwrap(),
    ] {
        let cp = ConvReluPool::new(c).unwrap();
        let x = fill(21, len(c.input_shape()));
        let dy = fill(22, len(c.output_shape()));
        let pooled_dy = fill(23, len(cp.output_shape()));
        for isa in Isa::available() {
            for algo in [ConvAlgo::Winograd2x3, ConvAlgo::Winograd4x3] {
                let plain = Ctx { algo, isa, weights_version: None };
                // Every pass's outputs for filter `w` under `ctx`.
                let passes = |ctx: &Ctx, w: &[f32]| {
                    let mut y = vec![0.0; dy.len()];
                    conv2d_forward(ctx, &c, &x, w, None, false, &mut y).unwrap();
                    let mut dx = vec![0.0; x.len()];
                    conv2d_backward_data(ctx, &c, &dy, w, &mut dx, false).unwrap();
                    let out = len(cp.output_shape());
                    let (mut py, mut pa) = (vec![0.0; out], vec![0u32; out]);
                    conv_relu_maxpool_forward(ctx, &cp, &x, w, None, &mut py, &mut pa).unwrap();
                    let mut pdx = vec![0.0; x.len()];
                    conv2d_backward_data_pooled(ctx, &cp, &py, &pooled_dy, &pa, w, &mut pdx).unwrap();
                    [bits(&y), bits(&dx), bits(&py), bits(&pdx)]
                };
                let mut w = fill(24, len(c.filter_shape()));
                for round in 0..2 {
                    let expected = passes(&plain, &w);
                    next_version += 1;
                    let versioned = plain.with_weights_version(next_version);
                    assert!(passes(&versioned, &w) == expected, "{isa} {algo:?} {c:?}: round {round}, first call");
                    assert!(passes(&versioned, &w) == expected, "{isa} {algo:?} {c:?}: round {round}, kept transform");
                    // New values at the same address (an optimizer's step).
                    w.iter_mut().for_each(|v| *v = 0.5 - *v);
                }
            }
        }
    }
}

//! Convolution, every pass x algorithm x available ISA, against the f64 reference; plus the
//! adjoint identity ⟨dY, fwd(X,W)⟩ = ⟨bwd_data(dY,W), X⟩ = ⟨bwd_filter(X,dY), W⟩.
//!
//! Tolerance, derived like the GEMM's: an output that sums L products in f32 is within
//! `(L + 2)·ε·Σ|terms|` of the exact value. Σ|terms| is computed by running the reference on
//! absolute values; L is kh·kw·cin (forward), kh·kw·cout (backward-data) and n·ho·wo
//! (backward-filter; blocks are accumulated with beta = 1, which adds at most one rounding
//! per block, covered by the +2 for the block counts these tests reach).

mod common;

use common::{assert_close, fill, padding, EPS};
use ember_kernels::conv::{
    conv2d_backward_data, conv2d_backward_filter, conv2d_forward, Conv2d, ConvAlgo, ConvOptions, Padding,
};
use ember_kernels::{reference, Error, Isa};
use proptest::prelude::*;

const ALGOS: [ConvAlgo; 3] = [ConvAlgo::Auto, ConvAlgo::Direct, ConvAlgo::Im2col];

/// A random valid descriptor: N 1..3, H, W 1..12, C 1..9, K in {1,2,3,5}, stride 1..3,
/// dilation 1..2 (1x1 images and C = 1 included).
fn conv() -> impl Strategy<Value = Conv2d> {
    (
        (1usize..4, 1usize..13, 1usize..13, 1usize..10, 1usize..10),
        (prop::sample::select(vec![1usize, 2, 3, 5]), prop::sample::select(vec![1usize, 2, 3, 5])),
        (1usize..4, 1usize..4, 1usize..3, 1usize..3),
        padding(),
    )
        .prop_filter_map(
            "window larger than padded input",
            |((n, h, w, ci, co), (kh, kw), (sh, sw, dh, dw), p)| {
                Conv2d::new([n, h, w, ci], [kh, kw, ci, co], (sh, sw), (dh, dw), p).ok()
            },
        )
}

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

fn tol(mag: &[f32], terms: usize) -> Vec<f64> {
    mag.iter().map(|&m| (terms as f64 + 2.0) * EPS * f64::from(m) + 1e-30).collect()
}

fn len(shape: [usize; 4]) -> usize {
    shape.iter().product()
}

fn check_all_passes(c: &Conv2d, seed: u64, relu: bool) {
    let x = fill(seed, len(c.input_shape()));
    let w = fill(seed ^ 1, len(c.filter_shape()));
    let b = fill(seed ^ 2, c.cout);
    let dy = fill(seed ^ 3, len(c.output_shape()));

    let mut y_ref = vec![0.0; dy.len()];
    reference::conv2d_forward(c, &x, &w, Some(&b), relu, &mut y_ref).unwrap();
    let mut y_mag = vec![0.0; dy.len()];
    reference::conv2d_forward(c, &abs(&x), &abs(&w), Some(&abs(&b)), false, &mut y_mag).unwrap();
    let mut dx_ref = vec![0.0; x.len()];
    reference::conv2d_backward_data(c, &dy, &w, &mut dx_ref).unwrap();
    let mut dx_mag = vec![0.0; x.len()];
    reference::conv2d_backward_data(c, &abs(&dy), &abs(&w), &mut dx_mag).unwrap();
    let (mut dw_ref, mut db_ref) = (vec![0.0; w.len()], vec![0.0; c.cout]);
    reference::conv2d_backward_filter(c, &x, &dy, &mut dw_ref, Some(&mut db_ref)).unwrap();
    let (mut dw_mag, mut db_mag) = (vec![0.0; w.len()], vec![0.0; c.cout]);
    reference::conv2d_backward_filter(c, &abs(&x), &abs(&dy), &mut dw_mag, Some(&mut db_mag)).unwrap();

    for isa in Isa::available() {
        for algo in ALGOS {
            let opts = ConvOptions { algo, isa };
            let what = format!("{isa} {algo:?} {c:?}");
            let mut y = vec![f32::NAN; dy.len()];
            conv2d_forward(c, &x, &w, Some(&b), relu, &mut y, &opts).unwrap();
            assert_close(&y, &y_ref, &tol(&y_mag, c.patch_len()), &format!("forward {what}"));

            let mut dx = vec![f32::NAN; x.len()];
            conv2d_backward_data(c, &dy, &w, &mut dx, &opts).unwrap();
            assert_close(&dx, &dx_ref, &tol(&dx_mag, c.kh * c.kw * c.cout), &format!("backward-data {what}"));

            let (mut dw, mut db) = (vec![f32::NAN; w.len()], vec![f32::NAN; c.cout]);
            conv2d_backward_filter(c, &x, &dy, &mut dw, Some(&mut db), &opts).unwrap();
            assert_close(&dw, &dw_ref, &tol(&dw_mag, c.pixels()), &format!("backward-filter {what}"));
            assert_close(&db, &db_ref, &tol(&db_mag, c.pixels()), &format!("bias gradient {what}"));
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
        let bound = 2.0 * (c.patch_len() + c.kh * c.kw * c.cout + c.pixels() + 4) as f64 * EPS * dot(&abs(&dy), &mag_y) + 1e-30;
        for isa in Isa::available() {
            for algo in ALGOS {
                let opts = ConvOptions { algo, isa };
                let mut y = vec![0.0; dy.len()];
                conv2d_forward(&c, &x, &w, None, false, &mut y, &opts).unwrap();
                let mut dx = vec![0.0; x.len()];
                conv2d_backward_data(&c, &dy, &w, &mut dx, &opts).unwrap();
                let mut dw = vec![0.0; w.len()];
                conv2d_backward_filter(&c, &x, &dy, &mut dw, None, &opts).unwrap();
                let (l, r1, r2) = (dot(&dy, &y), dot(&dx, &x), dot(&dw, &w));
                prop_assert!((l - r1).abs() <= bound, "{isa} {algo:?}: <dy,y>={l} <dx,x>={r1} bound {bound}");
                prop_assert!((l - r2).abs() <= bound, "{isa} {algo:?}: <dy,y>={l} <dw,w>={r2} bound {bound}");
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
    ] {
        check_all_passes(&c, 42, true);
    }
}

#[test]
fn results_are_bit_identical_for_any_thread_count() {
    let c = Conv2d::simple([4, 20, 20, 8], [3, 3, 8, 16], Padding::Same).unwrap();
    let x = fill(5, len(c.input_shape()));
    let w = fill(6, len(c.filter_shape()));
    let dy = fill(7, len(c.output_shape()));
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let opts = ConvOptions::default();
            let mut y = vec![0.0; dy.len()];
            conv2d_forward(&c, &x, &w, None, true, &mut y, &opts).unwrap();
            let mut dx = vec![0.0; x.len()];
            conv2d_backward_data(&c, &dy, &w, &mut dx, &opts).unwrap();
            let mut dw = vec![0.0; w.len()];
            conv2d_backward_filter(&c, &x, &dy, &mut dw, None, &opts).unwrap();
            [y, dx, dw].map(|v| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>())
        })
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}

#[test]
fn bad_buffers_are_typed_errors() {
    let c = Conv2d::simple([1, 5, 5, 2], [3, 3, 2, 4], Padding::Valid).unwrap();
    let (x, w, mut y) = (vec![0.0; 50], vec![0.0; 72], vec![0.0; 36]);
    let o = ConvOptions::default();
    assert!(matches!(conv2d_forward(&c, &x[..49], &w, None, false, &mut y, &o), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(conv2d_forward(&c, &x, &w[..71], None, false, &mut y, &o), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(conv2d_forward(&c, &x, &w, Some(&[0.0; 3]), false, &mut y, &o), Err(Error::ShapeMismatch { .. })));
    let mut dx = vec![0.0; 49];
    assert!(matches!(conv2d_backward_data(&c, &y, &w, &mut dx, &o), Err(Error::ShapeMismatch { .. })));
    let mut dw = vec![0.0; 72];
    let mut db = vec![0.0; 5];
    assert!(matches!(conv2d_backward_filter(&c, &x, &y, &mut dw, Some(&mut db), &o), Err(Error::ShapeMismatch { .. })));
    for missing in Isa::ALL.into_iter().filter(|i| !i.is_available()) {
        let o = ConvOptions { algo: ConvAlgo::Auto, isa: missing };
        assert_eq!(conv2d_forward(&c, &x, &w, None, false, &mut y, &o), Err(Error::IsaUnavailable(missing)));
    }
}

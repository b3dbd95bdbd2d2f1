//! Depthwise convolution, every pass x available ISA, against the f64 reference: any shape,
//! stride, dilation, padding and depth multiplier; plus thread-count independence and bad
//! input.
//!
//! Tolerance, as for the convolutions: each output is a sum of `K` products (forward: the
//! taps; backward-data: taps x multiplier; backward-filter: the batch's pixels) computed in
//! f32 in some order, so within `(K + 2) ε` times the sum of the terms' magnitudes (the
//! reference run on `|x|`, `|w|`), plus a tiny absolute floor.

mod common;

use common::{assert_close, fill, padding, EPS};
use ember_kernels::conv::{
    depthwise_backward_data, depthwise_backward_filter, depthwise_forward, Conv2d, Depthwise2d, Padding, FILTER_BLOCK,
};
use ember_kernels::{reference, Ctx, Isa};
use proptest::prelude::*;

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

fn tol(mag: &[f32], terms: usize) -> Vec<f64> {
    mag.iter().map(|&m| (terms as f64 + 2.0) * EPS * f64::from(m) + 1e-30).collect()
}

fn check(d: &Depthwise2d, seed: u64) {
    let (xs, ws, ys) = (d.input_shape(), d.filter_shape(), d.output_shape());
    let len = |s: [usize; 4]| s.iter().product::<usize>();
    let x = fill(seed, len(xs));
    let w = fill(seed + 1, len(ws));
    let b = fill(seed + 2, d.out_channels());
    let dy = fill(seed + 3, len(ys));
    let g = d.geometry();
    let taps = g.kh() * g.kw();
    let mut y_ref = vec![0.0; dy.len()];
    reference::depthwise_forward(d, &x, &w, Some(&b), &mut y_ref).unwrap();
    let mut y_mag = vec![0.0; dy.len()];
    reference::depthwise_forward(d, &abs(&x), &abs(&w), Some(&abs(&b)), &mut y_mag).unwrap();
    let mut dx_ref = vec![0.0; x.len()];
    reference::depthwise_backward_data(d, &dy, &w, &mut dx_ref).unwrap();
    let mut dx_mag = vec![0.0; x.len()];
    reference::depthwise_backward_data(d, &abs(&dy), &abs(&w), &mut dx_mag).unwrap();
    let (mut dw_ref, mut db_ref) = (vec![0.0; w.len()], vec![0.0; d.out_channels()]);
    reference::depthwise_backward_filter(d, &x, &dy, &mut dw_ref, Some(&mut db_ref)).unwrap();
    let (mut dw_mag, mut db_mag) = (vec![0.0; w.len()], vec![0.0; d.out_channels()]);
    reference::depthwise_backward_filter(d, &abs(&x), &abs(&dy), &mut dw_mag, Some(&mut db_mag)).unwrap();
    let pixels = g.n() * g.ho() * g.wo();
    for isa in Isa::available() {
        let ctx = Ctx::new().with_isa(isa);
        let what = format!("{isa} {d:?}");
        let mut y = vec![f32::NAN; dy.len()];
        depthwise_forward(&ctx, d, &x, &w, Some(&b), &mut y).unwrap();
        assert_close(&y, &y_ref, &tol(&y_mag, taps + 1), &format!("forward {what}"));
        let mut dx = vec![f32::NAN; x.len()];
        depthwise_backward_data(&ctx, d, &dy, &w, &mut dx).unwrap();
        assert_close(&dx, &dx_ref, &tol(&dx_mag, taps * d.multiplier()), &format!("backward-data {what}"));
        let (mut dw, mut db) = (vec![f32::NAN; w.len()], vec![f32::NAN; d.out_channels()]);
        depthwise_backward_filter(&ctx, d, &x, &dy, &mut dw, Some(&mut db), false).unwrap();
        assert_close(&dw, &dw_ref, &tol(&dw_mag, pixels), &format!("backward-filter {what}"));
        assert_close(&db, &db_ref, &tol(&db_mag, pixels), &format!("bias gradient {what}"));
        // Accumulating adds to what the gradients hold.
        let (mut dw2, mut db2) = (dw.clone(), db.clone());
        depthwise_backward_filter(&ctx, d, &x, &dy, &mut dw2, Some(&mut db2), true).unwrap();
        assert!(dw2.iter().zip(&dw).all(|(a, v)| *a == v + v) && db2.iter().zip(&db).all(|(a, v)| *a == v + v));
    }
}

#[test]
fn shapes_of_mobilenet_style_layers() {
    // 3x3 on 32 channels (two vectors and a tail on AVX-512: 32 = 2 x 16), strided, SAME.
    check(&Depthwise2d::new([2, 14, 14, 32], (3, 3), 1, (1, 1), (1, 1), Padding::Same).unwrap(), 1);
    check(&Depthwise2d::new([3, 15, 15, 37], (3, 3), 1, (2, 2), (1, 1), Padding::Same).unwrap(), 2);
    // More channels than one backward-filter block, a multiplier, dilation.
    check(&Depthwise2d::new([1, 9, 9, FILTER_BLOCK + 5], (3, 3), 1, (1, 1), (2, 2), Padding::Valid).unwrap(), 3);
    check(&Depthwise2d::new([2, 8, 7, 3], (3, 3), 4, (1, 2), (1, 1), Padding::Same).unwrap(), 4);
    check(&Depthwise2d::new([2, 6, 6, 40], (5, 3), 2, (1, 1), (1, 1), Padding::Valid).unwrap(), 5);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::cases(48)))]

    #[test]
    fn every_pass_matches_the_reference(
        n in 1usize..3, h in 1usize..10, w in 1usize..10, c in 1usize..40,
        k in (1usize..4, 1usize..4), m in 1usize..4, s in (1usize..3, 1usize..3), dil in (1usize..3, 1usize..3),
        pad in padding(), seed in 0u64..1000,
    ) {
        // Valid exactly when the dense convolution of the same geometry is.
        let dense = Conv2d::new([n, h, w, c], [k.0, k.1, c, c * m], s, dil, pad);
        let d = Depthwise2d::new([n, h, w, c], k, m, s, dil, pad);
        prop_assert_eq!(d.is_ok(), dense.is_ok(), "{:?} vs {:?}", d, dense);
        if let Ok(d) = d {
            check(&d, seed);
        }
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let d = Depthwise2d::new([5, 12, 12, 3 * FILTER_BLOCK / 2], (3, 3), 1, (1, 1), (1, 1), Padding::Same).unwrap();
    let x = fill(1, 5 * 144 * 96);
    let w = fill(2, 9 * 96);
    let dy = fill(3, 5 * 144 * 96);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let ctx = Ctx::new();
            let mut y = vec![0.0; dy.len()];
            depthwise_forward(&ctx, &d, &x, &w, None, &mut y).unwrap();
            let mut dx = vec![0.0; x.len()];
            depthwise_backward_data(&ctx, &d, &dy, &w, &mut dx).unwrap();
            let (mut dw, mut db) = (vec![0.0; w.len()], vec![0.0; 96]);
            depthwise_backward_filter(&ctx, &d, &x, &dy, &mut dw, Some(&mut db), false).unwrap();
            (y, dx, dw, db)
        })
    };
    assert_eq!(run(1), run(3));
}

#[test]
fn bad_input_is_an_error() {
    assert!(Depthwise2d::new([1, 4, 4, 2], (3, 3), 0, (1, 1), (1, 1), Padding::Valid).is_err());
    assert!(Depthwise2d::new([1, 2, 2, 2], (3, 3), 1, (1, 1), (1, 1), Padding::Valid).is_err());
    assert!(Depthwise2d::new([1, 4, 4, usize::MAX / 2], (3, 3), 3, (1, 1), (1, 1), Padding::Valid).is_err());
    let d = Depthwise2d::new([1, 4, 4, 2], (3, 3), 2, (1, 1), (1, 1), Padding::Valid).unwrap();
    let ctx = Ctx::new();
    let (x, w, mut y) = (vec![0.0; 32], vec![0.0; 36], vec![0.0; 16]);
    assert!(depthwise_forward(&ctx, &d, &x, &w, None, &mut y).is_ok());
    assert!(depthwise_forward(&ctx, &d, &x[..31], &w, None, &mut y).is_err());
    assert!(depthwise_forward(&ctx, &d, &x, &w[..35], None, &mut y).is_err());
    assert!(depthwise_forward(&ctx, &d, &x, &w, Some(&[0.0; 3]), &mut y).is_err());
    let mut dx = vec![0.0; 31];
    assert!(depthwise_backward_data(&ctx, &d, &y, &w, &mut dx).is_err());
    let mut dw = vec![0.0; 36];
    assert!(depthwise_backward_filter(&ctx, &d, &x, &y, &mut dw, Some(&mut [0.0; 5]), false).is_err());
}

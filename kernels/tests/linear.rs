//! The dense-layer kernels against the f64 reference on every available ISA, thread-count
//! independence, and bad input.
//!
//! Tolerance: an output summing L products in f32 is within `(L + 2)·ε·Σ|terms|` of the
//! exact value (L = inputs forward, outputs backward-data, n backward-weights); the forward
//! pass adds the bias (one more rounding, covered by the +2).

mod common;

use common::{assert_close, fill, EPS};
use ember_kernels::linear::linear_backward_data;
use ember_kernels::linear::linear_backward_weights;
use ember_kernels::linear::linear_forward;
use ember_kernels::linear::Linear;
use ember_kernels::Ctx;
use ember_kernels::{reference, Error, Isa};
use proptest::prelude::*;

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

fn tol(mag: &[f32], terms: usize) -> Vec<f64> {
    mag.iter().map(|&m| (terms as f64 + 2.0) * EPS * f64::from(m) + 1e-30).collect()
}

fn check(l: &Linear, seed: u64) {
    let (n, i_n, o_n) = (l.n(), l.inputs(), l.outputs());
    let (x, w, b, dy) = (fill(seed, n * i_n), fill(seed ^ 1, o_n * i_n), fill(seed ^ 2, o_n), fill(seed ^ 3, n * o_n));
    let mut y_ref = vec![0.0; n * o_n];
    reference::linear_forward(l, &x, &w, Some(&b), &mut y_ref).unwrap();
    let mut y_mag = vec![0.0; n * o_n];
    reference::linear_forward(l, &abs(&x), &abs(&w), Some(&abs(&b)), &mut y_mag).unwrap();
    let mut dx_ref = vec![0.0; n * i_n];
    reference::linear_backward_data(l, &dy, &w, &mut dx_ref).unwrap();
    let mut dx_mag = vec![0.0; n * i_n];
    reference::linear_backward_data(l, &abs(&dy), &abs(&w), &mut dx_mag).unwrap();
    let (mut dw_ref, mut db_ref) = (vec![0.0; o_n * i_n], vec![0.0; o_n]);
    reference::linear_backward_weights(l, &x, &dy, &mut dw_ref, Some(&mut db_ref)).unwrap();
    let (mut dw_mag, mut db_mag) = (vec![0.0; o_n * i_n], vec![0.0; o_n]);
    reference::linear_backward_weights(l, &abs(&x), &abs(&dy), &mut dw_mag, Some(&mut db_mag)).unwrap();
    for isa in Isa::available() {
        let mut y = vec![f32::NAN; n * o_n];
        linear_forward(&Ctx::for_isa(isa), l, &x, &w, Some(&b), &mut y).unwrap();
        assert_close(&y, &y_ref, &tol(&y_mag, i_n), &format!("forward {isa} {l:?}"));
        let mut dx = vec![f32::NAN; n * i_n];
        linear_backward_data(&Ctx::for_isa(isa), l, &dy, &w, &mut dx).unwrap();
        assert_close(&dx, &dx_ref, &tol(&dx_mag, o_n), &format!("backward-data {isa} {l:?}"));
        let (mut dw, mut db) = (vec![f32::NAN; o_n * i_n], vec![f32::NAN; o_n]);
        linear_backward_weights(&Ctx::for_isa(isa), l, &x, &dy, &mut dw, Some(&mut db), false).unwrap();
        assert_close(&dw, &dw_ref, &tol(&dw_mag, n), &format!("backward-weights {isa} {l:?}"));
        assert_close(&db, &db_ref, &tol(&db_mag, n), &format!("bias gradient {isa} {l:?}"));
        // Accumulating onto earlier gradients: the same sum started from them (one more
        // term per element, bounded by the +2 and the start's magnitude).
        let (dw0, db0) = (fill(seed ^ 7, o_n * i_n), fill(seed ^ 8, o_n));
        let (mut dw, mut db) = (dw0.clone(), db0.clone());
        linear_backward_weights(&Ctx::for_isa(isa), l, &x, &dy, &mut dw, Some(&mut db), true).unwrap();
        let plus = |r: &[f32], z: &[f32]| r.iter().zip(z).map(|(a, b)| a + b).collect::<Vec<_>>();
        let tol_acc = |m: &[f32], z: &[f32]| {
            tol(m, n).iter().zip(z).map(|(t, b)| t + 4.0 * EPS * f64::from(b.abs())).collect::<Vec<_>>()
        };
        assert_close(&dw, &plus(&dw_ref, &dw0), &tol_acc(&dw_mag, &dw0), &format!("accumulated dw {isa} {l:?}"));
        assert_close(&db, &plus(&db_ref, &db0), &tol_acc(&db_mag, &db0), &format!("accumulated db {isa} {l:?}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::cases(96)))]

    #[test]
    fn linear_matches_reference(n in 0usize..11, inputs in 1usize..2100, outputs in 1usize..30, seed in any::<u64>()) {
        check(&Linear::new(n, inputs, outputs).unwrap(), seed);
    }
}

#[test]
fn the_seed_models_head_matches_reference() {
    check(&Linear::new(32, 5408, 10).unwrap(), 5);
}

/// Rows 4 KiB apart (1024 inputs) take the forward in narrower blocks of outputs than
/// other strides, and tiles of four, two or one samples; each output is still its own sum
/// in the same order, so a 64-output layer gives every output exactly what a one-output
/// layer on that weight row gives, and every sample what a one-sample layer gives (and the
/// reference's values within the bound).
#[test]
fn the_forward_is_the_same_sums_in_any_block_width() {
    // 7 samples: a task of four (one tile of four samples on 32-register ISAs, their rows
    // copied apart at 1024 inputs) and one of three (two, then one).
    let (n, i_n, o_n) = (7, 1024, 64);
    let l = Linear::new(n, i_n, o_n).unwrap();
    check(&l, 9);
    let (x, w, b) = (fill(1, n * i_n), fill(2, o_n * i_n), fill(3, o_n));
    let one = Linear::new(n, i_n, 1).unwrap();
    for isa in Isa::available() {
        let ctx = Ctx::for_isa(isa);
        let mut y = vec![0.0; n * o_n];
        linear_forward(&ctx, &l, &x, &w, Some(&b), &mut y).unwrap();
        for j in 0..o_n {
            let mut yj = vec![0.0; n];
            linear_forward(&ctx, &one, &x, &w[j * i_n..(j + 1) * i_n], Some(&b[j..j + 1]), &mut yj).unwrap();
            let col: Vec<f32> = (0..n).map(|s| y[s * o_n + j]).collect();
            assert!(col == yj, "{isa}: output {j} differs from its one-output layer");
        }
        let single = Linear::new(1, i_n, o_n).unwrap();
        for s in 0..n {
            let mut ys = vec![0.0; o_n];
            linear_forward(&ctx, &single, &x[s * i_n..(s + 1) * i_n], &w, Some(&b), &mut ys).unwrap();
            assert!(ys == y[s * o_n..(s + 1) * o_n], "{isa}: sample {s} differs from its one-sample layer");
        }
    }
}

/// Backward-data takes its samples four, two or one at a time (by the ISA's registers and
/// what is left of a task): at 1024 inputs (weight rows 4 KiB apart) and 7 samples every
/// group size runs, and each sample's gradient is bit for bit what a one-sample layer gives
/// (and the reference's values within the bound).
#[test]
fn backward_data_is_the_same_sums_for_any_group_of_samples() {
    let (n, i_n, o_n) = (7, 1024, 64);
    let l = Linear::new(n, i_n, o_n).unwrap();
    check(&l, 19);
    let (dy, w) = (fill(4, n * o_n), fill(5, o_n * i_n));
    let one = Linear::new(1, i_n, o_n).unwrap();
    for isa in Isa::available() {
        let ctx = Ctx::for_isa(isa);
        let mut dx = vec![0.0; n * i_n];
        linear_backward_data(&ctx, &l, &dy, &w, &mut dx).unwrap();
        for s in 0..n {
            let mut dxs = vec![0.0; i_n];
            linear_backward_data(&ctx, &one, &dy[s * o_n..(s + 1) * o_n], &w, &mut dxs).unwrap();
            assert!(dx[s * i_n..(s + 1) * i_n] == dxs[..], "{isa}: sample {s} differs from its one-sample layer");
        }
    }
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let l = Linear::new(13, 3000, 10).unwrap();
    let (x, w, dy) = (fill(1, 13 * 3000), fill(2, 30000), fill(3, 130));
    for isa in Isa::available() {
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| {
                let (mut y, mut dx, mut dw, mut db) =
                    (vec![0.0; 130], vec![0.0; 13 * 3000], vec![0.0; 30000], vec![0.0; 10]);
                linear_forward(&Ctx::for_isa(isa), &l, &x, &w, None, &mut y).unwrap();
                linear_backward_data(&Ctx::for_isa(isa), &l, &dy, &w, &mut dx).unwrap();
                linear_backward_weights(&Ctx::for_isa(isa), &l, &x, &dy, &mut dw, Some(&mut db), false).unwrap();
                (y, dx, dw, db)
            })
        };
        let one = run(1);
        assert!(run(2) == one && run(3) == one, "{isa}: results depend on the thread count");
    }
}

#[test]
fn linear_rejects_bad_input() {
    assert!(matches!(Linear::new(1, 0, 3), Err(Error::InvalidArgument(_))));
    assert!(matches!(Linear::new(1, 3, 0), Err(Error::InvalidArgument(_))));
    assert!(matches!(Linear::new(usize::MAX, 3, 3), Err(Error::SizeOverflow { .. })));
    let l = Linear::new(2, 4, 3).unwrap();
    let isa = Isa::Scalar;
    let (x, w) = (vec![0.0; 8], vec![0.0; 12]);
    let mut y = vec![0.0; 6];
    let bad = |r: ember_kernels::Result<()>| matches!(r, Err(Error::ShapeMismatch { .. }));
    assert!(bad(linear_forward(&Ctx::for_isa(isa), &l, &x[1..], &w, None, &mut y)));
    assert!(bad(linear_forward(&Ctx::for_isa(isa), &l, &x, &w[1..], None, &mut y)));
    assert!(bad(linear_forward(&Ctx::for_isa(isa), &l, &x, &w, Some(&[0.0; 2]), &mut y)));
    assert!(bad(linear_forward(&Ctx::for_isa(isa), &l, &x, &w, None, &mut y[1..])));
    let mut dx = vec![0.0; 8];
    assert!(bad(linear_backward_data(&Ctx::for_isa(isa), &l, &y[1..], &w, &mut dx)));
    let mut dw = vec![0.0; 12];
    assert!(bad(linear_backward_weights(&Ctx::for_isa(isa), &l, &x, &y, &mut dw[1..], None, false)));
    assert!(bad(linear_backward_weights(&Ctx::for_isa(isa), &l, &x, &y, &mut dw, Some(&mut [0.0; 4]), false)));
}

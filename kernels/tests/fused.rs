//! The fused convolution + bias + ReLU + 2x2 max pooling against the reference composed of
//! the naive convolution and pooling, on every available ISA and forward algorithm (direct,
//! and Winograd's pooled output transform where it applies, with the convolution tests'
//! Winograd allowance); results independent of the thread count; argmaxes past the window
//! cells ignored (bad lengths and shapes are rows of `bad_input/fused.rs`).
//!
//! Tolerances: a pooled output is the maximum of four convolution outputs (max and ReLU
//! are 1-Lipschitz), so it is within the convolution's `(L + 2)·ε·Σ|terms|` bound of the
//! window's largest Σ|terms| (L = kh·kw·cin). The argmax must be a cell of its window
//! (0..=3) whose convolution value is within twice that bound of the maximum (near-ties may
//! resolve either way after rounding). The filter gradient is compared with the reference fed the
//! kernel's own pooled output and argmax; each entry sums up to 4·n·(ho/2)·(wo/2) products.

mod common;

use common::{assert_close, fill, padding, tol, winograd_extra, EPS};
use ember_kernels::conv::conv_relu_maxpool_backward_filter;
use ember_kernels::conv::conv_relu_maxpool_forward;
use ember_kernels::conv::{
    conv2d_backward_data, conv2d_backward_data_pooled, conv2d_backward_filter, conv2d_backward_filter_pooled,
    conv2d_forward, unpool_relu_grad, Conv2d, ConvAlgo, ConvReluPool, Padding, Pass,
};
use ember_kernels::pool::max_pool_forward;
use ember_kernels::Ctx;
use ember_kernels::{reference, Isa};
use proptest::prelude::*;

/// A random fusable convolution; half of the cases are 3x3, stride 1, dilation 1 (the
/// shapes Winograd computes).
fn fused() -> impl Strategy<Value = ConvReluPool> {
    let general = (
        (1usize..4, 2usize..15, 2usize..15, 1usize..20, 1usize..40),
        (prop::sample::select(vec![1usize, 2, 3, 5]), prop::sample::select(vec![1usize, 3])),
        (1usize..3, 1usize..3, 1usize..3),
        padding(),
    )
        .prop_filter_map("window larger than padded input", |((n, h, w, ci, co), (kh, kw), (sh, sw, d), p)| {
            let c = Conv2d::new([n, h, w, ci], [kh, kw, ci, co], (sh, sw), (d, 1), p).ok()?;
            ConvReluPool::new(c).ok()
        });
    let winograd = ((1usize..4, 2usize..15, 2usize..15, 1usize..20, 1usize..40), padding())
        .prop_filter_map("window larger than padded input", |((n, h, w, ci, co), p)| {
            ConvReluPool::new(Conv2d::simple([n, h, w, ci], [3, 3, ci, co], p).ok()?).ok()
        });
    prop_oneof![general, winograd]
}

/// The algorithms the forward can run (Auto resolves to one of the concrete ones).
const ALGOS: [ConvAlgo; 4] = [ConvAlgo::Auto, ConvAlgo::Direct, ConvAlgo::Winograd2x3, ConvAlgo::Winograd4x3];

fn len(shape: [usize; 4]) -> usize {
    shape.iter().product()
}

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

fn check(cp: &ConvReluPool, seed: u64) {
    let c = cp.conv();
    let x = fill(seed, len(c.input_shape()));
    let w = fill(seed ^ 1, len(c.filter_shape()));
    let b = fill(seed ^ 2, c.cout());
    let out = len(cp.output_shape());
    let dy = fill(seed ^ 3, out);

    let (mut y_ref, mut a_ref) = (vec![0.0; out], vec![0u32; out]);
    reference::conv_relu_maxpool_forward(cp, &x, &w, Some(&b), &mut y_ref, &mut a_ref).unwrap();
    let mut conv_ref = vec![0.0; len(c.output_shape())];
    reference::conv2d_forward(c, &x, &w, Some(&b), true, &mut conv_ref).unwrap();
    let (mut mag, mut unused) = (vec![0.0; out], vec![0u32; out]);
    reference::conv_relu_maxpool_forward(cp, &abs(&x), &abs(&w), Some(&abs(&b)), &mut mag, &mut unused).unwrap();
    let img_conv = c.ho() * c.wo() * c.cout();
    let [_, hp, wp, _] = cp.output_shape();

    for isa in Isa::available() {
        for algo in ALGOS.into_iter().filter(|a| a.supports(c, Pass::Forward)) {
            let (mut y, mut a) = (vec![f32::NAN; out], vec![u32::MAX; out]);
            let ctx = Ctx::for_isa(isa).with_algo(algo);
            conv_relu_maxpool_forward(&ctx, cp, &x, &w, Some(&b), &mut y, &mut a).unwrap();
            let tol = tol(&mag, c.patch_len(), winograd_extra(algo.resolve(c, Pass::Forward, isa)));
            assert_close(&y, &y_ref, &tol, &format!("fused forward {isa} {algo:?} {c:?}"));
            for (o, &ai) in a.iter().enumerate() {
                let (n, ch, pix) = (o / (hp * wp * c.cout()), o % c.cout(), (o / c.cout()) % (hp * wp));
                assert!(ai <= 3, "{isa} {algo:?}: argmax {ai} of output {o} is not a window cell");
                let at = cell_pixel(c, (pix / wp, pix % wp), ai, ch);
                let v = f64::from(conv_ref[n * img_conv + at]);
                assert!(
                    v >= f64::from(y_ref[o]) - 2.0 * tol[o],
                    "{isa} {algo:?}: argmax {ai} of output {o} is not a maximum"
                );
            }
        }
        // The backward passes below start from the default algorithm's forward.
        let (mut y, mut a) = (vec![f32::NAN; out], vec![u32::MAX; out]);
        conv_relu_maxpool_forward(&Ctx::for_isa(isa), cp, &x, &w, Some(&b), &mut y, &mut a).unwrap();

        let (mut dw_ref, mut db_ref) = (vec![0.0; w.len()], vec![0.0; c.cout()]);
        reference::conv_relu_maxpool_backward_filter(cp, &x, &y, &dy, &a, &mut dw_ref, Some(&mut db_ref)).unwrap();
        let (mut dw_mag, mut db_mag) = (vec![0.0; w.len()], vec![0.0; c.cout()]);
        reference::conv_relu_maxpool_backward_filter(cp, &abs(&x), &y, &abs(&dy), &a, &mut dw_mag, Some(&mut db_mag))
            .unwrap();
        let terms = 4 * out / c.cout();
        let t = |m: &[f32]| m.iter().map(|&m| (terms as f64 + 2.0) * EPS * f64::from(m) + 1e-30).collect::<Vec<_>>();
        let (mut dw, mut db) = (vec![f32::NAN; w.len()], vec![f32::NAN; c.cout()]);
        conv_relu_maxpool_backward_filter(&Ctx::for_isa(isa), cp, &x, &y, &dy, &a, &mut dw, Some(&mut db), false)
            .unwrap();
        assert_close(&dw, &dw_ref, &t(&dw_mag), &format!("fused backward-filter {isa} {c:?}"));
        assert_close(&db, &db_ref, &t(&db_mag), &format!("fused bias gradient {isa} {c:?}"));
        // Accumulating onto earlier gradients adds this batch's (summed in group order after
        // the earlier values: one more rounding, bounded by the start's magnitude).
        let (dw0, db0) = (fill(seed ^ 7, w.len()), fill(seed ^ 8, c.cout()));
        let (mut dwa, mut dba) = (dw0.clone(), db0.clone());
        conv_relu_maxpool_backward_filter(&Ctx::for_isa(isa), cp, &x, &y, &dy, &a, &mut dwa, Some(&mut dba), true)
            .unwrap();
        let plus = |r: &[f32], z: &[f32]| r.iter().zip(z).map(|(a, b)| a + b).collect::<Vec<_>>();
        let t_acc = |m: &[f32], z: &[f32]| {
            t(m).iter().zip(z).map(|(t, b)| t + 4.0 * EPS * f64::from(b.abs())).collect::<Vec<_>>()
        };
        assert_close(&dwa, &plus(&dw_ref, &dw0), &t_acc(&dw_mag, &dw0), &format!("accumulated dw {isa} {c:?}"));
        assert_close(&dba, &plus(&db_ref, &db0), &t_acc(&db_mag, &db0), &format!("accumulated db {isa} {c:?}"));

        // The dense gradient of the convolution output routes dy exactly as the reference.
        let mut dconv = vec![f32::NAN; len(c.output_shape())];
        unpool_relu_grad(cp, &y, &dy, &a, &mut dconv).unwrap();
        // Element for element, the scatter it stands for: zeros, plus dy at the argmax of
        // each positive pooled value.
        let mut scattered = vec![0.0f32; dconv.len()];
        for (o, ((&yv, &g), &ai)) in y.iter().zip(&dy).zip(&a).enumerate() {
            if yv > 0.0 {
                let pix = (o / c.cout()) % (hp * wp);
                let at = cell_pixel(c, (pix / wp, pix % wp), ai, o % c.cout());
                scattered[o / (hp * wp * c.cout()) * img_conv + at] += g;
            }
        }
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert!(bits(&dconv) == bits(&scattered), "unpool_relu_grad {isa} {c:?}: not the scatter");
        let mut dw_dense = vec![0.0; w.len()];
        reference::conv2d_backward_filter(c, &x, &dconv, &mut dw_dense, None).unwrap();
        assert_close(&dw_dense, &dw_ref, &t(&dw_mag), &format!("unpool_relu_grad {isa} {c:?}"));
        check_pooled_passes(cp, isa, &x, &w, (&y, &dy, &a), &dconv);
    }
}

/// The pooled backward passes from the pooled `y`, `dy` and argmax `a` match the reference
/// passes on `dconv` (their unpooled gradient), for every algorithm (Winograd reads the
/// pooled tensors, the others unpool them); where the pooling windows cover the whole
/// output, bit for bit the plain passes on `dconv` (the same tiles, the same values).
#[allow(clippy::too_many_arguments)]
fn check_pooled_passes(
    cp: &ConvReluPool,
    isa: Isa,
    x: &[f32],
    w: &[f32],
    pooled: (&[f32], &[f32], &[u32]),
    dconv: &[f32],
) {
    let c = cp.conv();
    let [_, hp, wp, _] = cp.output_shape();
    let (y, dy, a) = pooled;
    let mut dx_ref = vec![0.0; x.len()];
    reference::conv2d_backward_data(c, dconv, w, &mut dx_ref).unwrap();
    let mut dx_mag = vec![0.0; x.len()];
    reference::conv2d_backward_data(c, &abs(dconv), &abs(w), &mut dx_mag).unwrap();
    let (mut dw_ref, mut db_ref) = (vec![0.0; w.len()], vec![0.0; c.cout()]);
    reference::conv2d_backward_filter(c, x, dconv, &mut dw_ref, Some(&mut db_ref)).unwrap();
    let (mut dw_mag, mut db_mag) = (vec![0.0; w.len()], vec![0.0; c.cout()]);
    reference::conv2d_backward_filter(c, &abs(x), &abs(dconv), &mut dw_mag, Some(&mut db_mag)).unwrap();
    let covered = (2 * hp, 2 * wp) == (c.ho(), c.wo());
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    for algo in ALGOS {
        let ctx = Ctx::for_isa(isa).with_algo(algo);
        let what = format!("{isa} {algo:?} {c:?}");
        if algo.supports(c, Pass::BackwardData) {
            let mut dx = vec![f32::NAN; x.len()];
            conv2d_backward_data_pooled(&ctx, cp, y, dy, a, w, &mut dx).unwrap();
            let k = winograd_extra(algo.resolve(c, Pass::BackwardData, isa));
            let tol = tol(&dx_mag, c.kh() * c.kw() * c.cout(), k);
            assert_close(&dx, &dx_ref, &tol, &format!("pooled backward-data {what}"));
            if covered {
                let mut plain = vec![f32::NAN; x.len()];
                conv2d_backward_data(&ctx, c, dconv, w, &mut plain, false).unwrap();
                assert!(bits(&dx) == bits(&plain), "pooled backward-data {what}: not the plain pass");
            }
        }
        if algo.supports(c, Pass::BackwardFilter) {
            let (mut dw, mut db) = (vec![f32::NAN; w.len()], vec![f32::NAN; c.cout()]);
            conv2d_backward_filter_pooled(&ctx, cp, x, y, dy, a, &mut dw, Some(&mut db), false).unwrap();
            let k = winograd_extra(algo.resolve(c, Pass::BackwardFilter, isa));
            assert_close(&dw, &dw_ref, &tol(&dw_mag, c.pixels(), k), &format!("pooled backward-filter {what}"));
            assert_close(&db, &db_ref, &tol(&db_mag, c.pixels(), 0), &format!("pooled bias gradient {what}"));
            if covered {
                let mut plain = vec![f32::NAN; w.len()];
                conv2d_backward_filter(&ctx, c, x, dconv, &mut plain, None, false).unwrap();
                assert!(bits(&dw) == bits(&plain), "pooled backward-filter {what}: not the plain pass");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::cases(64)))]

    #[test]
    fn fused_matches_reference(cp in fused(), seed in any::<u64>()) {
        check(&cp, seed);
    }

    /// One input channel, 3x3, stride 1 (a first layer on grey images, which has its own
    /// kernel): against the reference, and bit for bit the plain direct convolution with
    /// bias and ReLU followed by max pooling (the same sums in the same order; the argmax
    /// where the output is positive, as all-zero windows may name any cell).
    #[test]
    fn one_channel_is_the_plain_direct_convolution_pooled(
        (n, h, w, co) in (1usize..4, 4usize..31, 4usize..31, 1usize..40),
        p in padding(),
        seed in any::<u64>(),
    ) {
        let Ok(c) = Conv2d::simple([n, h, w, 1], [3, 3, 1, co], p) else { return Ok(()) };
        let Ok(cp) = ConvReluPool::new(c) else { return Ok(()) };
        check(&cp, seed);
        let (x, wt, b) = (fill(seed, len(c.input_shape())), fill(seed ^ 1, 9 * co), fill(seed ^ 2, co));
        let out = len(cp.output_shape());
        for isa in Isa::available() {
            let ctx = Ctx::for_isa(isa).with_algo(ConvAlgo::Direct);
            let (mut y, mut a) = (vec![f32::NAN; out], vec![u32::MAX; out]);
            conv_relu_maxpool_forward(&ctx, &cp, &x, &wt, Some(&b), &mut y, &mut a).unwrap();
            let mut conv = vec![f32::NAN; len(c.output_shape())];
            conv2d_forward(&ctx, &c, &x, &wt, Some(&b), true, &mut conv).unwrap();
            let (mut yp, mut ap) = (vec![f32::NAN; out], vec![u32::MAX; out]);
            max_pool_forward(&ctx, cp.pool(), &conv, &mut yp, &mut ap).unwrap();
            let [_, hp, wp, co] = cp.output_shape();
            for o in 0..out {
                prop_assert!(y[o].to_bits() == yp[o].to_bits(), "{isa} {c:?}: output {o}: {} vs {}", y[o], yp[o]);
                // The pooling's argmax is an index in the image; the fused one, its cell.
                let pix = (o / co) % (hp * wp);
                let cell = (a[o] <= 3).then(|| cell_pixel(&c, (pix / wp, pix % wp), a[o], o % co));
                prop_assert!(
                    y[o] <= 0.0 || cell == Some(ap[o] as usize),
                    "{isa} {c:?}: argmax {o}: cell {} vs index {}", a[o], ap[o]
                );
            }
        }
    }

    /// `unpool_relu_grad` is the scatter bit for bit for any cells (not only a forward's
    /// maxima), with gradients of both signed zeros.
    #[test]
    fn unpool_is_the_scatter_for_any_cells(cp in fused(), seed in any::<u64>()) {
        let c = cp.conv();
        let [n, hp, wp, co] = cp.output_shape();
        let img = c.output_shape()[1..].iter().product::<usize>();
        let p = hp * wp * co;
        let y = fill(seed, n * p);
        let mut dy = fill(seed ^ 1, n * p);
        dy.iter_mut().step_by(5).for_each(|g| *g = -0.0);
        dy.iter_mut().skip(2).step_by(7).for_each(|g| *g = 0.0);
        let a: Vec<u32> = (0..n * p).map(|o| ((seed as usize >> 3) + o / 3 + o / 5) as u32 % 4).collect();
        let mut dconv = vec![f32::NAN; n * img];
        unpool_relu_grad(&cp, &y, &dy, &a, &mut dconv).unwrap();
        let mut scattered = vec![0.0f32; dconv.len()];
        for (o, ((&yv, &g), &ai)) in y.iter().zip(&dy).zip(&a).enumerate() {
            if yv > 0.0 {
                let pix = o % p / co;
                scattered[o / p * img + cell_pixel(c, (pix / wp, pix % wp), ai, o % co)] += g;
            }
        }
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        prop_assert!(bits(&dconv) == bits(&scattered), "{:?}", c);
    }
}

#[test]
fn seed_model_layer_matches_reference() {
    // The reference workload's first layer: 28x28x1, 3x3x1x32, valid; batch 5.
    let c = Conv2d::simple([5, 28, 28, 1], [3, 3, 1, 32], Padding::Valid).unwrap();
    let cp = ConvReluPool::new(c).unwrap();
    assert_eq!(cp.output_shape(), [5, 13, 13, 32]);
    check(&cp, 7);
}

#[test]
fn convnet_layer_matches_reference() {
    // keras.io's convnet's second layer at 8 samples: 13x13x32, 3x3x32x64,
    // valid (11x11 output, pooled to 5x5: an odd last row and column dropped), which Auto
    // runs with Winograd F(4x4).
    let c = Conv2d::simple([8, 13, 13, 32], [3, 3, 32, 64], Padding::Valid).unwrap();
    let cp = ConvReluPool::new(c).unwrap();
    assert_eq!(cp.output_shape(), [8, 5, 5, 64]);
    check(&cp, 11);
}

#[test]
fn cifar_layer_matches_reference() {
    // TensorFlow's CIFAR-10 CNN's second layer at 8 samples: 15x15x32,
    // 3x3x32x64, valid (13x13 output, pooled to 6x6): the pooled passes tile 12x12 of it.
    let c = Conv2d::simple([8, 15, 15, 32], [3, 3, 32, 64], Padding::Valid).unwrap();
    let cp = ConvReluPool::new(c).unwrap();
    assert_eq!(cp.output_shape(), [8, 6, 6, 64]);
    check(&cp, 13);
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let c = Conv2d::simple([9, 12, 11, 3], [3, 3, 3, 20], Padding::Same).unwrap();
    let cp = ConvReluPool::new(c).unwrap();
    let x = fill(1, len(c.input_shape()));
    let w = fill(2, len(c.filter_shape()));
    let b = fill(3, c.cout());
    let out = len(cp.output_shape());
    let dy = fill(4, out);
    for isa in Isa::available() {
        let run = |threads: usize, algo: ConvAlgo| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let (mut y, mut a) = (vec![0.0; out], vec![0u32; out]);
                let ctx = Ctx::for_isa(isa).with_algo(algo);
                conv_relu_maxpool_forward(&ctx, &cp, &x, &w, Some(&b), &mut y, &mut a).unwrap();
                let (mut dw, mut db) = (vec![0.0; w.len()], vec![0.0; c.cout()]);
                conv_relu_maxpool_backward_filter(
                    &Ctx::for_isa(isa),
                    &cp,
                    &x,
                    &y,
                    &dy,
                    &a,
                    &mut dw,
                    Some(&mut db),
                    false,
                )
                .unwrap();
                // The pooled passes (Winograd tiles 12x10 of the 12x11 output).
                let mut dx = vec![0.0; x.len()];
                conv2d_backward_data_pooled(&ctx, &cp, &y, &dy, &a, &w, &mut dx).unwrap();
                let (mut dw2, mut db2) = (vec![0.0; w.len()], vec![0.0; c.cout()]);
                conv2d_backward_filter_pooled(&ctx, &cp, &x, &y, &dy, &a, &mut dw2, Some(&mut db2), false).unwrap();
                (y, a, dw, db, dx, dw2, db2)
            })
        };
        for algo in [ConvAlgo::Direct, ConvAlgo::Winograd2x3, ConvAlgo::Winograd4x3] {
            let one = run(1, algo);
            for t in [2, 3] {
                assert!(run(t, algo) == one, "{isa} {algo:?}: {t} threads differ from 1");
            }
        }
    }
}

/// An argmax past the window cells (above 3, up to `u32::MAX`) names no pixel: its pooled
/// output passes no gradient, to `dw`, `db` or `dx`, in the kernels and the reference alike:
/// the same bits as the pooled output at 0. (Bad lengths and shapes are rows of
/// `bad_input/fused.rs`.)
#[test]
fn argmax_past_the_window_cells_contributes_nothing() {
    let c = Conv2d::simple([2, 6, 6, 2], [3, 3, 2, 4], Padding::Valid).unwrap();
    let cp = ConvReluPool::new(c).unwrap();
    // A nonzero input and filter, so that a gradient wrongly let through shows.
    let x = (0..2 * 36 * 2).map(|i| 1.0 + i as f32).collect::<Vec<f32>>();
    let w = (0..72).map(|i| 0.5 + i as f32).collect::<Vec<f32>>();
    let pooled = 2 * 2 * 2 * 4;
    let dy = (0..pooled).map(|i| 1.0 + i as f32).collect::<Vec<f32>>();
    let y_pos = vec![1.0; pooled];
    let a_ok = (0..pooled).map(|o| (o % 4) as u32).collect::<Vec<u32>>();
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    for bad in [4, 7, u32::MAX] {
        // Outputs 5 and 30 name no cell: as if their pooled values were 0.
        let (mut a, mut y_off) = (a_ok.clone(), y_pos.clone());
        for o in [5, 30] {
            a[o] = bad;
            y_off[o] = 0.0;
        }
        let run_ref = |y: &[f32], a: &[u32]| {
            let (mut dw, mut db) = (vec![f32::NAN; 72], vec![f32::NAN; 4]);
            reference::conv_relu_maxpool_backward_filter(&cp, &x, y, &dy, a, &mut dw, Some(&mut db)).unwrap();
            (dw, db)
        };
        assert!(run_ref(&y_pos, &a) == run_ref(&y_off, &a_ok), "reference: argmax {bad} contributed");
        for isa in Isa::available() {
            let ctx = Ctx::for_isa(isa);
            let fused = |y: &[f32], a: &[u32]| {
                let (mut dw, mut db) = (vec![f32::NAN; 72], vec![f32::NAN; 4]);
                conv_relu_maxpool_backward_filter(&ctx, &cp, &x, y, &dy, a, &mut dw, Some(&mut db), false).unwrap();
                (bits(&dw), bits(&db))
            };
            assert!(fused(&y_pos, &a) == fused(&y_off, &a_ok), "{isa:?}: fused backward-filter, argmax {bad}");
            let pooled_wgrad = |y: &[f32], a: &[u32]| {
                let (mut dw, mut db) = (vec![f32::NAN; 72], vec![f32::NAN; 4]);
                conv2d_backward_filter_pooled(&ctx, &cp, &x, y, &dy, a, &mut dw, Some(&mut db), false).unwrap();
                (bits(&dw), bits(&db))
            };
            assert!(
                pooled_wgrad(&y_pos, &a) == pooled_wgrad(&y_off, &a_ok),
                "{isa:?}: pooled backward-filter, argmax {bad}"
            );
            let pooled_dx = |y: &[f32], a: &[u32]| {
                let mut dx = vec![f32::NAN; x.len()];
                conv2d_backward_data_pooled(&ctx, &cp, y, &dy, a, &w, &mut dx).unwrap();
                bits(&dx)
            };
            assert!(pooled_dx(&y_pos, &a) == pooled_dx(&y_off, &a_ok), "{isa:?}: pooled backward-data, argmax {bad}");
        }
        let unpool = |y: &[f32], a: &[u32]| {
            let mut dconv = vec![f32::NAN; 2 * 16 * 4];
            unpool_relu_grad(&cp, y, &dy, a, &mut dconv).unwrap();
            bits(&dconv)
        };
        assert!(unpool(&y_pos, &a) == unpool(&y_off, &a_ok), "unpool, argmax {bad}");
    }
}

/// The index in its image's convolution output (`[ho, wo, cout]`) of cell `cell` (0..=3,
/// row-major) of pooled pixel `(py, px)`'s window, channel `ch`.
fn cell_pixel(c: &Conv2d, (py, px): (usize, usize), cell: u32, ch: usize) -> usize {
    let (oy, ox) = (2 * py + cell as usize / 2, 2 * px + cell as usize % 2);
    (oy * c.wo() + ox) * c.cout() + ch
}

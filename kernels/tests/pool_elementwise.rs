//! Pooling against the reference, and the elementwise kernels against their definitions.

mod common;

use common::{assert_close, fill, padding, EPS};
use ember_kernels::conv::Padding;
use ember_kernels::elementwise::{
    accumulate, accumulate_in_order, adam_update, add_forward, bias_add, bias_grad, flush_subnormal, relu_backward,
    relu_forward, softmax, softmax_cross_entropy, AdamParams,
};
use ember_kernels::pool::{
    avg_pool_backward, avg_pool_forward, global_avg_pool_forward, max_pool_backward, max_pool_forward, Pool2d,
};
use ember_kernels::Ctx;
use ember_kernels::{reference, Error, Isa};
use proptest::prelude::*;

fn pool() -> impl Strategy<Value = Pool2d> {
    ((1usize..4, 1usize..11, 1usize..11, 1usize..40), (1usize..4, 1usize..4, 1usize..4, 1usize..4), padding())
        .prop_filter_map("window larger than padded input", |((n, h, w, c), (kh, kw, sh, sw), p)| {
            Pool2d::new([n, h, w, c], (kh, kw), (sh, sw), p).ok()
        })
}

fn len(s: [usize; 4]) -> usize {
    s.iter().product()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::cases(64)))]

    #[test]
    fn max_pool_matches_reference(p in pool(), seed in any::<u64>()) {
        // Quantised values make ties common, so the tie rule is exercised too.
        let x: Vec<f32> = fill(seed, len(p.input_shape())).iter().map(|v| (v * 4.0).round()).collect();
        let dy = fill(seed ^ 1, len(p.output_shape()));
        let (mut yr, mut ar) = (vec![0.0; dy.len()], vec![0u32; dy.len()]);
        reference::max_pool_forward(&p, &x, &mut yr, &mut ar).unwrap();
        let mut dxr = vec![0.0; x.len()];
        reference::max_pool_backward(&p, &dy, &ar, &mut dxr).unwrap();
        for isa in Isa::available() {
            let (mut y, mut a) = (vec![0.0; dy.len()], vec![0u32; dy.len()]);
            max_pool_forward(&Ctx::for_isa(isa), &p, &x, &mut y, &mut a).unwrap();
            prop_assert_eq!(&y, &yr, "{}", isa);
            prop_assert_eq!(&a, &ar, "{}", isa);
            let mut dx = vec![f32::NAN; x.len()];
            max_pool_backward(&Ctx::for_isa(isa), &p, &dy, &a, &mut dx).unwrap();
            // Each input cell sums at most kh*kw routed gradients.
            let tol = vec![(p.window_size().0 * p.window_size().1 + 2) as f64 * EPS * 2.0 * (p.window_size().0 * p.window_size().1) as f64; x.len()];
            assert_close(&dx, &dxr, &tol, &format!("max_pool_backward {isa}"));
        }
    }

    #[test]
    fn avg_pool_matches_reference(p in pool(), seed in any::<u64>()) {
        let x = fill(seed, len(p.input_shape()));
        let dy = fill(seed ^ 1, len(p.output_shape()));
        let (mut y, mut yr) = (vec![f32::NAN; dy.len()], vec![0.0; dy.len()]);
        avg_pool_forward(&p, &x, &mut y).unwrap();
        reference::avg_pool_forward(&p, &x, &mut yr).unwrap();
        // A mean of up to kh*kw values in [-1, 1): summation error + one scaling.
        let cells = (p.window_size().0 * p.window_size().1) as f64;
        assert_close(&y, &yr, &vec![(cells + 3.0) * EPS; y.len()], "avg_pool_forward");
        let (mut dx, mut dxr) = (vec![f32::NAN; x.len()], vec![0.0; x.len()]);
        avg_pool_backward(&p, &dy, &mut dx).unwrap();
        reference::avg_pool_backward(&p, &dy, &mut dxr).unwrap();
        assert_close(&dx, &dxr, &vec![(cells + 3.0) * EPS * cells; x.len()], "avg_pool_backward");
    }
}

#[test]
fn global_avg_pool_is_the_channel_mean() {
    let x: Vec<f32> = (0..2 * 3 * 2 * 2).map(|v| v as f32).collect(); // [2,3,2,2]
    let mut y = vec![0.0; 4];
    global_avg_pool_forward([2, 3, 2, 2], &x, &mut y).unwrap();
    assert_eq!(y, [5.0, 6.0, 17.0, 18.0]);
}

#[test]
fn pooling_rejects_bad_input() {
    assert!(matches!(Pool2d::new([1, 2, 2, 1], (3, 3), (1, 1), Padding::Valid), Err(Error::InvalidArgument(_))));
    assert!(matches!(Pool2d::new([1, 4, 4, 1], (2, 2), (0, 1), Padding::Valid), Err(Error::InvalidArgument(_))));
    let p = Pool2d::new([1, 4, 4, 1], (2, 2), (2, 2), Padding::Valid).unwrap();
    let (x, mut y, mut a) = (vec![0.0; 16], vec![0.0; 4], vec![0u32; 4]);
    assert!(matches!(max_pool_forward(&Ctx::new(), &p, &x[..15], &mut y, &mut a), Err(Error::ShapeMismatch { .. })));
    let mut dx = vec![0.0; 16];
    assert!(matches!(max_pool_backward(&Ctx::new(), &p, &y, &[99, 0, 0, 0], &mut dx), Err(Error::InvalidArgument(_))));
    // Regression: the output size was never checked (padding can make it exceed the input).
    let huge = Padding::Explicit { top: 1 << 31, bottom: 0, left: 1 << 31, right: 0 };
    assert!(matches!(Pool2d::new([1, 1, 1, 1], (1, 1), (1, 1), huge), Err(Error::SizeOverflow { .. })));
    let overflow = Padding::Explicit { top: usize::MAX, bottom: 1, left: 0, right: 0 };
    assert!(matches!(Pool2d::new([1, 1, 1, 1], (1, 1), (1, 1), overflow), Err(Error::SizeOverflow { .. })));
}

#[test]
fn elementwise_kernels_follow_their_definitions() {
    let mut x = vec![1.0, -2.0, 3.0, -4.0];
    bias_add(&mut x, &[0.5, 1.0]).unwrap();
    assert_eq!(x, [1.5, -1.0, 3.5, -3.0]);
    let mut db = [9.0; 2];
    bias_grad(&x, 2, &mut db).unwrap();
    assert_eq!(db, [5.0, -4.0]);
    relu_forward(&mut x);
    assert_eq!(x, [1.5, 0.0, 3.5, 0.0]);
    let mut d = vec![1.0; 4];
    relu_backward(&x, &mut d).unwrap();
    assert_eq!(d, [1.0, 0.0, 1.0, 0.0]);
    assert!(matches!(bias_add(&mut x, &[1.0; 3]), Err(Error::ShapeMismatch { .. })));
}

proptest! {
    /// `add_forward` is the sum in input order, element by element (bit for bit: the same
    /// f32 additions), and with `relu` its positive part; lengths across the 8-lane blocks,
    /// their tails and the 16K-float chunks the threads split.
    #[test]
    fn add_is_the_ordered_sum_and_its_relu(len in 0usize..40_000, inputs in 1usize..4, seed in any::<u64>()) {
        let xs: Vec<Vec<f32>> = (0..inputs as u64).map(|k| fill(seed ^ k, len)).collect();
        let refs: Vec<&[f32]> = xs.iter().map(|x| &x[..]).collect();
        for relu in [false, true] {
            let mut y = vec![f32::NAN; len];
            add_forward(&refs, relu, &mut y).unwrap();
            for (i, &v) in y.iter().enumerate() {
                let mut want = xs[0][i];
                for x in &xs[1..] {
                    want += x[i];
                }
                let want = if relu { want.max(0.0) } else { want };
                prop_assert_eq!(v.to_bits(), want.to_bits(), "element {} of {}", i, len);
            }
        }
    }
}

#[test]
fn softmax_is_stable_and_cross_entropy_gradient_matches_finite_differences() {
    let mut big = vec![1000.0, 1001.0, 1002.0];
    softmax(&mut big, 3).unwrap();
    let e: Vec<f64> = [-2.0f64, -1.0, 0.0].iter().map(|v| v.exp()).collect();
    let s: f64 = e.iter().sum();
    for (p, q) in big.iter().zip(&e) {
        assert!((f64::from(*p) - q / s).abs() < 1e-6);
    }
    let logits = fill(3, 4 * 5);
    let labels = [0u32, 4, 2, 2];
    let mut g = vec![0.0; 20];
    let loss = softmax_cross_entropy(&logits, &labels, 5, &mut g).unwrap();
    assert!(loss.is_finite() && loss > 0.0);
    for i in 0..20 {
        let h = 1e-2f32;
        let (mut lp, mut lm) = (logits.clone(), logits.clone());
        lp[i] += h;
        lm[i] -= h;
        let mut tmp = vec![0.0; 20];
        let fd = (softmax_cross_entropy(&lp, &labels, 5, &mut tmp).unwrap()
            - softmax_cross_entropy(&lm, &labels, 5, &mut tmp).unwrap())
            / (2.0 * h);
        // Central differences in f32 with h = 1e-2: truncation ~h², rounding ~ε/h.
        assert!((fd - g[i]).abs() < 2e-3, "element {i}: fd {fd} vs {}", g[i]);
    }
    assert!(matches!(softmax_cross_entropy(&logits, &[0, 5, 0, 0], 5, &mut g), Err(Error::InvalidArgument(_))));
}

#[test]
fn adam_matches_the_keras_formula() {
    let p = AdamParams::default();
    let (mut w, g) = (vec![1.0f32, -1.0], vec![0.5f32, -0.25]);
    let (mut m, mut v) = (vec![0.0; 2], vec![0.0; 2]);
    adam_update(&Ctx::new(), &p, 1, &mut w, &g, &mut m, &mut v).unwrap();
    for i in 0..2 {
        let (gi, wi) = (f64::from(g[i]), if i == 0 { 1.0 } else { -1.0 });
        let (mi, vi) = (0.1 * gi, 0.001 * gi * gi);
        let lr_t = 1e-3 * (1.0f64 - 0.999).sqrt() / (1.0 - 0.9);
        let want = wi - lr_t * mi / (vi.sqrt() + 1e-7);
        assert!((f64::from(w[i]) - want).abs() < 1e-6, "{} vs {want}", w[i]);
        // Keras's constants exactly: 1 - 0.9 in double precision rounds to the f32 0.1 (in
        // f32 from the f32 0.9 it would be 0.100000024).
        assert_eq!(m[i], g[i] * 0.1f32);
        assert_eq!(v[i], g[i] * g[i] * 0.001f32);
    }
    assert_eq!(p.one_minus_betas(), (0.1f32, 0.001f32));
    assert!(matches!(adam_update(&Ctx::new(), &p, 0, &mut w, &g, &mut m, &mut v), Err(Error::InvalidArgument(_))));
}

/// TensorFlow's view of an operand: a subnormal is zero of its sign (denormals-are-zero).
fn daz(x: f32) -> f32 {
    if x.is_subnormal() {
        0.0f32.copysign(x)
    } else {
        x
    }
}

thread_local! {
    /// Per operation of [`keras_adam_scalar`] (`(g - m)(1 - β1)`, `(g² - v)(1 - β2)`, `α m`,
    /// the quotient, the others), how many results [`ftz`] flushed on this thread that IEEE
    /// arithmetic rounds up to the smallest normal.
    static WINDOW: std::cell::RefCell<[usize; 5]> = const { std::cell::RefCell::new([0; 5]) };
}

/// An operation's result under x86's flush-to-zero, from its value in f64 (exact for
/// products of two f32, and rounding through f64 first is innocuous for one f32 operation):
/// zero of its sign when the value rounded to 24 bits with an unbounded exponent is below
/// the smallest normal (found in the normal range, 2^100 up), else the value rounded to f32.
fn ftz(r: f64) -> f32 {
    ftz_op(r, 4)
}

/// [`ftz`] of operation `op` (counted in [`WINDOW`]).
fn ftz_op(r: f64, op: usize) -> f32 {
    let scaled = (r * 2f64.powi(100)) as f32;
    if scaled.abs() < f32::MIN_POSITIVE * 2f32.powi(100) {
        if (r as f32).abs() == f32::MIN_POSITIVE {
            // IEEE rounds this one up to the smallest normal; x86 flushes it.
            WINDOW.with(|w| w.borrow_mut()[op] += 1);
        }
        if r.is_sign_negative() {
            -0.0
        } else {
            0.0
        }
    } else {
        r as f32
    }
}

/// Keras's Adam step with TensorFlow's flushing, one value at a time in f64 then rounded as
/// x86 rounds under flush-to-zero: the model the vectorised kernel must match bit for bit.
fn keras_adam_scalar(p: &AdamParams, t: u32, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    let tf_t = t as f32;
    let (b1, b2) = (p.beta1 as f32, p.beta2 as f32);
    let alpha = daz(p.lr * (1.0 - b2.powf(tf_t)).sqrt() / (1.0 - b1.powf(tf_t)));
    // Keras's constants: 1 - β in double precision, rounded once.
    let (c1, c2, eps) = (daz((1.0 - p.beta1) as f32), daz((1.0 - p.beta2) as f32), daz(p.eps));
    let d = f64::from;
    for i in 0..w.len() {
        let (gi, mi, vi, wi) = (daz(g[i]), daz(m[i]), daz(v[i]), daz(w[i]));
        m[i] = ftz(d(mi) + d(ftz_op(d(ftz(d(gi) - d(mi))) * d(c1), 0)));
        v[i] = ftz(d(vi) + d(ftz_op(d(ftz(d(ftz(d(gi) * d(gi))) - d(vi))) * d(c2), 1)));
        let den = ftz(d(ftz(d(v[i]).sqrt())) + d(eps));
        w[i] = ftz(d(wi) - d(ftz_op(d(ftz_op(d(alpha) * d(m[i]), 2)) / d(den), 3)));
    }
}

/// Runs `steps` Adam steps of `grads` on every ISA from `(w, m, v)` and checks each step's
/// weights and moments against [`keras_adam_scalar`], bit for bit.
fn check_adam_steps(p: &AdamParams, start: [&[f32]; 3], grads: &[Vec<f32>], what: &str) {
    for isa in Isa::available() {
        let [mut w, mut m, mut v] = start.map(<[f32]>::to_vec);
        let [mut we, mut me, mut ve] = start.map(<[f32]>::to_vec);
        for (k, g) in grads.iter().enumerate() {
            let t = k as u32 + 1;
            adam_update(&Ctx::for_isa(isa), p, t, &mut w, g, &mut m, &mut v).unwrap();
            keras_adam_scalar(p, t, &mut we, g, &mut me, &mut ve);
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                (bits(&w), bits(&m), bits(&v)),
                (bits(&we), bits(&me), bits(&ve)),
                "{what}: {isa:?}, len {}, step {t}",
                w.len()
            );
        }
    }
}

#[test]
fn adam_over_several_steps_is_the_scalar_keras_update_bit_for_bit() {
    // Every ISA; lengths across the 4-, 8- and 16-lane vectors and the 8192-float thread
    // chunks; non-zero moments after the first step.
    let p = AdamParams { lr: 3e-3, ..AdamParams::default() };
    for len in [1usize, 7, 8, 9, 17, 35, 8192 + 13] {
        let (w, zeros) = (fill(1, len), vec![0.0f32; len]);
        let grads: Vec<_> = (1..=4u64).map(|t| fill(10 + t, len)).collect();
        check_adam_steps(&p, [&w, &zeros, &zeros], &grads, "normal values");
    }
}

/// Values of magnitude `10^e` for `e` uniform in `[lo, hi]`, signs alternating with the
/// draws: tiny ones square to subnormals or are subnormal themselves.
fn tiny(seed: u64, len: usize, (lo, hi): (f32, f32)) -> Vec<f32> {
    fill(seed, len)
        .iter()
        .zip(fill(seed + 1000, len))
        .map(|(&u, s)| 10f32.powf(lo + (u + 1.0) / 2.0 * (hi - lo)).copysign(s))
        .collect()
}

#[test]
fn adam_flushes_subnormals_as_tensorflow_does_on_every_isa() {
    // Gradients from 1e-45 (subnormal) to 1e-15 (whose square is normal), moments and
    // weights around the smallest normal: every operation of the step meets subnormal
    // operands or results somewhere, and each must be zero of its sign.
    let p = AdamParams { lr: 1e-3, ..AdamParams::default() };
    for len in [9usize, 35, 8192 + 13] {
        let w: Vec<f32> =
            tiny(1, len, (-39.0, -36.0)).iter().zip(fill(2, len)).map(|(&a, b)| if b > 0.5 { b } else { a }).collect();
        let m = tiny(3, len, (-45.0, -36.0));
        let v = tiny(4, len, (-45.0, -36.0)).iter().map(|x| x.abs()).collect::<Vec<_>>();
        let grads: Vec<_> = (0..5u64).map(|t| tiny(10 + 2 * t, len, (-45.0, -15.0))).collect();
        // The inputs do reach the cases: subnormal gradients, moments, weights and squares.
        for (name, x) in [("g", &grads[0]), ("m", &m), ("v", &v), ("w", &w)] {
            assert!(x.iter().filter(|x| x.is_subnormal()).count() >= len / 20, "{name} has few subnormals");
        }
        assert!(grads[0].iter().filter(|g| (*g * *g).is_subnormal()).count() >= len / 20);
        check_adam_steps(&p, [&w, &m, &v], &grads, "tiny values");
    }
}

/// `n` values whose bits run from `center`'s less `n / 2`, signs alternating.
fn around(center: f32, n: usize) -> Vec<f32> {
    (0..n)
        .map(|k| f32::from_bits(center.to_bits() + k as u32 - n as u32 / 2) * if k % 2 == 0 { 1.0 } else { -1.0 })
        .collect()
}

#[test]
fn adam_matches_tensorflow_at_the_edges_of_its_paths() {
    // Vectors at the plain path's bounds and the careful path's thresholds: each product,
    // the quotient and the sums land some ulps either side of the smallest normal, and the
    // plain path's inputs sit at its bounds. Many learning rates and betas, so that results
    // fall in the window below the smallest normal that IEEE rounds up to it and x86 flushes
    // (whether one does depends on the constant's bits; asserted below).
    let min = f32::MIN_POSITIVE;
    let n = 64;
    let pow2 = |e: i32| 2f32.powi(e);
    let (u, u1, u2) = (fill(7, 32), fill(8, 32), fill(9, 32));
    for k in 0..32 {
        let p = AdamParams {
            lr: 1e-3 * 10f32.powf(u[k]),
            beta1: 0.85 + 0.1 * f64::from(u1[k]),
            beta2: 0.99 + 0.009 * f64::from(u2[k]),
            ..AdamParams::default()
        };
        let (c1, c2) = p.one_minus_betas();
        let alpha = ember_kernels::elementwise::adam_alpha(&p, 1);
        // √v + ε where v = 4 takes one step with g² = 0 (above 1, so that α m is normal
        // where the quotient is about the smallest normal).
        let den = (4.0 + (0.0 - 4.0) * c2).sqrt() + p.eps;
        let abs = |x: Vec<f32>| x.iter().map(|x| x.abs()).collect::<Vec<_>>();
        // (g, m, v, w) per group.
        let groups: Vec<[Vec<f32>; 4]> = vec![
            // (g - m)(1 - β1) about the smallest normal: m = 0.
            [around(min / c1, n), vec![0.0; n], vec![1.0; n], vec![1.0; n]],
            // g² about it.
            [around(pow2(-63), n), vec![0.0; n], vec![0.0; n], vec![1.0; n]],
            // (g² - v)(1 - β2) about it: g = 0.
            [vec![0.0; n], vec![0.0; n], abs(around(min / c2, n)), vec![1.0; n]],
            // α m about it (g = m, so m stays), then the quotient by √v + ε about it; w = 0,
            // so that the quotient shows in the new weight.
            [around(min / alpha, n), around(min / alpha, n), vec![1.0; n], vec![0.0; n]],
            [around(min * den / alpha, n), around(min * den / alpha, n), vec![4.0; n], vec![0.0; n]],
            // w - q about it.
            [vec![1.0; n], vec![1.0; n], vec![1.0; n], around(min, n)],
            // m about it where g = 0, so that m decays through it (only m is out of the
            // plain path's bounds).
            [vec![0.0; n], around(min, n), vec![1.0; n], vec![1.0; n]],
            // The plain path's bounds, from within.
            [
                around(pow2(-40) * 1.001, n),
                around(pow2(-40) * 1.001, n),
                abs(around(pow2(-80) * 1.001, n)),
                around(pow2(-40) * 1.001, n),
            ],
            [
                around(pow2(19) * 0.999, n),
                around(pow2(-40) * 1.001, n),
                abs(around(pow2(38) * 0.999, n)),
                around(pow2(-40) * 1.001, n),
            ],
        ];
        for [g, m, v, w] in groups {
            check_adam_steps(&p, [&w, &m, &v], &[g.clone(), g], "edges");
        }
        // A quotient reaches the window only with a power-of-two denominator (otherwise
        // `α m` and the smallest normal times it lie on one grid, and their quotient stays
        // half an ulp or more from the smallest normal): ε = 2 with v = 0, `α m` about 2^-125,
        // w = 0.
        let p2 = AdamParams { eps: 2.0, ..p };
        let m = around(pow2(-125) / alpha, n);
        check_adam_steps(&p2, [&vec![0.0; n], &m, &vec![0.0; n]], &[m.clone(), m.clone()], "edges, ε = 2");
    }
    let window = WINDOW.with(|w| *w.borrow());
    assert!(window[..4].iter().all(|&c| c > 0), "products and quotients in the window: {window:?}");
}

#[test]
fn flush_subnormal_zeroes_exactly_the_subnormals_keeping_their_sign() {
    let min = f32::MIN_POSITIVE;
    let cases = [
        (0.0f32, 0.0f32),
        (-0.0, -0.0),
        (1e-45, 0.0),
        (-1e-45, -0.0),
        (min * 0.5, 0.0),
        (-f32::from_bits(min.to_bits() - 1), -0.0),
        (min, min),
        (-min, -min),
        (1.0, 1.0),
        (f32::INFINITY, f32::INFINITY),
        (f32::NEG_INFINITY, f32::NEG_INFINITY),
    ];
    for (x, want) in cases {
        assert_eq!(flush_subnormal(x).to_bits(), want.to_bits(), "{x:e}");
    }
    assert!(flush_subnormal(f32::NAN).is_nan());
}

/// `y += x` is the scalar sum bit for bit on every ISA and thread count, over lengths across
/// the vectors and the 16384-float chunks.
#[test]
fn accumulate_is_the_scalar_sum() {
    for isa in Isa::available() {
        for len in [0usize, 1, 5, 16, 17, 40_000 + 3] {
            let (y0, x) = (fill(1, len), fill(2, len));
            let want: Vec<f32> = y0.iter().zip(&x).map(|(a, b)| a + b).collect();
            for threads in [1, 2, 3] {
                let mut y = y0.clone();
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| accumulate(&Ctx::for_isa(isa), &mut y, &x)).unwrap();
                assert!(y == want, "{isa}, len {len}, {threads} threads");
            }
        }
    }
}

/// `y += x₀; y += x₁; ...` in one pass is the scalar sums in that order bit for bit on every
/// ISA and thread count, for none, one and three `x`, over lengths across the vectors, the
/// L1 windows and the 16384-float chunks.
#[test]
fn accumulate_in_order_is_the_scalar_sums_in_order() {
    for isa in Isa::available() {
        for len in [0usize, 1, 17, 2048 + 9, 40_000 + 3] {
            let y0 = fill(1, len);
            let xs: Vec<Vec<f32>> = (0..3u64).map(|k| fill(10 + k, len)).collect();
            for count in [0, 1, 3] {
                let xs: Vec<&[f32]> = xs[..count].iter().map(|x| &x[..]).collect();
                let mut want = y0.clone();
                for x in &xs {
                    want.iter_mut().zip(*x).for_each(|(a, b)| *a += b);
                }
                for threads in [1, 2, 3] {
                    let mut y = y0.clone();
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    pool.install(|| accumulate_in_order(&Ctx::for_isa(isa), &mut y, &xs)).unwrap();
                    let same = y.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{isa}, len {len}, {count} inputs, {threads} threads");
                }
            }
        }
    }
}

/// Pooling (every ISA the max kernels have) and the bias gradient give the same bits on 1, 2
/// and 3 threads: windows that overlap (stride < window) and padding included, and a bias
/// gradient over many blocks of rows.
#[test]
fn pooling_and_bias_gradient_do_not_depend_on_thread_count() {
    let p = Pool2d::new([5, 23, 19, 24], (3, 3), (2, 2), Padding::Same).unwrap();
    let x = fill(1, len(p.input_shape()));
    let dy = fill(2, len(p.output_shape()));
    let big_dy = fill(3, 40_000 * 10);
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
    for isa in Isa::available() {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let (mut y, mut a) = (vec![0.0; dy.len()], vec![0u32; dy.len()]);
                max_pool_forward(&Ctx::for_isa(isa), &p, &x, &mut y, &mut a).unwrap();
                let mut dx = vec![0.0; x.len()];
                max_pool_backward(&Ctx::for_isa(isa), &p, &dy, &a, &mut dx).unwrap();
                let mut ya = vec![0.0; dy.len()];
                avg_pool_forward(&p, &x, &mut ya).unwrap();
                let mut dxa = vec![0.0; x.len()];
                avg_pool_backward(&p, &dy, &mut dxa).unwrap();
                let mut db = vec![0.0; 10];
                bias_grad(&big_dy, 10, &mut db).unwrap();
                (bits(&y), a, bits(&dx), bits(&ya), bits(&dxa), bits(&db))
            })
        };
        let one = run(1);
        assert!(one == run(2), "{isa}: 1 vs 2 threads");
        assert!(one == run(3), "{isa}: 1 vs 3 threads");
    }
}

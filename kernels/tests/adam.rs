//! Adam against Keras's formula and TensorFlow's flush-to-zero arithmetic, bit for bit on
//! every ISA: a scalar model of the update (f64 per operation, rounded as x86 rounds with
//! flush-to-zero and denormals-are-zero) checked over normal values, subnormal ones and the
//! edges of the kernel's fast path; and the flush itself.

mod common;

use common::{daz, fill, ftz_window, tiny};
use ember_kernels::elementwise::{adam_update, adam_update_summed, flush_subnormal, AdamParams};
use ember_kernels::{Ctx, Error, Isa};
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

thread_local! {
    /// Per operation of [`keras_adam_scalar`] (`(g - m)(1 - β1)`, `(g² - v)(1 - β2)`, `α m`,
    /// the quotient, the others), how many results [`ftz`] flushed on this thread that IEEE
    /// arithmetic rounds up to the smallest normal.
    static WINDOW: std::cell::RefCell<[usize; 5]> = const { std::cell::RefCell::new([0; 5]) };
}

/// An operation's result under x86's flush-to-zero ([`ftz_window`]).
fn ftz(r: f64) -> f32 {
    ftz_op(r, 4)
}

/// [`ftz`] of operation `op` (counted in [`WINDOW`]).
fn ftz_op(r: f64, op: usize) -> f32 {
    let (x, window) = ftz_window(r);
    if window {
        WINDOW.with(|w| w.borrow_mut()[op] += 1);
    }
    x
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
        let (gi, mi, vi, mut wi) = (daz(g[i]), daz(m[i]), daz(v[i]), daz(w[i]));
        // AdamW's decay first: `w - (w·wd)·lr`.
        if let Some(wd) = p.weight_decay {
            wi = ftz(d(wi) - d(ftz(d(ftz(d(wi) * d(daz(wd)))) * d(daz(p.lr)))));
        }
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

#[test]
fn adamw_decays_then_steps_as_keras_on_every_isa() {
    // AdamW's decay before each step: normal values over several steps, tiny ones (the
    // decay's products subnormal), weights whose decayed value falls below the plain
    // path's bound (wd·lr near 1), and constants outside the plain path (a tiny decay, a
    // learning rate of zero).
    let len = 8192 + 37;
    let w = fill(1, len);
    let (m, v) = (fill(2, len), fill(3, len).iter().map(|x| x.abs()).collect::<Vec<_>>());
    let grads: Vec<_> = (0..3u64).map(|t| fill(10 + t, len)).collect();
    let tiny_w: Vec<f32> =
        tiny(4, len, (-39.0, -30.0)).iter().zip(&w).map(|(&a, &b)| if b > 0.3 { b } else { a }).collect();
    let tiny_g: Vec<_> = (0..3u64).map(|t| tiny(20 + t, len, (-45.0, -15.0))).collect();
    let base = AdamParams { lr: 3e-3, weight_decay: Some(0.004), ..AdamParams::default() };
    for p in [
        base,
        AdamParams { weight_decay: Some(0.0), ..base },
        AdamParams { weight_decay: Some(1e-30), ..base },
        AdamParams { lr: 0.0, ..base },
        AdamParams { lr: 0.9, weight_decay: Some(0.7), ..base },
    ] {
        check_adam_steps(&p, [&w, &m, &v], &grads, &format!("normal values, {p:?}"));
        check_adam_steps(&p, [&tiny_w, &m, &v], &tiny_g, &format!("tiny values, {p:?}"));
        // Zero gradients and moments: the step adds nothing, so the weights are the decay's
        // alone, bit for bit.
        let zeros = vec![0.0f32; len];
        check_adam_steps(&p, [&w, &zeros, &zeros], std::slice::from_ref(&zeros), &format!("the decay alone, {p:?}"));
        check_adam_steps(
            &p,
            [&tiny_w, &zeros, &zeros],
            std::slice::from_ref(&zeros),
            &format!("the decay alone, tiny, {p:?}"),
        );
    }
    // wd·lr near 1: weights from 1e-12 to 1e-8 (within the plain path's bound) decay below it.
    let p = AdamParams { lr: 0.9999, weight_decay: Some(1.0), ..base };
    let small: Vec<f32> = tiny(6, len, (-12.0, -8.0));
    check_adam_steps(&p, [&small, &m, &v], &grads, "weights that decay below the plain bound");
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

/// The step on a gradient given in parts is the parts summed in order
/// (`accumulate_in_order`) and then the step, bit for bit, on every ISA: the sum left in
/// the first part, lengths over several of the step's chunks with a partial last vector,
/// and parts with subnormal and tiny values (the careful path) as well as normal ones.
#[test]
fn adam_on_a_gradient_in_parts_is_the_sum_then_the_step() {
    let p = AdamParams::default();
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
    for isa in Isa::available() {
        let ctx = Ctx::for_isa(isa);
        for (len, parts) in [(1, 2), (17, 1), (40, 4), (20_003, 3), (8_192 * 2 + 5, 2)] {
            let mut start = [fill(1, len), fill(2, len), fill(3, len).iter().map(|x| x.abs()).collect()];
            // Every fifth weight tiny, so some vectors take the careful path.
            start[0].iter_mut().step_by(5).for_each(|w| *w *= 1e-39);
            let grads: Vec<Vec<f32>> = (0..=parts as u64)
                .map(|k| if k == 2 { tiny(k, len, (-45.0, -36.0)) } else { fill(10 + k, len) })
                .collect();
            let (more, first) = (grads[1..].iter().map(|g| &g[..]).collect::<Vec<_>>(), &grads[0]);
            let [mut w1, mut m1, mut v1] = start.clone();
            let mut sum = first.clone();
            ember_kernels::elementwise::accumulate_in_order(&ctx, &mut sum, &more).unwrap();
            adam_update(&ctx, &p, 3, &mut w1, &sum, &mut m1, &mut v1).unwrap();
            let [mut w2, mut m2, mut v2] = start;
            let mut g2 = first.clone();
            adam_update_summed(&ctx, &p, 3, &mut w2, &mut g2, &more, &mut m2, &mut v2).unwrap();
            for (name, a, b) in [("weights", &w1, &w2), ("m", &m1, &m2), ("v", &v1, &v2), ("gradient", &sum, &g2)] {
                assert_eq!(bits(a), bits(b), "{isa}: {name}, length {len}, {parts} more parts");
            }
        }
        let (mut w, mut g, mut m, mut v) = (vec![0.0; 4], vec![0.0; 4], vec![0.0; 4], vec![0.0; 4]);
        let short = [0.0f32; 3];
        let r = adam_update_summed(&ctx, &p, 1, &mut w, &mut g, &[&short], &mut m, &mut v);
        assert!(matches!(r, Err(Error::ShapeMismatch { .. })), "{isa}: a short part: {r:?}");
    }
}

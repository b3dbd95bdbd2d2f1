//! The RMSprop / Adagrad update (`rms_update`) against Keras's formulas and TensorFlow's
//! flush-to-zero arithmetic, bit for bit on every ISA: a scalar model of the update (f64 per
//! operation, rounded as x86 rounds with flush-to-zero and denormals-are-zero) over normal
//! values, tiny and subnormal ones, and the edges of the kernel's plain path; the summed
//! form against the sum followed by the step; and the inputs it refuses.

mod common;

use common::{daz, fill, ftz_window, tiny};
use ember_kernels::elementwise::{accumulate_in_order, rms_update, rms_update_summed, RmsParams};
use ember_kernels::{Ctx, Error, Isa};

fn ftz(r: f64) -> f32 {
    ftz_window(r).0
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// Keras's step with TensorFlow's flushing, one value at a time in f64 and rounded as x86
/// rounds under flush-to-zero: `s = decay·s + gain·(g·g)`, `w -= (lr·g)/√(s + ε)`.
fn keras_rms_scalar(p: &RmsParams, w: &mut [f32], g: &[f32], s: &mut [f32]) {
    let d = f64::from;
    let [decay, gain, lr, eps] = [p.decay, p.gain, p.lr, p.eps].map(daz);
    for i in 0..w.len() {
        let (gi, si, wi) = (daz(g[i]), daz(s[i]), daz(w[i]));
        let kept = ftz(d(decay) * d(si));
        let taken = ftz(d(gain) * d(ftz(d(gi) * d(gi))));
        s[i] = ftz(d(kept) + d(taken));
        let den = ftz(d(ftz(d(s[i]) + d(eps))).sqrt());
        w[i] = ftz(d(wi) - d(ftz(d(ftz(d(lr) * d(gi))) / d(den))));
    }
}

/// Runs a step per gradient on every ISA from `(w, s)` and checks each step's weights and
/// running sums against [`keras_rms_scalar`], bit for bit.
fn check_steps(p: &RmsParams, start: [&[f32]; 2], grads: &[Vec<f32>], what: &str) {
    for isa in Isa::available() {
        let [mut w, mut s] = start.map(<[f32]>::to_vec);
        let [mut we, mut se] = start.map(<[f32]>::to_vec);
        for (k, g) in grads.iter().enumerate() {
            rms_update(&Ctx::for_isa(isa), p, &mut w, g, &mut s).unwrap();
            keras_rms_scalar(p, &mut we, g, &mut se);
            assert_eq!((bits(&w), bits(&s)), (bits(&we), bits(&se)), "{what}: {isa:?}, len {}, step {k}", w.len());
        }
    }
}

#[test]
fn rmsprop_and_adagrad_match_the_keras_formulas() {
    let (w0, g) = ([1.0f32, -1.0], [0.5f32, -0.25]);
    // RMSprop from a zero velocity: v = (1 - ρ) g², 1 - ρ in double precision rounded once
    // (0.1 exactly as the f32 0.1; from the f32 0.9 it would be 0.100000024).
    let p = RmsParams::rmsprop(1e-3, 0.9, 1e-7);
    assert_eq!((p.decay, p.gain), (0.9f32, 0.1f32));
    let (mut w, mut v) = (w0.to_vec(), vec![0.0f32; 2]);
    rms_update(&Ctx::new(), &p, &mut w, &g, &mut v).unwrap();
    for i in 0..2 {
        assert_eq!(v[i], 0.1f32 * (g[i] * g[i]));
        let want = f64::from(w0[i]) - 1e-3 * f64::from(g[i]) / (0.1 * f64::from(g[i]).powi(2) + 1e-7).sqrt();
        assert!((f64::from(w[i]) - want).abs() < 1e-6, "rmsprop {} vs {want}", w[i]);
    }
    // Adagrad from Keras's initial accumulator 0.1: a = 0.1 + g².
    let p = RmsParams::adagrad(0.1, 1e-7);
    let (mut w, mut a) = (w0.to_vec(), vec![0.1f32; 2]);
    rms_update(&Ctx::new(), &p, &mut w, &g, &mut a).unwrap();
    for i in 0..2 {
        assert_eq!(a[i], 0.1f32 + g[i] * g[i]);
        let want = f64::from(w0[i]) - 0.1 * f64::from(g[i]) / (f64::from(a[i]) + 1e-7).sqrt();
        assert!((f64::from(w[i]) - want).abs() < 1e-6, "adagrad {} vs {want}", w[i]);
    }
}

#[test]
fn rms_steps_are_the_scalar_keras_update_bit_for_bit() {
    // Every ISA; lengths across the 4-, 8- and 16-lane vectors and the 8192-float thread
    // chunks; several steps, so the running sums are non-trivial.
    for p in [RmsParams::rmsprop(1e-2, 0.9, 1e-7), RmsParams::adagrad(0.1, 1e-7)] {
        for len in [1usize, 7, 8, 9, 17, 35, 8192 + 13] {
            let w = fill(1, len);
            let s: Vec<f32> = fill(2, len).iter().map(|x| x.abs()).collect();
            let grads: Vec<_> = (1..=4u64).map(|t| fill(10 + t, len)).collect();
            check_steps(&p, [&w, &s], &grads, &format!("normal values, {p:?}"));
        }
    }
}

#[test]
fn rms_flushes_subnormals_as_tensorflow_does_on_every_isa() {
    // Tiny and subnormal gradients (their squares flush), running sums decayed into the
    // subnormal range (a unit that stopped receiving gradient), tiny weights; and each of
    // the constants where it forces the careful path.
    let len = 8192 + 37;
    let w: Vec<f32> = fill(1, len).iter().enumerate().map(|(i, &x)| if i % 3 == 0 { x * 1e-39 } else { x }).collect();
    let s: Vec<f32> = tiny(4, len, (-46.0, -30.0)).iter().map(|x| x.abs()).collect();
    let grads: Vec<Vec<f32>> = (0..4u64).map(|k| tiny(10 + k, len, (-46.0, -15.0))).collect();
    let zeros = vec![0.0f32; len];
    let mut dead = vec![vec![0.0f32; len]; 3];
    dead.push(fill(20, len));
    for p in [
        RmsParams::rmsprop(1e-3, 0.9, 1e-7),
        RmsParams::adagrad(1e-3, 1e-7),
        // ρ = 0: the velocity is the last squared gradient (decay 0, outside the plain path).
        RmsParams::rmsprop(1e-3, 0.0, 1e-7),
        // A learning rate decayed to zero, and a subnormal one.
        RmsParams::rmsprop(0.0, 0.9, 1e-7),
        RmsParams { lr: 1e-39, ..RmsParams::rmsprop(1e-3, 0.9, 1e-7) },
        // A large ε, and a gain whose products with squared gradients are tiny.
        RmsParams::rmsprop(1e-3, 0.9, 2048.0),
        RmsParams { gain: 1e-30, ..RmsParams::rmsprop(1e-3, 0.9, 1e-7) },
    ] {
        check_steps(&p, [&w, &s], &grads, &format!("tiny values, {p:?}"));
        check_steps(&p, [&w, &s], &dead, &format!("zero gradients on subnormal sums, {p:?}"));
        check_steps(&p, [&w, &zeros], &grads, &format!("tiny gradients from zero sums, {p:?}"));
    }
}

/// `n` values a few ulps either side of `center` (both signs).
fn around(center: f32, n: usize) -> Vec<f32> {
    let b = center.to_bits();
    (0..n).map(|i| f32::from_bits(b - 3 + (i % 7) as u32) * if i % 2 == 0 { 1.0 } else { -1.0 }).collect()
}

#[test]
fn rms_matches_tensorflow_at_the_edges_of_its_plain_path() {
    // Every bound of the plain path, with the values just inside and just outside it mixed
    // into the same vectors and alone, so both paths run on values near each bound.
    let p = RmsParams::rmsprop(3e-3, 0.9, 1e-7);
    let n = 70;
    let p2 = |e: i32| 2f32.powi(e);
    let normal = fill(3, n);
    let sums = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
    // (what, gradients, running sums, weights)
    let cases = [
        ("g near 2^-40", around(p2(-40), n), sums(&normal), normal.clone()),
        ("g near 2^19", around(p2(19), n), sums(&normal), normal.clone()),
        ("s near 2^-80", normal.clone(), sums(&around(p2(-80), n)), normal.clone()),
        ("s near 2^38", normal.clone(), sums(&around(p2(38), n)), normal.clone()),
        ("w near 2^-40", normal.clone(), sums(&normal), around(p2(-40), n)),
    ];
    for (what, g, s, w) in cases {
        check_steps(&p, [&w, &s], &[g], what);
    }
    // Weights a few ulps from the step the update takes, so that the new weight's exact
    // value lies in the subnormal range (flushed to zero of its sign) or is zero: the
    // steps found by running the model from zero weights and sums (lr 1, ε 1024: steps of
    // about 2^-120 for gradients about 2^-115, normal with normal products).
    let p = RmsParams::rmsprop(1.0, 0.9, 1024.0);
    let g: Vec<f32> = fill(5, n).iter().map(|x| (1.0 + x.abs()) * p2(-115)).collect();
    let (mut step, mut s) = (vec![0.0f32; n], vec![0.0f32; n]);
    keras_rms_scalar(&p, &mut step, &g, &mut s);
    let w: Vec<f32> =
        step.iter().enumerate().map(|(i, &q)| f32::from_bits((-q).to_bits() + (i % 7) as u32 - 3)).collect();
    check_steps(&p, [&w, &vec![0.0; n]], &[g], "new weights in the subnormal range");
}

#[test]
fn rms_on_a_gradient_in_parts_is_the_sum_then_the_step() {
    let p = RmsParams::rmsprop(1e-3, 0.9, 1e-7);
    for isa in Isa::available() {
        let ctx = Ctx::for_isa(isa);
        for (len, parts) in [(1, 2), (17, 1), (40, 4), (20_003, 3), (8_192 * 2 + 5, 2)] {
            let mut w = fill(1, len);
            // Every fifth weight tiny, so some vectors take the careful path.
            w.iter_mut().step_by(5).for_each(|x| *x *= 1e-39);
            let s: Vec<f32> = fill(3, len).iter().map(|x| x.abs()).collect();
            let grads: Vec<Vec<f32>> = (0..=parts as u64)
                .map(|k| if k == 2 { tiny(k, len, (-45.0, -36.0)) } else { fill(10 + k, len) })
                .collect();
            let (more, first) = (grads[1..].iter().map(|g| &g[..]).collect::<Vec<_>>(), &grads[0]);
            let (mut w1, mut s1, mut sum) = (w.clone(), s.clone(), first.clone());
            accumulate_in_order(&ctx, &mut sum, &more).unwrap();
            rms_update(&ctx, &p, &mut w1, &sum, &mut s1).unwrap();
            let (mut w2, mut s2, mut g2) = (w, s, first.clone());
            rms_update_summed(&ctx, &p, &mut w2, &mut g2, &more, &mut s2).unwrap();
            for (name, a, b) in [("weights", &w1, &w2), ("running sums", &s1, &s2), ("gradient", &sum, &g2)] {
                assert_eq!(bits(a), bits(b), "{isa}: {name}, length {len}, {parts} more parts");
            }
        }
    }
}

#[test]
fn rms_refuses_bad_input_with_a_typed_error() {
    let ctx = Ctx::new();
    let ok = RmsParams::rmsprop(1e-3, 0.9, 1e-7);
    let (mut w, mut g, mut s) = (vec![0.0f32; 4], vec![0.0f32; 4], vec![0.0f32; 4]);
    let short = [0.0f32; 3];
    let shape = |r: Result<(), Error>| matches!(r, Err(Error::ShapeMismatch { .. }));
    assert!(shape(rms_update(&ctx, &ok, &mut w, &short, &mut s)), "a short gradient");
    assert!(shape(rms_update(&ctx, &ok, &mut w, &g, &mut s[..3])), "a short running sum");
    assert!(shape(rms_update_summed(&ctx, &ok, &mut w, &mut g, &[&short], &mut s)), "a short part");
    assert!(shape(rms_update_summed(&ctx, &ok, &mut w, &mut g[..3], &[], &mut s)), "a short summed gradient");
    for (what, p) in [
        ("zero epsilon", RmsParams { eps: 0.0, ..ok }),
        ("NaN epsilon", RmsParams { eps: f32::NAN, ..ok }),
        ("epsilon over 2^100", RmsParams { eps: 2f32.powi(101), ..ok }),
        ("negative decay", RmsParams { decay: -0.5, ..ok }),
        ("NaN decay", RmsParams { decay: f32::NAN, ..ok }),
        ("infinite gain", RmsParams { gain: f32::INFINITY, ..ok }),
    ] {
        let r = rms_update(&ctx, &p, &mut w, &g, &mut s);
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "{what}: {r:?}");
    }
    // Nothing was written by the refused calls.
    assert!(w.iter().chain(&s).all(|&x| x == 0.0));
}

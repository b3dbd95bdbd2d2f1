//! The SGD update (`sgd_update`) against Keras's formulas and TensorFlow's flush-to-zero
//! arithmetic, bit for bit on every ISA: a scalar model of the update (f64 per operation,
//! rounded as x86 rounds with flush-to-zero and denormals-are-zero) over normal values,
//! tiny and subnormal ones, velocities decaying into the subnormal range, and the edges of
//! the kernel's plain path; the summed form against the sum followed by the step; and the
//! inputs it refuses.

mod common;

use common::{daz, fill, ftz_window, tiny};
use ember_kernels::elementwise::{accumulate_in_order, sgd_update, sgd_update_summed, SgdParams};
use ember_kernels::{Ctx, Error, Isa};

fn ftz(r: f64) -> f32 {
    ftz_window(r).0
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// Keras's step with TensorFlow's flushing, one value at a time in f64 and rounded as x86
/// rounds under flush-to-zero: `w -= g·lr`, or `m = m·μ - g·lr` and `w += m` (Nesterov:
/// `w += m·μ - g·lr`).
fn keras_sgd_scalar(p: &SgdParams, w: &mut [f32], g: &[f32], m: Option<&mut [f32]>) {
    let d = f64::from;
    let [lr, mu] = [p.lr, p.momentum].map(daz);
    match m {
        None => {
            for i in 0..w.len() {
                let step = ftz(d(daz(g[i])) * d(lr));
                w[i] = ftz(d(daz(w[i])) - d(step));
            }
        }
        Some(m) => {
            for i in 0..w.len() {
                let step = ftz(d(daz(g[i])) * d(lr));
                m[i] = ftz(d(ftz(d(daz(m[i])) * d(mu))) - d(step));
                let add = if p.nesterov { ftz(d(ftz(d(m[i]) * d(mu))) - d(step)) } else { m[i] };
                w[i] = ftz(d(daz(w[i])) + d(add));
            }
        }
    }
}

/// Runs a step per gradient on every ISA from `w` (and the velocity `m`, if any) and checks
/// each step's weights and velocities against [`keras_sgd_scalar`], bit for bit.
fn check_steps(p: &SgdParams, w0: &[f32], m0: Option<&[f32]>, grads: &[Vec<f32>], what: &str) {
    for isa in Isa::available() {
        let (mut w, mut m) = (w0.to_vec(), m0.map(<[f32]>::to_vec));
        let (mut we, mut me) = (w0.to_vec(), m0.map(<[f32]>::to_vec));
        for (k, g) in grads.iter().enumerate() {
            sgd_update(&Ctx::for_isa(isa), p, &mut w, g, m.as_deref_mut()).unwrap();
            keras_sgd_scalar(p, &mut we, g, me.as_deref_mut());
            let len = w.len();
            assert_eq!(bits(&w), bits(&we), "{what}: {isa:?}, {p:?}, len {len}, step {k}: weights");
            assert_eq!(m.as_deref().map(bits), me.as_deref().map(bits), "{what}: {isa:?}, len {len}, step {k}");
        }
    }
}

/// SGD without momentum, with it, and Nesterov's, at learning rate `lr` and momentum `mu`.
fn kinds(lr: f32, mu: f32) -> [(SgdParams, bool); 3] {
    [
        (SgdParams { lr, momentum: 0.0, nesterov: false }, false),
        (SgdParams { lr, momentum: mu, nesterov: false }, true),
        (SgdParams { lr, momentum: mu, nesterov: true }, true),
    ]
}

#[test]
fn sgd_matches_the_keras_formulas() {
    let (w0, g) = ([1.0f32, -1.0], [0.5f32, -0.25]);
    let (lr, mu) = (0.1f32, 0.9f32);
    let mut w = w0.to_vec();
    sgd_update(&Ctx::new(), &SgdParams { lr, momentum: 0.0, nesterov: false }, &mut w, &g, None).unwrap();
    assert_eq!(w, [w0[0] - g[0] * lr, w0[1] - g[1] * lr]);
    for nesterov in [false, true] {
        let (mut w, mut m) = (w0.to_vec(), vec![0.25f32, -0.5]);
        let m0 = m.clone();
        sgd_update(&Ctx::new(), &SgdParams { lr, momentum: mu, nesterov }, &mut w, &g, Some(&mut m)).unwrap();
        for i in 0..2 {
            assert_eq!(m[i], m0[i] * mu - g[i] * lr);
            let add = if nesterov { m[i] * mu - g[i] * lr } else { m[i] };
            assert_eq!(w[i], w0[i] + add, "nesterov {nesterov}");
        }
    }
}

#[test]
fn sgd_steps_are_the_scalar_keras_update_bit_for_bit() {
    // Every ISA; lengths across the 4-, 8- and 16-lane vectors and the 8192-float thread
    // chunks; several steps, so the velocities are non-trivial.
    for (p, momentum) in kinds(1e-2, 0.9) {
        for len in [1usize, 7, 8, 9, 17, 35, 8192 + 13] {
            let (w, m) = (fill(1, len), fill(2, len));
            let grads: Vec<_> = (1..=4u64).map(|t| fill(10 + t, len)).collect();
            check_steps(&p, &w, momentum.then_some(&m[..]), &grads, "normal values");
        }
    }
}

#[test]
fn sgd_flushes_subnormals_as_tensorflow_does_on_every_isa() {
    // Tiny and subnormal gradients (their products with the learning rate flush), velocities
    // about the smallest normal that decay into the subnormal range under zero gradients (a
    // unit that stopped receiving gradient), tiny weights; and the constants where they
    // force the careful path.
    let len = 8192 + 37;
    let w: Vec<f32> = fill(1, len).iter().enumerate().map(|(i, &x)| if i % 3 == 0 { x * 1e-39 } else { x }).collect();
    let m = tiny(4, len, (-46.0, -30.0));
    let grads: Vec<Vec<f32>> = (0..4u64).map(|k| tiny(10 + k, len, (-46.0, -15.0))).collect();
    let mut dead = vec![vec![0.0f32; len]; 6];
    dead.push(fill(20, len));
    let zeros = vec![0.0f32; len];
    let mut params = vec![];
    for (lr, mu) in [
        (1e-2, 0.9),
        // A learning rate decayed to zero, and a subnormal one.
        (0.0, 0.9),
        (1e-39, 0.9),
        // Momentum 0 with a velocity, a tiny momentum, and momentum 1.
        (1e-2, 0.0),
        (1e-2, 1e-30),
        (1e-2, 1.0),
    ] {
        params.extend(kinds(lr, mu));
    }
    for (p, momentum) in params {
        let m = momentum.then_some(&m[..]);
        check_steps(&p, &w, m, &grads, "tiny values");
        check_steps(&p, &w, m, &dead, "zero gradients on decaying velocities");
        check_steps(&p, &w, momentum.then_some(&zeros[..]), &grads, "tiny gradients from zero velocities");
    }
}

/// `n` values a few ulps either side of `center` (both signs).
fn around(center: f32, n: usize) -> Vec<f32> {
    let b = center.to_bits();
    (0..n).map(|i| f32::from_bits(b - 3 + (i % 7) as u32) * if i % 2 == 0 { 1.0 } else { -1.0 }).collect()
}

#[test]
fn sgd_matches_tensorflow_at_the_edges_of_its_plain_path() {
    // Every bound of the plain path and of its constants, with values just inside and just
    // outside it mixed into the same vectors and alone, so both paths run near each bound.
    let n = 70;
    let p2 = |e: i32| 2f32.powi(e);
    let normal = fill(3, n);
    for (lr, mu) in [(3e-3, 0.9), (p2(-40), 0.9), (3e-3, p2(-20)), (p2(-40), p2(-20))] {
        for (p, momentum) in kinds(lr, mu) {
            // (what, gradients, velocities, weights)
            let cases = [
                ("g near 2^-60", around(p2(-60), n), normal.clone(), normal.clone()),
                ("m near 2^-80", normal.clone(), around(p2(-80), n), normal.clone()),
                ("w near 2^-100", normal.clone(), normal.clone(), around(p2(-100), n)),
            ];
            for (what, g, m, w) in cases {
                check_steps(&p, &w, momentum.then_some(&m[..]), &[g], what);
            }
        }
    }
    // Velocities a few ulps from `g·lr / μ`, so that the new velocity cancels to a few ulps
    // of 2^-80 or to a subnormal (Nesterov's `m·μ` of it then tiny), and weights a few ulps
    // from minus the step, so that the new weight is tiny or zero.
    let (lr, mu) = (0.5f32, 0.75f32);
    let g: Vec<f32> = fill(5, n).iter().map(|x| (1.0 + x.abs()) * p2(-70)).collect();
    for (p, momentum) in kinds(lr, mu) {
        let m: Vec<f32> = g
            .iter()
            .enumerate()
            .map(|(i, &gi)| f32::from_bits(((gi * lr) / mu).to_bits() + (i % 7) as u32 - 3))
            .collect();
        let w: Vec<f32> =
            g.iter().enumerate().map(|(i, &gi)| f32::from_bits((gi * lr).to_bits() + (i % 7) as u32 - 3)).collect();
        check_steps(&p, &w, momentum.then_some(&m[..]), std::slice::from_ref(&g), "cancelling velocities and weights");
        let w: Vec<f32> = g
            .iter()
            .enumerate()
            .map(|(i, &gi)| f32::from_bits((gi * lr * p2(-40)).to_bits() + (i % 7) as u32 - 3))
            .collect();
        let tiny_g: Vec<f32> = g.iter().map(|&gi| gi * p2(-40)).collect();
        check_steps(&p, &w, momentum.then_some(&m[..]), &[tiny_g], "weights cancelling to subnormals");
    }
}

/// `v` moved by `k - 3` ulps for the `k = i mod 7`-th of its copies.
fn ulps(v: f32, i: usize) -> f32 {
    f32::from_bits((v.to_bits() as i64 + (i % 7) as i64 - 3) as u32)
}

#[test]
fn sgd_flushes_cancellations_and_rounded_up_products_as_x86_does() {
    let n = 70;
    let p2 = |e: i32| 2f32.powi(e);
    let g: Vec<f32> = fill(5, n).iter().map(|x| (1.0 + x.abs()) * p2(-60)).collect();
    // At the plain path's smallest constants, a velocity a few ulps from `g·lr/μ` cancels to
    // a few ulps of 2^-123, whose product with μ (Nesterov's `m·μ`) is tiny: subtracted from
    // `g·lr`, zero and the subnormal give one difference.
    let (lr, mu) = (p2(-40), p2(-20));
    for (p, momentum) in kinds(lr, mu).into_iter().skip(1) {
        assert!(momentum);
        let m: Vec<f32> = g.iter().enumerate().map(|(i, &gi)| ulps((gi * lr) / mu, i)).collect();
        check_steps(&p, &normal_weights(n), Some(&m), std::slice::from_ref(&g), "velocities cancelling to 2^-123");
        // Weights a few ulps from minus the new velocity where it is about 2^-110, so that
        // the new weight is tiny.
        let m: Vec<f32> =
            g.iter().enumerate().map(|(i, &gi)| ulps((gi * lr) / mu, 0) * (1.0 + p2(-10 - (i % 5) as i32))).collect();
        let mut new_m = m.clone();
        keras_sgd_scalar(&SgdParams { nesterov: false, ..p }, &mut vec![0.0; n], &g, Some(&mut new_m));
        let w: Vec<f32> = new_m.iter().enumerate().map(|(i, &v)| ulps(-v, i)).collect();
        assert!(new_m.iter().all(|v| v.abs() < p2(-100) && v.abs() > p2(-126)), "{new_m:?}");
        check_steps(&p, &w, Some(&m), std::slice::from_ref(&g), "weights cancelling the velocity to subnormals");
    }
    // Products whose exact value lies just below the smallest normal, some of which IEEE
    // rounds up to it and x86 flushes: `g·lr` for each kind (from zero weights and
    // velocities, which keep the product: any larger term would absorb it), `m·μ` with
    // momentum (zero gradients and weights).
    let mut hits = 0;
    let zeros = vec![0.0f32; n];
    for c in [0.75f32, 0.3, 0.9, 0.55] {
        let near: Vec<f32> = (0..n).map(|i| ulps(f32::MIN_POSITIVE / c, i * 3 % 7) * [1.0, -1.0][i % 2]).collect();
        hits += near.iter().filter(|&&x| ftz_window(f64::from(x) * f64::from(c)).1).count();
        for (p, momentum) in kinds(c, c) {
            check_steps(&p, &zeros, momentum.then_some(&zeros[..]), std::slice::from_ref(&near), "g·lr near 2^-126");
            if momentum {
                check_steps(&p, &zeros, Some(&near), std::slice::from_ref(&zeros), "m·μ near 2^-126");
            }
        }
    }
    assert!(hits > 0, "no product fell in the window where x86 and IEEE differ");
}

#[test]
fn sgd_takes_the_careful_path_just_beyond_its_bounds() {
    // Every lane of a vector a little beyond one bound of the plain path (the others zero),
    // where IEEE arithmetic would make a subnormal: a plain path with a looser bound fails.
    let n = 67;
    let p2 = |e: i32| 2f32.powi(e);
    let zeros = vec![0.0f32; n];
    let at = |e: i32| -> Vec<f32> { fill(11, n).iter().map(|x| (1.0 + x.abs()) * p2(e)).collect() };
    for (what, lr, mu, g, m) in [
        ("g below its bound", p2(-40), p2(-20), at(-95), zeros.clone()),
        ("m below its bound", p2(-40), p2(-20), zeros.clone(), at(-108)),
        ("lr below its bound", p2(-75), 0.5, at(-58), zeros.clone()),
        ("μ below its bound", 0.5, p2(-50), zeros.clone(), at(-78)),
    ] {
        for (p, momentum) in kinds(lr, mu) {
            check_steps(&p, &zeros, momentum.then_some(&m[..]), std::slice::from_ref(&g), what);
        }
    }
}

/// Weights of ordinary size.
fn normal_weights(n: usize) -> Vec<f32> {
    fill(9, n)
}

#[test]
fn sgd_matches_tensorflow_over_every_magnitude() {
    // Gradients, velocities and weights of magnitude 2^e for e across the subnormal,
    // tiny-normal and ordinary ranges, mixed in every vector, at constants on either side of
    // the plain path's bounds.
    let len = 4099;
    let spread = |seed: u64| -> Vec<f32> {
        fill(seed, len)
            .iter()
            .zip(fill(seed + 500, len))
            .map(|(&u, s)| 2f32.powf(-135.0 + (u + 1.0) / 2.0 * 140.0).copysign(s))
            .collect()
    };
    let (w, m) = (spread(1), spread(2));
    let grads: Vec<Vec<f32>> = (0..3u64).map(|k| spread(10 + k)).collect();
    for (lr, mu) in [(1e-2, 0.9), (2f32.powi(-40), 2f32.powi(-20)), (2f32.powi(-41), 0.5), (1.0, 2f32.powi(-21))] {
        for (p, momentum) in kinds(lr, mu) {
            check_steps(&p, &w, momentum.then_some(&m[..]), &grads, "every magnitude");
        }
    }
}

#[test]
fn sgd_on_a_gradient_in_parts_is_the_sum_then_the_step() {
    for isa in Isa::available() {
        let ctx = Ctx::for_isa(isa);
        for (p, momentum) in kinds(1e-2, 0.9) {
            for (len, parts) in [(1, 2), (17, 1), (40, 4), (20_003, 3), (8_192 * 2 + 5, 2)] {
                let mut w = fill(1, len);
                // Every fifth weight tiny, so some vectors take the careful path.
                w.iter_mut().step_by(5).for_each(|x| *x *= 1e-39);
                let m = fill(3, len);
                let grads: Vec<Vec<f32>> = (0..=parts as u64)
                    .map(|k| if k == 2 { tiny(k, len, (-45.0, -36.0)) } else { fill(10 + k, len) })
                    .collect();
                let (more, first) = (grads[1..].iter().map(|g| &g[..]).collect::<Vec<_>>(), &grads[0]);
                let (mut w1, mut m1, mut sum) = (w.clone(), m.clone(), first.clone());
                accumulate_in_order(&ctx, &mut sum, &more).unwrap();
                sgd_update(&ctx, &p, &mut w1, &sum, momentum.then_some(&mut m1[..])).unwrap();
                let (mut w2, mut m2, mut g2) = (w, m, first.clone());
                sgd_update_summed(&ctx, &p, &mut w2, &mut g2, &more, momentum.then_some(&mut m2[..])).unwrap();
                for (name, a, b) in [("weights", &w1, &w2), ("velocities", &m1, &m2), ("gradient", &sum, &g2)] {
                    assert_eq!(bits(a), bits(b), "{isa}: {p:?}: {name}, length {len}, {parts} more parts");
                }
            }
        }
    }
}

#[test]
fn sgd_refuses_bad_input_with_a_typed_error() {
    let ctx = Ctx::new();
    let ok = SgdParams { lr: 1e-2, momentum: 0.9, nesterov: false };
    let (mut w, mut g, mut m) = (vec![0.0f32; 4], vec![0.0f32; 4], vec![0.0f32; 4]);
    let short = [0.0f32; 3];
    let shape = |r: Result<(), Error>| matches!(r, Err(Error::ShapeMismatch { .. }));
    assert!(shape(sgd_update(&ctx, &ok, &mut w, &short, Some(&mut m))), "a short gradient");
    assert!(shape(sgd_update(&ctx, &ok, &mut w, &g, Some(&mut m[..3]))), "a short velocity");
    assert!(shape(sgd_update_summed(&ctx, &ok, &mut w, &mut g, &[&short], Some(&mut m))), "a short part");
    assert!(shape(sgd_update_summed(&ctx, &ok, &mut w, &mut g[..3], &[], Some(&mut m))), "a short summed gradient");
    let invalid = |r: Result<(), Error>| matches!(r, Err(Error::InvalidArgument(_)));
    for (what, p) in [
        ("negative momentum", SgdParams { momentum: -0.5, ..ok }),
        ("momentum over 1", SgdParams { momentum: 1.5, ..ok }),
        ("NaN momentum", SgdParams { momentum: f32::NAN, ..ok }),
    ] {
        assert!(invalid(sgd_update(&ctx, &p, &mut w, &g, Some(&mut m))), "{what}");
    }
    assert!(invalid(sgd_update(&ctx, &ok, &mut w, &g, None)), "momentum without a velocity");
    assert!(sgd_update(&ctx, &SgdParams { momentum: 0.0, ..ok }, &mut w, &g, None).is_ok(), "no momentum");
}

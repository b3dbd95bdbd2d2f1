//! The activations and their derivatives against the f64 reference: the scalar formulas
//! ([`Act::apply`], [`Act::derivative`]) and the vectorised slice kernels on every ISA this
//! CPU has (whole vectors and tails, one chunk and many).
//!
//! Tolerance: 8 ulps of the exact value (each formula is a few f32 operations on a
//! transcendental correct to an ulp or two: the platform's, or the kernels' polynomials)
//! plus 2.5e-7 absolute, for what cancels: the derivatives that subtract from 1 (`1 - y²` of
//! tanh, `y (1 - y)` of sigmoid) near saturation, computed from a `y` rounded to 6e-8, and
//! gelu's `1 + erf` for negative inputs (an erf within 6e-8 of -1).

use ember_kernels::activation::{act_backward, act_backward_to, act_forward, act_forward_inplace, Act};
use ember_kernels::{reference, Ctx, Error, Isa};
use proptest::prelude::*;

const ALL: [Act; 10] = [
    Act::Linear,
    Act::Relu,
    Act::Sigmoid,
    Act::Tanh,
    Act::Elu,
    Act::Selu,
    Act::Gelu,
    Act::Silu,
    Act::LeakyRelu,
    Act::Softplus,
];

fn close(got: f32, want: f64) -> bool {
    (f64::from(got) - want).abs() <= 8.0 * f64::from(f32::EPSILON) * want.abs() + 2.5e-7
}

/// [`close`] for a derivative at `x`, scaled by `dy`; silu's `s (1 + x (1 - s))` also cancels
/// where `s = sigmoid(x)` nears 1: `1 - s` carries the rounding of `s` (two ulps of 1 at most,
/// 2.4e-7 absolute), multiplied by `|x|` (Keras's gradient has the same form and the same
/// error; a proptest found `Silu'(16.6) · 6.375` 6.4e-6 off, past the bound without it).
fn derivative_close(a: Act, x: f32, got: f32, want: f64, dy: f32) -> bool {
    let cancels = if a == Act::Silu { 2.4e-7 * f64::from(x.abs()) } else { 0.0 };
    close(got, want) || (f64::from(got) - want).abs() <= (2.5e-7 + cancels) * f64::from(dy)
}

fn check(a: Act, x: f32) {
    let (f, d) = reference::act(a, f64::from(x));
    let y = a.apply(x);
    assert!(close(y, f), "{a:?}({x}) = {y}, exact {f}");
    if a == Act::Relu && x == 0.0 {
        return; // the kink: Ember's rule is 0 there
    }
    let dy = a.derivative(x, y);
    assert!(derivative_close(a, x, dy, d, 1.0), "{a:?}'({x}) = {dy}, exact {d}");
}

#[test]
fn a_grid_of_inputs_matches_the_reference() {
    for a in ALL {
        for i in -800..=800 {
            check(a, i as f32 / 100.0);
        }
        for x in [-30.0, -17.5, 17.5, 30.0, 1e-6, -1e-6, 0.0] {
            check(a, x);
        }
    }
}

proptest! {
    #[test]
    fn random_inputs_match_the_reference(x in -20.0f32..20.0, k in 0usize..10) {
        check(ALL[k], x);
    }
}

/// The grid, a sweep through both tails and the values near 0, for the slice kernels.
fn slice_inputs() -> Vec<f32> {
    let mut x: Vec<f32> = (-1600..=1600).map(|i| i as f32 / 100.0).collect();
    x.extend([-100.0, -88.5, -87.0, -30.0, -17.5, 17.5, 30.0, 87.0, 88.5, 100.0, 1e-6, -1e-6, 1e-30, -1e-30, 0.0]);
    x.extend((0..200).map(|i| (i as f32 - 100.0) * 1e-3));
    x
}

#[test]
fn slice_kernels_on_every_isa_match_the_reference() {
    let x = slice_inputs();
    for isa in Isa::available() {
        let ctx = Ctx::for_isa(isa);
        for a in ALL {
            let mut y = vec![0.0; x.len()];
            act_forward(&ctx, a, &x, &mut y).unwrap();
            let mut d = vec![1.0f32; x.len()];
            act_backward(&ctx, a, &x, &y, &mut d).unwrap();
            for ((&xv, &yv), &dv) in x.iter().zip(&y).zip(&d) {
                let (f, g) = reference::act(a, f64::from(xv));
                assert!(close(yv, f), "{isa:?} {a:?}({xv}) = {yv}, exact {f}");
                if !(a == Act::Relu && xv == 0.0) {
                    assert!(derivative_close(a, xv, dv, g, 1.0), "{isa:?} {a:?}'({xv}) = {dv}, exact {g}");
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn slice_kernels_scale_the_gradient(
        x in proptest::collection::vec(-25.0f32..25.0, 0..70),
        k in 0usize..10,
        isa in proptest::sample::select(Isa::available()),
    ) {
        let (a, ctx) = (ALL[k], Ctx::for_isa(isa));
        let mut y = x.clone();
        act_forward_inplace(&ctx, a, &mut y).unwrap();
        let dy: Vec<f32> = (0..x.len()).map(|i| 0.5 + i as f32 / 8.0).collect();
        let mut d = dy.clone();
        act_backward(&ctx, a, &x, &y, &mut d).unwrap();
        for i in 0..x.len() {
            let (f, g) = reference::act(a, f64::from(x[i]));
            prop_assert!(close(y[i], f), "{:?} {:?}({}) = {}, exact {}", isa, a, x[i], y[i], f);
            if !(a == Act::Relu && x[i] == 0.0) {
                let want = g * f64::from(dy[i]);
                prop_assert!(derivative_close(a, x[i], d[i], want, dy[i]),
                    "{:?} {:?}'({}) x {} = {}, exact {}", isa, a, x[i], dy[i], d[i], want);
            }
        }
    }
}

#[test]
fn in_place_out_of_place_and_chunked_agree() {
    // Longer than one parallel chunk, so the big path runs; in place equals out of place,
    // and every element equals what one short call gives for it.
    let x: Vec<f32> = (0..40_000).map(|i| (i as f32 - 20_000.0) / 1500.0).collect();
    let ctx = Ctx::new();
    for a in ALL {
        let mut y = vec![0.0; x.len()];
        act_forward(&ctx, a, &x, &mut y).unwrap();
        let mut z = x.clone();
        act_forward_inplace(&ctx, a, &mut z).unwrap();
        assert_eq!(y, z, "{a:?}");
        let dy: Vec<f32> = (0..x.len()).map(|i| 1.0 + (i % 7) as f32 / 8.0).collect();
        let mut d = dy.clone();
        act_backward(&ctx, a, &x, &y, &mut d).unwrap();
        let mut dx = vec![f32::NAN; x.len()];
        act_backward_to(&ctx, a, &x, &y, &dy, &mut dx).unwrap();
        assert_eq!(dx, d, "{a:?}: out of place vs in place");
        for i in (0..x.len()).step_by(997) {
            let mut one = [x[i]];
            act_forward_inplace(&ctx, a, &mut one).unwrap();
            assert_eq!(one[0].to_bits(), y[i].to_bits(), "{a:?}({})", x[i]);
            let mut g = [dy[i]];
            act_backward(&ctx, a, &x[i..=i], &y[i..=i], &mut g).unwrap();
            assert_eq!(g[0].to_bits(), d[i].to_bits(), "{a:?}'({})", x[i]);
        }
    }
    let mut short = vec![0.0; 3];
    assert!(matches!(act_forward(&ctx, Act::Tanh, &x, &mut short), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(act_backward(&ctx, Act::Tanh, &x[..3], &x, &mut short), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(act_backward_to(&ctx, Act::Tanh, &x, &x, &x, &mut short), Err(Error::ShapeMismatch { .. })));
}

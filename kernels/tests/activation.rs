//! The activations and their derivatives against the f64 reference.
//!
//! Tolerance: 8 ulps of the exact value (each formula is a few f32 operations on a
//! correctly rounded-to-an-ulp-or-two transcendental) plus 2.5e-7 absolute, for the
//! derivatives that subtract from 1 (`1 - y²` of tanh, `y (1 - y)` of sigmoid): near
//! saturation they cancel to a few 1e-7 computed from a `y` rounded to 6e-8.

use ember_kernels::activation::{act_backward, act_forward, act_forward_inplace, Act};
use ember_kernels::{reference, Error};
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

fn check(a: Act, x: f32) {
    let (f, d) = reference::act(a, f64::from(x));
    let y = a.apply(x);
    assert!(close(y, f), "{a:?}({x}) = {y}, exact {f}");
    if a == Act::Relu && x == 0.0 {
        return; // the kink: Ember's rule is 0 there
    }
    let dy = a.derivative(x, y);
    assert!(close(dy, d), "{a:?}'({x}) = {dy}, exact {d}");
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

#[test]
fn slices_in_place_and_out_of_place_agree() {
    let x: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) / 60.0).collect();
    for a in ALL {
        let mut y = vec![0.0; x.len()];
        act_forward(a, &x, &mut y).unwrap();
        let mut z = x.clone();
        act_forward_inplace(a, &mut z);
        assert_eq!(y, z, "{a:?}");
        let mut d = vec![1.0f32; x.len()];
        act_backward(a, &x, &y, &mut d).unwrap();
        for ((&g, &xv), &yv) in d.iter().zip(&x).zip(&y) {
            assert_eq!(g, a.derivative(xv, yv));
        }
    }
    let mut short = vec![0.0; 3];
    assert!(matches!(act_forward(Act::Tanh, &x, &mut short), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(act_backward(Act::Tanh, &x[..3], &x, &mut short), Err(Error::ShapeMismatch { .. })));
}

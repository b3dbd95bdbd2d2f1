//! The activations and their derivatives in f64, from their definitions (the optimized
//! twins are `activation::Act::{apply, derivative}`).

use crate::desc::Act;
use crate::error::{Error, Result};

/// erf in f64 (Abramowitz-Stegun 7.1.26 is too coarse): `libm`'s double `erf`.
fn erf(x: f64) -> f64 {
    libm::erf(x)
}

/// `(f(x), f'(x))` in f64.
pub fn act(a: Act, x: f64) -> (f64, f64) {
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let (scale, alpha) = (1.050_700_987_355_480_5, 1.673_263_242_354_377_3);
    match a {
        Act::Linear => (x, 1.0),
        Act::Relu => (x.max(0.0), if x > 0.0 { 1.0 } else { 0.0 }),
        Act::Sigmoid => (sig(x), sig(x) * (1.0 - sig(x))),
        Act::Tanh => (x.tanh(), 1.0 - x.tanh().powi(2)),
        Act::Elu => {
            if x > 0.0 {
                (x, 1.0)
            } else {
                (x.exp() - 1.0, x.exp())
            }
        }
        Act::Selu => {
            if x >= 0.0 {
                (scale * x, scale)
            } else {
                (scale * alpha * (x.exp() - 1.0), scale * alpha * x.exp())
            }
        }
        Act::Gelu => {
            let cdf = 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
            (x * cdf, cdf + x * pdf)
        }
        Act::Silu => (x * sig(x), sig(x) * (1.0 + x * (1.0 - sig(x)))),
        Act::LeakyRelu => {
            if x > 0.0 {
                (x, 1.0)
            } else {
                (0.2 * x, 0.2)
            }
        }
        Act::Softplus => ((1.0 + x.exp()).ln(), sig(x)),
    }
}

/// `y = f(x)` over a slice, in f64.
pub fn act_forward(a: Act, x: &[f32], y: &mut [f64]) -> Result<()> {
    if x.len() != y.len() {
        return Err(Error::ShapeMismatch { what: "output length vs input length", expected: x.len(), got: y.len() });
    }
    y.iter_mut().zip(x).for_each(|(y, &x)| *y = act(a, f64::from(x)).0);
    Ok(())
}

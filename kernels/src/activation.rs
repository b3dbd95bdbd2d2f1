//! Elementwise activations and their gradients, in Keras's formulas (Keras 3 defaults):
//!
//! | activation | `y = f(x)` | `f'(x)` |
//! |---|---|---|
//! | linear | `x` | 1 |
//! | relu | `max(x, 0)` | `x > 0` |
//! | sigmoid | `1 / (1 + e^-x)` | `y (1 - y)` |
//! | tanh | `tanh x` | `1 - y²` |
//! | elu (α = 1) | `x > 0 ? x : e^x - 1` | `x > 0 ? 1 : e^x` |
//! | selu | `λ (x > 0 ? x : α (e^x - 1))`, λ = 1.0507009873554805, α = 1.6732632423543772 | `λ (x >= 0 ? 1 : α e^x)` |
//! | gelu (exact) | `x Φ(x) = x (1 + erf(x / √2)) / 2` | `Φ(x) + x φ(x)` |
//! | silu (swish) | `x σ(x)` | `σ(x) (1 + x (1 - σ(x)))` |
//! | leaky_relu (slope 0.2) | `x > 0 ? x : 0.2 x` | `x > 0 ? 1 : 0.2` |
//! | softplus | `ln(1 + e^x)`, computed as `max(x, 0) + ln(1 + e^-|x|)` | `σ(x)` |
//!
//! At a kink the derivative is TensorFlow's choice (relu and leaky_relu: the left side; elu
//! and selu: the right side). Both passes work in place (`y` over `x`, `dx` over `dy`) and read the pre-activation
//! `x` (the gradient of gelu and silu cannot be recovered from `y`). The transcendental
//! functions are the platform's `expf`/`tanhf`/`log1pf` and `libm`'s `erff`, called per
//! element (correctly rounded to within an ulp or two, like TensorFlow's); the piecewise-
//! linear ones vectorise. Their twins in f64 are in `reference::activation`.

pub use crate::desc::Act;
use crate::error::{Error, Result};

/// SELU's scale λ = 1.0507009873554805 rounded to f32, as Keras uses it.
pub const SELU_SCALE: f32 = 1.050_701;
/// SELU's α = 1.6732632423543772 rounded to f32.
pub const SELU_ALPHA: f32 = 1.673_263_2;
/// Leaky ReLU's negative slope, Keras's default.
pub const LEAKY_SLOPE: f32 = 0.2;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Φ(x), the standard normal CDF.
fn phi_cdf(x: f32) -> f32 {
    0.5 * (1.0 + libm::erff(x * core::f32::consts::FRAC_1_SQRT_2))
}

impl Act {
    /// `f(x)`.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Act::Linear => x,
            Act::Relu => x.max(0.0),
            Act::Sigmoid => sigmoid(x),
            Act::Tanh => x.tanh(),
            Act::Elu => {
                if x > 0.0 {
                    x
                } else {
                    x.exp_m1()
                }
            }
            Act::Selu => SELU_SCALE * if x > 0.0 { x } else { SELU_ALPHA * x.exp_m1() },
            Act::Gelu => x * phi_cdf(x),
            Act::Silu => x * sigmoid(x),
            Act::LeakyRelu => {
                if x > 0.0 {
                    x
                } else {
                    LEAKY_SLOPE * x
                }
            }
            Act::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
        }
    }

    /// `f'(x)` (with `y = f(x)` where that is cheaper).
    #[inline]
    pub fn derivative(self, x: f32, y: f32) -> f32 {
        match self {
            Act::Linear => 1.0,
            Act::Relu => f32::from(u8::from(x > 0.0)),
            Act::Sigmoid => y * (1.0 - y),
            Act::Tanh => 1.0 - y * y,
            Act::Elu => {
                if x > 0.0 {
                    1.0
                } else {
                    y + 1.0
                }
            }
            // At the kink (x = 0) TensorFlow's SeluGrad takes the linear side.
            Act::Selu => {
                if x >= 0.0 {
                    SELU_SCALE
                } else {
                    y + SELU_SCALE * SELU_ALPHA
                }
            }
            Act::Gelu => {
                let pdf =
                    (-0.5 * x * x).exp() * (0.5 * core::f32::consts::FRAC_2_SQRT_PI * core::f32::consts::FRAC_1_SQRT_2);
                phi_cdf(x) + x * pdf
            }
            Act::Silu => {
                let s = sigmoid(x);
                s * (1.0 + x * (1.0 - s))
            }
            Act::LeakyRelu => {
                if x > 0.0 {
                    1.0
                } else {
                    LEAKY_SLOPE
                }
            }
            Act::Softplus => sigmoid(x),
        }
    }
}

fn same_len(what: &'static str, a: usize, b: usize) -> Result<()> {
    if a == b {
        Ok(())
    } else {
        Err(Error::ShapeMismatch { what, expected: a, got: b })
    }
}

/// `y[i] = act(x[i])` (`y` may start as a copy of `x`: the layers run it in place through
/// [`act_forward_inplace`]).
pub fn act_forward(act: Act, x: &[f32], y: &mut [f32]) -> Result<()> {
    same_len("output length vs input length", x.len(), y.len())?;
    y.iter_mut().zip(x).for_each(|(y, &x)| *y = act.apply(x));
    Ok(())
}

/// `v[i] = act(v[i])`.
pub fn act_forward_inplace(act: Act, v: &mut [f32]) {
    v.iter_mut().for_each(|v| *v = act.apply(*v));
}

/// `dy[i] *= act'(x[i])` in place, `x` the pre-activation and `y = act(x)`.
pub fn act_backward(act: Act, x: &[f32], y: &[f32], dy: &mut [f32]) -> Result<()> {
    same_len("pre-activation length vs gradient length", dy.len(), x.len())?;
    same_len("activation length vs gradient length", dy.len(), y.len())?;
    dy.iter_mut().zip(x.iter().zip(y)).for_each(|(d, (&x, &y))| *d *= act.derivative(x, y));
    Ok(())
}

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
//! and selu: the right side). Both passes work in place (`y` over `x`, `dx` over `dy`) and
//! read the pre-activation `x` (the gradient of gelu and silu cannot be recovered from `y`).
//!
//! The slice kernels ([`act_forward`], [`act_forward_inplace`], [`act_backward`]) are
//! vectorised for every ISA, the transcendental functions as polynomials (`simd.rs`), split
//! across threads in fixed chunks (elementwise, so the result never depends on the thread
//! count). [`Act::apply`] and [`Act::derivative`] are the scalar formulas on the platform's
//! `expf`/`tanhf`/`log1pf` and `libm`'s `erff`, for one value at a time. Both are within a
//! few ulps of the exact value; their twins in f64 are in `reference::activation`.

mod simd;

pub use crate::desc::Act;
use crate::error::{Error, Result};
use crate::Ctx;
use rayon::prelude::*;

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

/// Floats per parallel chunk: each chunk is one task for the thread pool.
const CHUNK: usize = 16 * 1024;

/// `y[i] = act(x[i])`.
pub fn act_forward(ctx: &Ctx, act: Act, x: &[f32], y: &mut [f32]) -> Result<()> {
    same_len("output length vs input length", x.len(), y.len())?;
    y.copy_from_slice(x);
    act_forward_inplace(ctx, act, y)
}

/// `v[i] = act(v[i])`.
pub fn act_forward_inplace(ctx: &Ctx, act: Act, v: &mut [f32]) -> Result<()> {
    let isa = ctx.isa.check()?;
    if v.len() <= CHUNK {
        // SAFETY: isa was checked against this CPU.
        unsafe { simd::forward(isa, act, v) };
    } else {
        // SAFETY: isa was checked against this CPU.
        v.par_chunks_mut(CHUNK).for_each(|c| unsafe { simd::forward(isa, act, c) });
    }
    Ok(())
}

/// `dy[i] *= act'(x[i])` in place, `x` the pre-activation and `y = act(x)`.
pub fn act_backward(ctx: &Ctx, act: Act, x: &[f32], y: &[f32], dy: &mut [f32]) -> Result<()> {
    same_len("pre-activation length vs gradient length", dy.len(), x.len())?;
    same_len("activation length vs gradient length", dy.len(), y.len())?;
    let isa = ctx.isa.check()?;
    if dy.len() <= CHUNK {
        // SAFETY: isa was checked; x and y have dy's length (checked above).
        unsafe { simd::backward(isa, act, x, y, dy) };
    } else {
        dy.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK).zip(y.par_chunks(CHUNK))).for_each(|(d, (x, y))| {
            // SAFETY: isa was checked; equal-length slices split at the same points.
            unsafe { simd::backward(isa, act, x, y, d) }
        });
    }
    Ok(())
}

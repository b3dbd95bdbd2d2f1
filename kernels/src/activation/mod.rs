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
//! The slice kernels ([`act_forward`], [`act_forward_inplace`], [`act_backward`],
//! [`act_backward_to`]) are
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

/// `y[i] = act(x[i])`, one pass.
pub fn act_forward(ctx: &Ctx, act: Act, x: &[f32], y: &mut [f32]) -> Result<()> {
    same_len("output length vs input length", x.len(), y.len())?;
    let isa = ctx.isa.check()?;
    if y.len() <= CHUNK {
        // SAFETY: isa was checked; x and y are distinct slices of the same length.
        unsafe { simd::forward(isa, act, x.as_ptr(), y.as_mut_ptr(), y.len()) };
    } else {
        y.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(y, x)| {
            // SAFETY: as above, chunk by chunk.
            unsafe { simd::forward(isa, act, x.as_ptr(), y.as_mut_ptr(), y.len()) }
        });
    }
    Ok(())
}

/// `v[i] = act(v[i])`.
pub fn act_forward_inplace(ctx: &Ctx, act: Act, v: &mut [f32]) -> Result<()> {
    let isa = ctx.isa.check()?;
    let run = |c: &mut [f32]| {
        let p = c.as_mut_ptr();
        // SAFETY: isa was checked; in place over the chunk's floats.
        unsafe { simd::forward(isa, act, p, p, c.len()) }
    };
    if v.len() <= CHUNK {
        run(v);
    } else {
        v.par_chunks_mut(CHUNK).for_each(run);
    }
    Ok(())
}

/// `dy[i] *= act'(x[i])` in place, `x` the pre-activation and `y = act(x)`.
pub fn act_backward(ctx: &Ctx, act: Act, x: &[f32], y: &[f32], dy: &mut [f32]) -> Result<()> {
    same_len("pre-activation length vs gradient length", dy.len(), x.len())?;
    same_len("activation length vs gradient length", dy.len(), y.len())?;
    let isa = ctx.isa.check()?;
    let run = |(d, (x, y)): (&mut [f32], (&[f32], &[f32]))| {
        let p = d.as_mut_ptr();
        // SAFETY: isa was checked; x, y and d have the same length; in place on d.
        unsafe { simd::backward(isa, act, x.as_ptr(), y.as_ptr(), p, p, d.len()) }
    };
    if dy.len() <= CHUNK {
        run((dy, (x, y)));
    } else {
        dy.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK).zip(y.par_chunks(CHUNK))).for_each(run);
    }
    Ok(())
}

/// `dx[i] = dy[i] act'(x[i])`, one pass (`x` the pre-activation, `y = act(x)`).
pub fn act_backward_to(ctx: &Ctx, act: Act, x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32]) -> Result<()> {
    same_len("pre-activation length vs gradient length", dy.len(), x.len())?;
    same_len("activation length vs gradient length", dy.len(), y.len())?;
    same_len("input gradient length vs gradient length", dy.len(), dx.len())?;
    let isa = ctx.isa.check()?;
    type Chunks<'a> = (&'a mut [f32], (&'a [f32], (&'a [f32], &'a [f32])));
    let run = |(o, (d, (x, y))): Chunks<'_>| {
        // SAFETY: isa was checked; the four chunks have the same length; o is its own slice.
        unsafe { simd::backward(isa, act, x.as_ptr(), y.as_ptr(), d.as_ptr(), o.as_mut_ptr(), o.len()) }
    };
    if dx.len() <= CHUNK {
        run((dx, (dy, (x, y))));
    } else {
        dx.par_chunks_mut(CHUNK)
            .zip(dy.par_chunks(CHUNK).zip(x.par_chunks(CHUNK).zip(y.par_chunks(CHUNK))))
            .for_each(run);
    }
    Ok(())
}

//! 2-D convolution, NHWC activations and HWIO filters (TensorFlow/Keras layouts), in all
//! three passes a CNN trains with: forward (with fused bias + ReLU), backward-data and
//! backward-filter (with the bias gradient).
//!
//! ```
//! use ember_kernels::conv::{conv2d_forward, Conv2d, ConvOptions, Padding};
//! let c = Conv2d::simple([1, 4, 4, 1], [3, 3, 1, 2], Padding::Valid)?;
//! let x = vec![1.0; 16];
//! let w = vec![0.5; 18];
//! let mut y = vec![0.0; c.output_shape().iter().product()];
//! conv2d_forward(&c, &x, &w, Some(&[0.0, -10.0]), true, &mut y, &ConvOptions::default())?;
//! assert_eq!(y, [4.5, 0.0, 4.5, 0.0, 4.5, 0.0, 4.5, 0.0]);
//! # Ok::<(), ember_kernels::Error>(())
//! ```

mod desc;
mod direct;
mod im2col;
mod pad;

pub use desc::{Conv2d, Padding};

use crate::arch::{default_isa, Isa};
use crate::error::Result;

/// Which algorithm computes a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ConvAlgo {
    /// Chosen from the shape (deterministically).
    #[default]
    Auto,
    /// Register tiles over output pixels x output channels reading the input in place.
    Direct,
    /// Lowering onto the GEMM (im2col); a 1x1 stride-1 convolution is a plain GEMM.
    Im2col,
}

/// How to run a convolution: algorithm and instruction set.
#[derive(Debug, Clone, Copy)]
pub struct ConvOptions {
    /// The algorithm.
    pub algo: ConvAlgo,
    /// The instruction set (checked against the CPU on every call).
    pub isa: Isa,
}

impl Default for ConvOptions {
    fn default() -> Self {
        ConvOptions { algo: ConvAlgo::Auto, isa: default_isa() }
    }
}

impl ConvOptions {
    /// Options with `algo` on the default ISA.
    pub fn with_algo(algo: ConvAlgo) -> Self {
        ConvOptions { algo, ..Self::default() }
    }
}

/// Forward: `y = relu?(conv(x, w) + bias)`. `x` is `[n,h,w,cin]`, `w` `[kh,kw,cin,cout]`,
/// `bias` `[cout]`, `y` `[n,ho,wo,cout]` (overwritten).
pub fn conv2d_forward(
    c: &Conv2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
    opts: &ConvOptions,
) -> Result<()> {
    opts.isa.check()?;
    c.check(x.len(), w.len(), y.len())?;
    if let Some(b) = bias {
        Conv2d::check_len("bias length vs cout", b.len(), [c.cout, 1, 1, 1])?;
    }
    match opts.algo {
        ConvAlgo::Direct => Ok(direct::forward(opts.isa, c, x, w, bias, relu, y)),
        ConvAlgo::Auto | ConvAlgo::Im2col => im2col::forward(opts.isa, c, x, w, bias, relu, y),
    }
}

/// Backward-data: the gradient `dx` (`[n,h,w,cin]`, overwritten) of the input, from the
/// output gradient `dy` (`[n,ho,wo,cout]`) and the filter.
pub fn conv2d_backward_data(c: &Conv2d, dy: &[f32], w: &[f32], dx: &mut [f32], opts: &ConvOptions) -> Result<()> {
    opts.isa.check()?;
    c.check(dx.len(), w.len(), dy.len())?;
    match opts.algo {
        ConvAlgo::Direct => Ok(direct::backward_data(opts.isa, c, dy, w, dx)),
        ConvAlgo::Auto | ConvAlgo::Im2col => im2col::backward_data(opts.isa, c, dy, w, dx),
    }
}

/// Backward-filter: the filter gradient `dw` (`[kh,kw,cin,cout]`, overwritten) from the
/// input `x` and output gradient `dy`; and the bias gradient `db` (`[cout]`) if given.
pub fn conv2d_backward_filter(
    c: &Conv2d,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    opts: &ConvOptions,
) -> Result<()> {
    opts.isa.check()?;
    c.check(x.len(), dw.len(), dy.len())?;
    if let Some(db) = db {
        crate::elementwise::bias_grad(dy, c.cout, db)?;
    }
    match opts.algo {
        ConvAlgo::Direct => Ok(direct::backward_filter(opts.isa, c, x, dy, dw)),
        ConvAlgo::Auto | ConvAlgo::Im2col => im2col::backward_filter(opts.isa, c, x, dy, dw),
    }
}

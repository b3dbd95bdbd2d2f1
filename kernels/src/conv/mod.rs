//! 2-D convolution, NHWC activations and HWIO filters (TensorFlow/Keras layouts), in all
//! three passes a CNN trains with: forward (with fused bias + ReLU), backward-data and
//! backward-filter (with the bias gradient).
//!
//! Algorithms ([`ConvAlgo`]):
//! - **Direct**: register tiles of output pixels x output channels read the (padded) input
//!   in place; backward-data runs the same kernels on the transposed problem; every pass,
//!   any geometry.
//! - **im2col**: patches lowered onto the GEMM (a 1x1 stride-1 convolution is the GEMM
//!   itself); every pass, any geometry.
//! - **Winograd** F(2x2, 3x3) and F(4x4, 3x3): 3x3, stride 1, dilation 1; every pass;
//!   2.25x and 4x fewer multiplications than direct. Backward-data is the forward of the
//!   transposed problem, or the adjoint of the forward's own tiles where the output has
//!   fewer tiles than the input ("valid" padding); ahead of a 2x2/2 max pooling every pass
//!   tiles only the pooling windows, and the backward passes build each tile's gradient
//!   from the pooled gradient and argmax ([`conv2d_backward_data_pooled`]).
//! - **Auto** picks by a fixed shape rule; **Measured** times the candidates once per shape.
//!
//! Accuracy against the f64 reference (benchmark shapes, inputs in [-1, 1), Glorot filters;
//! `cargo run --release -p ember-benches --bin winograd_error`; full table in BENCHMARKS.md):
//!
//! | algorithm | RMS error / RMS output | worst error, in ε · max Σ\|terms\| |
//! |---|---:|---:|
//! | direct | 3.0e-7 .. 8.3e-7 | 2.4 |
//! | im2col | 1.6e-7 .. 3.9e-7 | 1.6 |
//! | Winograd F(2x2, 3x3) | 2.0e-7 .. 5.0e-7 | 1.0 |
//! | Winograd F(4x4, 3x3) | 1.1e-6 .. 3.4e-6 | 25.2 |
//!
//! (Forward and backward-data. Backward-filter: direct 1.3-1.8, F(2x2) 0.3-1.1, F(4x4)
//! 2.6-9.3 in the last column; RMS 2.4e-7 .. 1.4e-6, 1.8e-7 .. 4.9e-7 and 9.1e-7 .. 2.2e-6.)
//!
//! F(2x2) is as accurate as direct; F(4x4) is about 5x less accurate (its transforms
//! multiply by up to 8), still ~1e-6 relative, far below what training notices.
//!
//! ```
//! use ember_kernels::conv::{conv2d_forward, Conv2d, Padding};
//! use ember_kernels::Ctx;
//! let c = Conv2d::simple([1, 4, 4, 1], [3, 3, 1, 2], Padding::Valid)?;
//! let x = vec![1.0; 16];
//! let w = vec![0.5; 18];
//! let mut y = vec![0.0; c.output_shape().iter().product()];
//! conv2d_forward(&Ctx::new(), &c, &x, &w, Some(&[0.0, -10.0]), true, &mut y)?;
//! assert_eq!(y, [4.5, 0.0, 4.5, 0.0, 4.5, 0.0, 4.5, 0.0]);
//! # Ok::<(), ember_kernels::Error>(())
//! ```

mod auto;
mod autotune;
mod depthwise;

mod direct;
mod fused;
mod fused_c1;
mod fused_wgrad_chunked;
mod im2col;
mod pad;
mod pooled;
mod unpool;
mod winograd;

pub use crate::desc::{Conv2d, Padding};
pub use autotune::{clear_measurements, measured_algo};
pub use depthwise::{depthwise_backward_data, depthwise_backward_filter, depthwise_forward, Depthwise2d, FILTER_BLOCK};
pub use direct::kernel_name as direct_kernel_name;
pub use fused::{conv_relu_maxpool_backward_filter, conv_relu_maxpool_forward, ConvReluPool};
pub use pooled::{conv2d_backward_data_pooled, conv2d_backward_filter_pooled};
pub use unpool::unpool_relu_grad;

use crate::arch::Isa;
use crate::elementwise::add_assign;
use crate::error::{Error, Result};
use crate::scratch::{with_scratch, Slot};
use crate::Ctx;

/// Which algorithm computes a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ConvAlgo {
    /// Chosen from the shape by a fixed rule ([`ConvAlgo::resolve`]): the same choice on
    /// every run.
    #[default]
    Auto,
    /// Opt-in autotuning: the first call for a shape, pass, ISA and thread count times every
    /// applicable algorithm and caches the fastest for the process ([`measured_algo`]).
    Measured,
    /// Register tiles over output pixels x output channels reading the input in place.
    Direct,
    /// Lowering onto the GEMM (im2col); a 1x1 stride-1 convolution is a plain GEMM.
    Im2col,
    /// Winograd F(2x2, 3x3): 3x3 filters, stride 1, dilation 1; every pass.
    Winograd2x3,
    /// Winograd F(4x4, 3x3): 4x fewer multiplications than direct, about 5x less accurate
    /// (the error table in the module docs); 3x3 filters, stride 1, dilation 1; every pass.
    Winograd4x3,
}

/// The three passes of a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pass {
    /// `y = conv(x, w)`.
    Forward,
    /// `dx` from `dy` and `w`.
    BackwardData,
    /// `dw` (and `db`) from `x` and `dy`.
    BackwardFilter,
}

impl ConvAlgo {
    /// The concrete algorithms, in the order [`ConvAlgo::Measured`] times them (the first of
    /// equally fast ones wins).
    pub const CONCRETE: [ConvAlgo; 4] =
        [ConvAlgo::Winograd4x3, ConvAlgo::Winograd2x3, ConvAlgo::Direct, ConvAlgo::Im2col];

    /// Whether this algorithm can compute `pass` of `c`. Direct and im2col compute every
    /// convolution; Winograd needs a 3x3 filter, stride 1 and dilation 1 (for each pass).
    /// `Auto` always applies.
    pub fn supports(self, c: &Conv2d, pass: Pass) -> bool {
        // Every algorithm computes every pass of the convolutions it applies to; the pass
        // stays in the signature for algorithms that will not.
        let _ = pass;
        match self {
            ConvAlgo::Winograd2x3 | ConvAlgo::Winograd4x3 => winograd::applies(c),
            _ => true,
        }
    }

    /// The concrete algorithm this runs for `pass` of `c` on `isa`: itself, or for `Auto` a
    /// fixed rule from the shape tuned on the benchmarks (see BENCHMARKS.md), or for
    /// `Measured` the cached measurement (`Auto`'s rule before the first call).
    pub fn resolve(self, c: &Conv2d, pass: Pass, isa: Isa) -> ConvAlgo {
        match self {
            ConvAlgo::Auto => auto::choose(c, pass, isa),
            ConvAlgo::Measured => measured_algo(c, pass, isa).unwrap_or_else(|| auto::choose(c, pass, isa)),
            concrete => concrete,
        }
    }

    /// The concrete algorithm for a call: `Measured` measures on its first call.
    fn select(self, c: &Conv2d, pass: Pass, isa: Isa, run: impl FnMut(ConvAlgo) -> Result<()>) -> Result<ConvAlgo> {
        match self {
            ConvAlgo::Measured => autotune::pick(c, pass, isa, run),
            other => {
                let algo = other.resolve(c, pass, isa);
                algo.check(c, pass)?;
                Ok(algo)
            }
        }
    }

    fn check(self, c: &Conv2d, pass: Pass) -> Result<()> {
        if self.supports(c, pass) {
            return Ok(());
        }
        Err(Error::InvalidArgument(format!(
            "{self:?} does not compute {pass:?} of this convolution (it needs a 3x3 filter, stride 1 \
             and dilation 1): kernel {}x{}, stride {}x{}, dilation {}x{}",
            c.kh, c.kw, c.sh, c.sw, c.dh, c.dw
        )))
    }
}

/// Forward: `y = relu?(conv(x, w) + bias)`. `x` is `[n,h,w,cin]`, `w` `[kh,kw,cin,cout]`,
/// `bias` `[cout]`, `y` `[n,ho,wo,cout]` (overwritten).
pub fn conv2d_forward(
    ctx: &Ctx,
    c: &Conv2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) -> Result<()> {
    let isa = ctx.isa.check()?;
    c.check(x.len(), w.len(), y.len())?;
    if let Some(b) = bias {
        Conv2d::check_len("bias length vs cout", b.len(), [c.cout, 1, 1, 1])?;
    }
    let mut run = |algo| match algo {
        ConvAlgo::Direct => direct::forward(isa, c, x, w, bias, relu, y),
        ConvAlgo::Winograd2x3 => winograd::forward::<2>(isa, c, x, (w, ctx.weights_version), bias, relu, y),
        ConvAlgo::Winograd4x3 => winograd::forward::<4>(isa, c, x, (w, ctx.weights_version), bias, relu, y),
        _ => im2col::forward(isa, c, x, w, bias, relu, y),
    };
    let algo = ctx.algo.select(c, Pass::Forward, isa, &mut run)?;
    run(algo)
}

/// The top-left `(rows, columns)` of each image's output outside which a backward pass's
/// `dy` is zero: the whole output, except for a convolution that feeds only a pooling that
/// drops an odd last row or column ([`conv2d_backward_data_pooled`]). Winograd tiles only
/// the extent; the other algorithms read the zeros.
pub(crate) type Extent = (usize, usize);

/// The output gradient a backward pass reads.
#[derive(Clone, Copy)]
pub(crate) enum Gradient<'a> {
    /// `[n, ho, wo, cout]`, zero outside the pass's [`Extent`].
    Dense(&'a [f32]),
    /// The pooled output, its gradient and argmax of a convolution feeding only a fused
    /// ReLU + 2x2/2 max pooling: the dense gradient is [`unpool_relu_grad`]'s. Winograd's
    /// tile transform reads it as it reads the dense one; the other algorithms get it
    /// unpooled first.
    Pooled(unpool::PooledGrad<'a>),
}

impl Gradient<'_> {
    /// Runs `f` on the dense gradient: this one, or the pooled one unpooled into scratch.
    fn dense<R>(self, f: impl FnOnce(&[f32]) -> R) -> R {
        match self {
            Gradient::Dense(dy) => f(dy),
            Gradient::Pooled(p) => with_scratch(Slot::Unpooled, p.dense_len(), |d| {
                p.unpool(d);
                f(d)
            }),
        }
    }

    /// The bias gradient `db` (`[cout]`, overwritten): the dense gradient's column sums.
    fn bias_grad(self, cout: usize, db: &mut [f32]) -> Result<()> {
        match self {
            Gradient::Dense(dy) => crate::elementwise::bias_grad(dy, cout, db),
            // Only the pooled gradients that pass the ReLU reach the convolution output.
            Gradient::Pooled(p) => with_scratch(Slot::Unpooled, p.dy.len(), |g| {
                p.masked(g);
                crate::elementwise::bias_grad(g, cout, db)
            }),
        }
    }
}

/// Backward-data: the gradient `dx` (`[n,h,w,cin]`) of the input, from the output gradient
/// `dy` (`[n,ho,wo,cout]`) and the filter; overwritten, or with `accumulate` added to what
/// `dx` holds (an input that feeds several layers: its gradients sum in place, without a
/// buffer and a pass of their own). Winograd and direct add as they store their tiles;
/// im2col computes the gradient whole, then adds it.
pub fn conv2d_backward_data(
    ctx: &Ctx,
    c: &Conv2d,
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
    accumulate: bool,
) -> Result<()> {
    let isa = ctx.isa.check()?;
    c.check(dx.len(), w.len(), dy.len())?;
    backward_data_in(ctx, isa, c, Gradient::Dense(dy), w, dx, (c.ho, c.wo), accumulate)
}

/// [`conv2d_backward_data`] after the checks, with `dy` zero outside `extent`.
#[allow(clippy::too_many_arguments)]
fn backward_data_in(
    ctx: &Ctx,
    isa: Isa,
    c: &Conv2d,
    dy: Gradient,
    w: &[f32],
    dx: &mut [f32],
    extent: Extent,
    accumulate: bool,
) -> Result<()> {
    // im2col's GEMM writes each pixel's sum whole.
    let im2col = |dx: &mut [f32]| dy.dense(|dy| im2col::backward_data(isa, c, dy, w, dx));
    let run = |algo, dx: &mut [f32], accumulate: bool| match algo {
        ConvAlgo::Winograd2x3 => {
            winograd::backward_data::<2>(isa, c, dy, (w, ctx.weights_version), dx, extent, accumulate)
        }
        ConvAlgo::Winograd4x3 => {
            winograd::backward_data::<4>(isa, c, dy, (w, ctx.weights_version), dx, extent, accumulate)
        }
        ConvAlgo::Direct => dy.dense(|dy| direct::backward_data(isa, c, dy, w, dx, accumulate)),
        _ if !accumulate => im2col(dx),
        _ => with_scratch(Slot::Partial, dx.len(), |part| {
            im2col(part)?;
            add_assign(isa, dx, part);
            Ok(())
        }),
    };
    let algo = if accumulate {
        // A measured choice times each algorithm twice: on scratch, not on the sum in dx.
        ctx.algo.select(c, Pass::BackwardData, isa, |a| with_scratch(Slot::Partial, dx.len(), |t| run(a, t, false)))?
    } else {
        ctx.algo.select(c, Pass::BackwardData, isa, |a| run(a, dx, false))?
    };
    run(algo, dx, accumulate)
}

/// Backward-filter: the filter gradient `dw` (`[kh,kw,cin,cout]`) from the input `x` and
/// output gradient `dy`; and the bias gradient `db` (`[cout]`) if given. Both are
/// overwritten, or with `accumulate` added to what they hold (a batch run in parts): the
/// part's gradient is computed whole, then added, so the sum is the same for every
/// algorithm.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_filter(
    ctx: &Ctx,
    c: &Conv2d,
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    accumulate: bool,
) -> Result<()> {
    let isa = ctx.isa.check()?;
    c.check(x.len(), dw.len(), dy.len())?;
    if let Some(db) = &db {
        Conv2d::check_len("bias gradient length vs cout", db.len(), [c.cout, 1, 1, 1])?;
    }
    backward_filter_in(ctx, isa, c, x, Gradient::Dense(dy), dw, db, accumulate, (c.ho, c.wo))
}

/// [`conv2d_backward_filter`] after the checks, with `dy` zero outside `extent`.
#[allow(clippy::too_many_arguments)]
fn backward_filter_in(
    ctx: &Ctx,
    isa: Isa,
    c: &Conv2d,
    x: &[f32],
    dy: Gradient,
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    accumulate: bool,
    extent: Extent,
) -> Result<()> {
    let run = |algo, dw: &mut [f32]| match algo {
        ConvAlgo::Direct => dy.dense(|dy| direct::backward_filter(isa, c, x, dy, dw)),
        ConvAlgo::Winograd2x3 => winograd::backward_filter::<2>(isa, c, x, dy, dw, extent),
        ConvAlgo::Winograd4x3 => winograd::backward_filter::<4>(isa, c, x, dy, dw, extent),
        _ => dy.dense(|dy| im2col::backward_filter(isa, c, x, dy, dw)),
    };
    if !accumulate {
        let algo = ctx.algo.select(c, Pass::BackwardFilter, isa, |a| run(a, dw))?;
        if let Some(db) = db {
            dy.bias_grad(c.cout, db)?;
        }
        return run(algo, dw);
    }
    let (wl, bl) = (dw.len(), db.as_ref().map_or(0, |b| b.len()));
    with_scratch(Slot::Partial, wl + bl, |part| {
        let (pw, pb) = part.split_at_mut(wl);
        let algo = ctx.algo.select(c, Pass::BackwardFilter, isa, |a| run(a, pw))?;
        run(algo, pw)?;
        add_assign(isa, dw, pw);
        if let Some(db) = db {
            dy.bias_grad(c.cout, pb)?;
            db.iter_mut().zip(pb.iter()).for_each(|(d, p)| *d += p);
        }
        Ok(())
    })
}

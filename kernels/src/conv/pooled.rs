//! The backward passes of a convolution whose output feeds only a fused ReLU + 2x2/2 max
//! pooling, from the pooled output, its gradient and argmax (the fused forward's): the plain
//! passes of the dense gradient that [`super::unpool_relu_grad`] would write, without
//! writing it where the algorithm can read the pooled one. Winograd's output-gradient
//! transform builds each tile's gradient from the pooled tensors in registers, and tiles only
//! the pooling windows: the output's odd last row or column, which no window reads (its
//! gradient is zero), costs nothing (cifar's 13x13 output pooled to 6x6 needs 3x3 tiles of
//! F(4x4) instead of 4x4). The other algorithms run on the unpooled gradient.

use super::unpool::PooledGrad;
use super::{backward_data_in, backward_filter_in, Conv2d, ConvReluPool, Extent, Gradient};
use crate::error::Result;
use crate::Ctx;

/// The rows and columns of each image's convolution output that the pooling windows cover.
fn extent(cp: &ConvReluPool) -> Extent {
    let [_, hp, wp, _] = cp.output_shape();
    (2 * hp, 2 * wp)
}

/// `y`, `dy` and `argmax` as a gradient, their lengths and those of the input (or its
/// gradient, `x`) and the filter (or its gradient, `w`) checked against `cp`.
fn checked<'a>(
    cp: &'a ConvReluPool,
    (x, w): (usize, usize),
    y: &'a [f32],
    dy: &'a [f32],
    argmax: &'a [u32],
) -> Result<Gradient<'a>> {
    cp.check(x, w, y.len(), argmax.len())?;
    Conv2d::check_len("pooled gradient length vs n*(ho/2)*(wo/2)*cout", dy.len(), cp.output_shape())?;
    Ok(Gradient::Pooled(PooledGrad { cp, y, dy, argmax }))
}

/// [`super::conv2d_backward_data`] of `cp`'s convolution from its pooled output `y`, the
/// gradient `dy` of that and the `argmax` (each `[n, ho / 2, wo / 2, cout]`, as
/// [`super::conv_relu_maxpool_forward`] writes them): the input gradient `dx` (`[n, h, w,
/// cin]`, overwritten) for the dense gradient [`super::unpool_relu_grad`] defines.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_data_pooled(
    ctx: &Ctx,
    cp: &ConvReluPool,
    y: &[f32],
    dy: &[f32],
    argmax: &[u32],
    w: &[f32],
    dx: &mut [f32],
) -> Result<()> {
    let isa = ctx.isa.check()?;
    let g = checked(cp, (dx.len(), w.len()), y, dy, argmax)?;
    backward_data_in(ctx, isa, cp.conv(), g, w, dx, extent(cp), false)
}

/// [`super::conv2d_backward_filter`] of `cp`'s convolution from its input `x` and, as in
/// [`conv2d_backward_data_pooled`], its pooled output, that's gradient and the argmax.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_filter_pooled(
    ctx: &Ctx,
    cp: &ConvReluPool,
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    argmax: &[u32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    accumulate: bool,
) -> Result<()> {
    let isa = ctx.isa.check()?;
    let g = checked(cp, (x.len(), dw.len()), y, dy, argmax)?;
    let c = cp.conv();
    if let Some(db) = &db {
        Conv2d::check_len("bias gradient length vs cout", db.len(), [c.cout, 1, 1, 1])?;
    }
    backward_filter_in(ctx, isa, c, x, g, dw, db, accumulate, extent(cp))
}

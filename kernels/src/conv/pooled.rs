//! The backward passes of a convolution whose output feeds only a 2x2/2 max pooling, from
//! the dense gradient of its output ([`super::unpool_relu_grad`]'s): the plain passes, except
//! that the output's odd last row or column, which no pooling window reads (its gradient
//! is zero), is not computed over. Winograd tiles only the pooled windows: cifar's 13x13
//! output pooled to 6x6 needs 3x3 tiles of F(4x4) instead of 4x4.

use super::{backward_data_in, backward_filter_in, Conv2d, ConvReluPool, Extent};
use crate::error::Result;
use crate::Ctx;
use rayon::prelude::*;

/// The rows and columns of each image's convolution output that the pooling windows cover.
fn extent(cp: &ConvReluPool) -> Extent {
    let [_, hp, wp, _] = cp.output_shape();
    (2 * hp, 2 * wp)
}

/// Zeroes what lies outside `extent` in each image of `dconv` (`[n, ho, wo, cout]`):
/// nothing but an odd last row or column, where [`super::unpool_relu_grad`] writes zeros
/// anyway; so the passes' results are defined for any `dconv`.
fn zero_outside(c: &Conv2d, (eh, ew): Extent, dconv: &mut [f32]) {
    if (eh, ew) == (c.ho, c.wo) || dconv.is_empty() {
        return;
    }
    let row = c.wo * c.cout;
    dconv.par_chunks_mut(c.ho * row).for_each(|img| {
        for (y, r) in img.chunks_exact_mut(row).enumerate() {
            if y >= eh {
                r.fill(0.0);
            } else {
                r[ew * c.cout..].fill(0.0);
            }
        }
    });
}

/// [`super::conv2d_backward_data`] of `cp`'s convolution from the gradient `dconv` of its
/// output (`[n, ho, wo, cout]`), whose rows past `2·hp` and columns past `2·wp` (of the
/// pooled `[n, hp, wp, cout]`) are first set to zero.
pub fn conv2d_backward_data_pooled(
    ctx: &Ctx,
    cp: &ConvReluPool,
    dconv: &mut [f32],
    w: &[f32],
    dx: &mut [f32],
) -> Result<()> {
    let isa = ctx.isa.check()?;
    let c = cp.conv();
    c.check(dx.len(), w.len(), dconv.len())?;
    zero_outside(c, extent(cp), dconv);
    backward_data_in(ctx, isa, c, dconv, w, dx, extent(cp))
}

/// [`super::conv2d_backward_filter`] of `cp`'s convolution from its input `x` and the
/// gradient `dconv` of its output, whose rows past `2·hp` and columns past `2·wp` are first
/// set to zero (as [`conv2d_backward_data_pooled`]).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_filter_pooled(
    ctx: &Ctx,
    cp: &ConvReluPool,
    x: &[f32],
    dconv: &mut [f32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    accumulate: bool,
) -> Result<()> {
    let isa = ctx.isa.check()?;
    let c = cp.conv();
    c.check(x.len(), dw.len(), dconv.len())?;
    if let Some(db) = &db {
        Conv2d::check_len("bias gradient length vs cout", db.len(), [c.cout, 1, 1, 1])?;
    }
    zero_outside(c, extent(cp), dconv);
    backward_filter_in(ctx, isa, c, x, dconv, dw, db, accumulate, extent(cp))
}

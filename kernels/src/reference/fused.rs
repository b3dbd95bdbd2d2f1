//! The fused convolution + ReLU + 2x2 max pooling, composed from the naive convolution and
//! pooling references.

use crate::desc::ConvReluPool;
use crate::error::Result;

/// Forward: the reference convolution with bias and ReLU, then the reference max pooling.
pub fn conv_relu_maxpool_forward(
    cp: &ConvReluPool,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    argmax: &mut [u32],
) -> Result<()> {
    let c = cp.conv();
    let mut conv = vec![0.0; c.output_shape().iter().product()];
    super::conv2d_forward(c, x, w, bias, true, &mut conv)?;
    super::max_pool_forward(cp.pool(), &conv, y, argmax)
}

/// Backward-filter: the pooled gradient routed to each argmax where the pooled value is
/// positive (max pooling's then ReLU's backward), then the reference backward-filter.
#[allow(clippy::too_many_arguments)]
pub fn conv_relu_maxpool_backward_filter(
    cp: &ConvReluPool,
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    argmax: &[u32],
    dw: &mut [f32],
    db: Option<&mut [f32]>,
) -> Result<()> {
    let c = cp.conv();
    cp.check(x.len(), dw.len(), y.len(), argmax.len())?;
    cp.pool().check(c.output_shape().iter().product(), dy.len())?;
    let img_in = c.ho * c.wo * c.cout;
    let img_out: usize = cp.output_shape()[1..].iter().product();
    let mut dconv = vec![0.0; c.output_shape().iter().product()];
    for (o, ((&yv, &g), &a)) in y.iter().zip(dy).zip(argmax).enumerate() {
        // An argmax outside the convolution output (NO_ARGMAX included) contributes nothing.
        if yv > 0.0 && (a as usize) < img_in {
            dconv[(o / img_out) * img_in + a as usize] += g;
        }
    }
    super::conv2d_backward_filter(c, x, &dconv, dw, db)
}

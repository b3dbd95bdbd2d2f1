//! The fused convolution + ReLU + 2x2 max pooling, composed from the naive convolution and
//! pooling references.

use crate::desc::ConvReluPool;
use crate::error::Result;

/// Forward: the reference convolution with bias and ReLU, then the reference max pooling,
/// its argmax (an index in the image's convolution output) given as the winner's cell in
/// its 2x2 window (0..=3, row-major: the fused kernels' convention).
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
    super::max_pool_forward(cp.pool(), &conv, y, argmax)?;
    let (cout, wo, wp) = (c.cout, c.wo, cp.pool().wo);
    for (o, a) in argmax.iter_mut().enumerate() {
        // Pooled pixel (py, px) of its image, and the argmax's pixel (oy, ox).
        let p = o / cout;
        let (py, px) = (p / wp % cp.pool().ho, p % wp);
        let q = *a as usize / cout;
        let (oy, ox) = (q / wo, q % wo);
        *a = if *a == crate::desc::NO_ARGMAX { u32::MAX } else { ((oy - 2 * py) * 2 + (ox - 2 * px)) as u32 };
    }
    Ok(())
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
    let (cout, wo, [_, hp, wp, _]) = (c.cout, c.wo, cp.output_shape());
    let mut dconv = vec![0.0; c.output_shape().iter().product()];
    for (o, ((&yv, &g), &a)) in y.iter().zip(dy).zip(argmax).enumerate() {
        // Image n, pooled pixel (py, px), channel co; a cell above 3 names no pixel.
        let (co, p) = (o % cout, o / cout);
        let (n, py, px) = (p / (hp * wp), p / wp % hp, p % wp);
        if yv > 0.0 && a <= 3 {
            let (oy, ox) = (2 * py + a as usize / 2, 2 * px + a as usize % 2);
            dconv[((n * c.ho + oy) * wo + ox) * cout + co] += g;
        }
    }
    super::conv2d_backward_filter(c, x, &dconv, dw, db)
}

//! The dense gradient of a convolution output from the pooled gradient of its fused
//! conv+ReLU+2x2/2-max-pool step ([`super::ConvReluPool`]): what the plain backward passes
//! run on when a layer needs its input gradient.
//!
//! Each pooled output sends its gradient to its argmax pixel, where the pooled value is
//! positive. The argmax is a cell of the output's own 2x2 window (`fused.rs`'s convention),
//! so each image is written in one pass, every cell once, in memory order: its value is its
//! window's gradient if the window's argmax names it, else 0 (as `0 + dy`: the sum of the
//! scatter it stands for, zeros plus the gradient). An argmax above 3 names no cell.

use super::{Conv2d, ConvReluPool};
use crate::error::Result;
use rayon::prelude::*;

/// The gradient of the convolution output (`[n, ho, wo, cout]`, overwritten) that the fused
/// backward pass works from implicitly: `dy` at each pooled output's argmax where the pooled
/// value is positive, 0 elsewhere. For layers that also need their input gradient
/// (backward-data runs on it).
pub fn unpool_relu_grad(cp: &ConvReluPool, y: &[f32], dy: &[f32], argmax: &[u32], dconv: &mut [f32]) -> Result<()> {
    let c = &cp.conv;
    let shape = cp.output_shape();
    Conv2d::check_len("pooled output length vs n*(ho/2)*(wo/2)*cout", y.len(), shape)?;
    Conv2d::check_len("pooled gradient length vs n*(ho/2)*(wo/2)*cout", dy.len(), shape)?;
    Conv2d::check_len("argmax length vs n*(ho/2)*(wo/2)*cout", argmax.len(), shape)?;
    Conv2d::check_len("convolution gradient length vs n*ho*wo*cout", dconv.len(), c.output_shape())?;
    PooledGrad { cp, y, dy, argmax }.unpool(dconv);
    Ok(())
}

/// A fused conv+ReLU+pool's pooled output `y`, gradient `dy` and `argmax` (each
/// `[n, hp, wp, cout]`, lengths checked against `cp`; an argmax above 3 names no cell): the
/// dense gradient of its convolution output in a compact form.
#[derive(Clone, Copy)]
pub(crate) struct PooledGrad<'a> {
    pub cp: &'a ConvReluPool,
    pub y: &'a [f32],
    pub dy: &'a [f32],
    pub argmax: &'a [u32],
}

impl PooledGrad<'_> {
    /// Floats of the dense gradient (`n * ho * wo * cout`).
    pub fn dense_len(&self) -> usize {
        self.cp.conv.output_shape().iter().product()
    }

    /// The dense gradient into `dconv` (`[n, ho, wo, cout]`, overwritten).
    pub fn unpool(&self, dconv: &mut [f32]) {
        let c = &self.cp.conv;
        let (img_in, img_out) = (c.ho * c.wo * c.cout, self.cp.pool.ho * self.cp.pool.wo * c.cout);
        if img_out == 0 {
            dconv.fill(0.0);
            return;
        }
        dconv.par_chunks_mut(img_in).enumerate().for_each(|(n, d)| {
            let o = n * img_out..(n + 1) * img_out;
            let pooled = Pooled { y: &self.y[o.clone()], dy: &self.dy[o.clone()], argmax: &self.argmax[o] };
            windows(self.cp, &pooled, d);
        });
    }

    /// `dy` where `y > 0` and the argmax names a cell, else 0, into `g` (as long as `dy`):
    /// the gradients that reach the convolution output (as `0 + dy`, the dense gradient's
    /// values).
    pub fn masked(&self, g: &mut [f32]) {
        // Branch-free (as `windows`), so that it vectorises.
        for (((g, &yv), &d), &a) in g.iter_mut().zip(self.y).zip(self.dy).zip(self.argmax) {
            let keep = 0u32.wrapping_sub(u32::from(yv > 0.0) & u32::from(a <= 3));
            *g = f32::from_bits((0.0 + d).to_bits() & keep);
        }
    }
}

/// One image's pooled output, gradient and argmax (`[hp, wp, cout]`).
struct Pooled<'a> {
    y: &'a [f32],
    dy: &'a [f32],
    argmax: &'a [u32],
}

/// Writes every cell of one image's `d` (`[ho, wo, cout]`) from its own window.
fn windows(cp: &ConvReluPool, p: &Pooled, d: &mut [f32]) {
    let (wo, cout) = (cp.conv.wo, cp.conv.cout);
    let (hp, wp) = (cp.pool.ho, cp.pool.wo);
    for (r, row) in d.chunks_exact_mut(wo * cout).enumerate() {
        if r >= 2 * hp {
            row.fill(0.0);
            continue;
        }
        let (cells, past) = row.split_at_mut(2 * wp * cout);
        past.fill(0.0);
        for (x, cell) in cells.chunks_exact_mut(cout).enumerate() {
            let at = (r / 2 * wp + x / 2) * cout..(r / 2 * wp + x / 2 + 1) * cout;
            // This pixel's cell in its window.
            let k = (r % 2 * 2 + x % 2) as u32;
            let (a, yv, g) = (&p.argmax[at.clone()], &p.y[at.clone()], &p.dy[at]);
            // Branch-free, so that it vectorises: where a window's argmax falls among its
            // cells is data, and a branch on it mispredicts a quarter of the time.
            for (((out, &a), &yv), &g) in cell.iter_mut().zip(a).zip(yv).zip(g) {
                let keep = 0u32.wrapping_sub(u32::from(a == k) & u32::from(yv > 0.0));
                // `0.0 + g`: the scatter's sum, which turns a -0.0 gradient into +0.0.
                *out = f32::from_bits((0.0 + g).to_bits() & keep);
            }
        }
    }
}

//! Grad-CAM (Selvaraju et al., 2017), as keras.io's recipe computes it: a layer's feature
//! maps weighted by the spatial mean of the class score's gradient with respect to them,
//! summed over channels, ReLU.

use super::{image_dims, Runner, Target};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::tensor::Tensor;

/// Grad-CAM maps at the layer's resolution and at the input's.
#[derive(Debug, Clone, PartialEq)]
pub struct GradCam {
    /// `[n, h', w']`: `relu(sum_k alpha_k A_k)`, `alpha_k` the mean over the map of the
    /// class score's gradient with respect to channel `k` of the layer's output `A`. Not
    /// normalised (keras.io's recipe divides by each map's maximum for display).
    pub maps: Tensor,
    /// `[n, h, w]`: the maps resized to the input's height and width, bilinearly as
    /// `tf.image.resize` does (half-pixel centres, no antialiasing).
    pub upsampled: Tensor,
}

/// Grad-CAM of images `[n, h, w, c]` at the layer named `layer`, whose output must be
/// feature maps `[h', w', channels]` (usually the last convolution).
pub fn grad_cam(model: &Model, images: &Tensor, target: Target<'_>, layer: &str) -> Result<GradCam> {
    let node = model.graph.find(layer).ok_or_else(|| Error::Config(format!("no layer named {layer:?}")))?;
    let run = Runner::new(model, &[node])?;
    let [h, w, _] = image_dims(&run)?;
    let [lh, lw, k] = match *model.graph.shape(node) {
        [a, b, c] => [a, b, c],
        ref s => {
            return Err(Error::Config(format!(
                "Grad-CAM needs feature maps [h, w, channels]; layer {layer:?} outputs {s:?}"
            )))
        }
    };
    let n = run.samples(images)?;
    let out = run.run(images.data(), n, target, true, |c| {
        let (a, g) = (c.values[0], c.grads[0]);
        let mut maps = Vec::with_capacity(c.m * lh * lw);
        for (a, g) in a.chunks_exact(lh * lw * k).zip(g.chunks_exact(lh * lw * k)) {
            let mut alpha = vec![0f32; k];
            g.chunks_exact(k).for_each(|p| alpha.iter_mut().zip(p).for_each(|(s, v)| *s += v));
            let inv = 1.0 / (lh * lw) as f32;
            alpha.iter_mut().for_each(|s| *s *= inv);
            maps.extend(a.chunks_exact(k).map(|p| dot(p, &alpha).max(0.0)));
        }
        Ok(maps)
    })?;
    let upsampled: Vec<f32> =
        out.mapped.chunks_exact(lh * lw).flat_map(|m| resize_bilinear(m, (lh, lw), (h, w))).collect();
    Ok(GradCam { maps: Tensor::new(vec![n, lh, lw], out.mapped)?, upsampled: Tensor::new(vec![n, h, w], upsampled)? })
}

/// `sum_i a[i] * b[i]` in eight interleaved partial sums (a fixed order that vectorises; a
/// single running sum is a chain of dependent adds, ~3x slower on a 10,000-image batch).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8.remainder().iter().zip(b8.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a8.zip(b8) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Resizes a `[ih, iw]` map to `[oh, ow]` as TensorFlow's bilinear `resize` does
/// (half-pixel centres: source coordinate `(o + 0.5) * in / out - 0.5`, clamped at the edges).
pub(crate) fn resize_bilinear(map: &[f32], (ih, iw): (usize, usize), (oh, ow): (usize, usize)) -> Vec<f32> {
    let axis = |o: usize, inp: usize, out: usize| {
        let src = (o as f32 + 0.5) * (inp as f32 / out as f32) - 0.5;
        let f = src.floor();
        let lo = (f.max(0.0) as usize).min(inp - 1);
        let hi = (src.ceil().max(0.0) as usize).min(inp - 1);
        (lo, hi, src - f)
    };
    let cols: Vec<_> = (0..ow).map(|x| axis(x, iw, ow)).collect();
    let mut out = Vec::with_capacity(oh * ow);
    for y in 0..oh {
        let (y0, y1, fy) = axis(y, ih, oh);
        for &(x0, x1, fx) in &cols {
            let top = map[y0 * iw + x0] + (map[y0 * iw + x1] - map[y0 * iw + x0]) * fx;
            let bottom = map[y1 * iw + x0] + (map[y1 * iw + x1] - map[y1 * iw + x0]) * fx;
            out.push(top + (bottom - top) * fy);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::resize_bilinear;

    #[test]
    fn resize_keeps_constants_and_interpolates_half_pixels() {
        assert!(resize_bilinear(&[2.0; 6], (2, 3), (5, 7)).iter().all(|&v| v == 2.0));
        // 1x2 -> 1x4: source x = (o + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 (clamped ends).
        assert_eq!(resize_bilinear(&[0.0, 4.0], (1, 2), (1, 4)), vec![0.0, 1.0, 3.0, 4.0]);
        // Same size: the identity.
        let m: Vec<f32> = (0..12).map(|v| v as f32).collect();
        assert_eq!(resize_bilinear(&m, (3, 4), (3, 4)), m);
    }
}

//! Gradient saliency (Simonyan et al., 2014) and SmoothGrad (Smilkov et al., 2017): the
//! gradient of the class score with respect to the input pixels.

use super::{image_dims, Runner, Target};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::rng::{mix, Rng};
use crate::tensor::Tensor;

/// The gradient of each sample's class score with respect to its input: the same shape as
/// `images` (`[n, ...input shape]`).
pub fn input_gradients(model: &Model, images: &Tensor, target: Target<'_>) -> Result<Tensor> {
    let run = Runner::new(model, &[0])?;
    let n = run.samples(images)?;
    let out = run.run(images.data(), n, target, true, |c| Ok(c.grads[0].to_vec()))?;
    Tensor::new(images.shape().to_vec(), out.mapped)
}

/// How a gradient becomes one value per pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Saliency {
    /// Keep the gradient's sign (the largest signed value over the channels) instead of the
    /// largest magnitude (the default, as in the paper and tf-keras-vis).
    pub signed: bool,
}

/// Vanilla gradient saliency of images `[n, h, w, c]`: per pixel, the largest magnitude over
/// the channels of the class score's gradient (or, with [`Saliency::signed`], the largest
/// signed value); `[n, h, w]`.
pub fn saliency(model: &Model, images: &Tensor, target: Target<'_>, how: Saliency) -> Result<Tensor> {
    let run = Runner::new(model, &[0])?;
    let [h, w, c] = image_dims(&run)?;
    let n = run.samples(images)?;
    let out = run.run(images.data(), n, target, true, |k| Ok(per_pixel(k.grads[0], c, how)))?;
    Tensor::new(vec![n, h, w], out.mapped)
}

/// One value per pixel of `[.., c]` gradients.
fn per_pixel(g: &[f32], c: usize, how: Saliency) -> Vec<f32> {
    if how.signed {
        g.chunks_exact(c).map(|p| p.iter().copied().fold(f32::NEG_INFINITY, f32::max)).collect()
    } else {
        g.chunks_exact(c).map(|p| p.iter().fold(0f32, |a, v| a.max(v.abs()))).collect()
    }
}

/// SmoothGrad's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SmoothGrad {
    /// Noisy copies per image (default 20).
    pub samples: usize,
    /// The noise's standard deviation as a fraction of each image's value range
    /// (`max - min`; default 0.15, inside the paper's 10-20%).
    pub noise: f32,
    /// Seeds the noise: copy `k` of image `i` draws from (seed, i, k) only.
    pub seed: u64,
    /// How the averaged gradient becomes one value per pixel.
    pub how: Saliency,
}

impl Default for SmoothGrad {
    fn default() -> Self {
        SmoothGrad { samples: 20, noise: 0.15, seed: 0, how: Saliency::default() }
    }
}

/// SmoothGrad of images `[n, h, w, c]`: the class score's input gradient averaged over
/// `samples` copies of each image with Gaussian noise added, then reduced per pixel as
/// [`saliency`] does (tf-keras-vis's order: average, then magnitude); `[n, h, w]`. The class
/// of [`Target::Predicted`] is the prediction for the clean image.
pub fn smooth_grad(model: &Model, images: &Tensor, target: Target<'_>, s: SmoothGrad) -> Result<Tensor> {
    if s.samples == 0 || !(s.noise.is_finite() && s.noise >= 0.0) {
        return Err(Error::Config(format!(
            "SmoothGrad needs at least one sample and a finite noise level >= 0 (got {} and {})",
            s.samples, s.noise
        )));
    }
    let run = Runner::new(model, &[0])?;
    let [h, w, c] = image_dims(&run)?;
    let n = run.samples(images)?;
    let classes = match target {
        Target::Predicted => super::class_scores(model, images, target)?.0,
        Target::Classes(c) => c.to_vec(),
    };
    let len = h * w * c;
    let mut sum = vec![0f32; n * len];
    let mut noisy = vec![0f32; n * len];
    for k in 0..s.samples {
        for (i, (img, out)) in images.data().chunks_exact(len).zip(noisy.chunks_exact_mut(len)).enumerate() {
            let (lo, hi) = img.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
            let sigma = s.noise * (hi - lo);
            let mut rng = Rng::new(mix(mix(s.seed, i as u64), k as u64));
            out.iter_mut().zip(img).for_each(|(o, &v)| *o = v + sigma * rng.normal());
        }
        let g = run.run(&noisy, n, Target::Classes(&classes), true, |c| Ok(c.grads[0].to_vec()))?;
        sum.iter_mut().zip(&g.mapped).for_each(|(a, v)| *a += v);
    }
    let inv = 1.0 / s.samples as f32;
    sum.iter_mut().for_each(|v| *v *= inv);
    Tensor::new(vec![n, h, w], per_pixel(&sum, c, s.how))
}

//! Occlusion (Zeiler and Fergus, 2014): how much the class score drops when a patch of the
//! image is replaced by a baseline value, patch by patch.

use super::{image_dims, Runner, Target};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::tensor::Tensor;

/// Occlusion's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Occlusion {
    /// The patch's height and width (default 4x4).
    pub patch: (usize, usize),
    /// The step between patches (default 2x2). Where the last step does not reach the edge,
    /// one more patch ends at it, so every pixel is covered.
    pub stride: (usize, usize),
    /// The value written over the patch, in every channel (default 0).
    pub baseline: f32,
}

impl Default for Occlusion {
    fn default() -> Self {
        Occlusion { patch: (4, 4), stride: (2, 2), baseline: 0.0 }
    }
}

/// The start of each patch along an axis of `len` pixels.
fn starts(len: usize, patch: usize, stride: usize) -> Vec<usize> {
    let mut s: Vec<usize> = (0..=len - patch).step_by(stride).collect();
    if s.last().is_some_and(|&l| l + patch < len) {
        s.push(len - patch);
    }
    s
}

/// Occlusion maps of images `[n, h, w, c]`: per pixel, the mean over the patches that
/// cover it of `f(x) - f(x with the patch set to the baseline)`, `f` the class score;
/// `[n, h, w]`. The class of [`Target::Predicted`] is the prediction for the clean image.
pub fn occlusion(model: &Model, images: &Tensor, target: Target<'_>, o: Occlusion) -> Result<Tensor> {
    let run = Runner::new(model, &[])?;
    let [h, w, c] = image_dims(&run)?;
    let n = run.samples(images)?;
    let ((ph, pw), (sh, sw)) = (o.patch, o.stride);
    if ph == 0 || pw == 0 || ph > h || pw > w || sh == 0 || sw == 0 || !o.baseline.is_finite() {
        return Err(Error::Config(format!(
            "occlusion patch {ph}x{pw} with stride {sh}x{sw} and baseline {} on {h}x{w} images: the patch must fit, \
             the stride be at least 1 and the baseline finite",
            o.baseline
        )));
    }
    let (clean_classes, clean) = super::class_scores(model, images, target)?;
    let windows: Vec<(usize, usize)> =
        starts(h, ph, sh).into_iter().flat_map(|y| starts(w, pw, sw).into_iter().map(move |x| (y, x))).collect();
    let len = h * w * c;
    // Whole images per run, about 512 occluded copies at a time.
    let group = (512 / windows.len()).max(1);
    let mut maps = vec![0f32; n * h * w];
    let mut covered = vec![0u32; h * w];
    for &(y, x) in &windows {
        for r in y..y + ph {
            covered[r * w + x..r * w + x + pw].iter_mut().for_each(|v| *v += 1);
        }
    }
    let mut batch = Vec::new();
    for first in (0..n).step_by(group) {
        let imgs = first..(first + group).min(n);
        batch.clear();
        let mut classes = Vec::new();
        for i in imgs.clone() {
            let img = &images.data()[i * len..(i + 1) * len];
            for &(y, x) in &windows {
                let at = batch.len();
                batch.extend_from_slice(img);
                for r in y..y + ph {
                    batch[at + (r * w + x) * c..at + (r * w + x + pw) * c].fill(o.baseline);
                }
                classes.push(clean_classes[i]);
            }
        }
        let scores = run.run(&batch, classes.len(), Target::Classes(&classes), false, |_| Ok(Vec::new()))?.scores;
        for (i, s) in imgs.zip(scores.chunks_exact(windows.len())) {
            let map = &mut maps[i * h * w..(i + 1) * h * w];
            for (&(y, x), &sc) in windows.iter().zip(s) {
                let drop = clean[i] - sc;
                for r in y..y + ph {
                    map[r * w + x..r * w + x + pw].iter_mut().for_each(|v| *v += drop);
                }
            }
            map.iter_mut().zip(&covered).for_each(|(v, &k)| *v /= k as f32);
        }
    }
    Tensor::new(vec![n, h, w], maps)
}

#[cfg(test)]
mod tests {
    use super::starts;

    #[test]
    fn patches_cover_every_pixel() {
        assert_eq!(starts(28, 4, 2), (0..=24).step_by(2).collect::<Vec<_>>());
        assert_eq!(starts(7, 3, 3), vec![0, 3, 4]);
        assert_eq!(starts(5, 5, 1), vec![0]);
    }
}

//! Integrated Gradients (Sundararajan, Taly and Yan, 2017): the input's difference from a
//! baseline times the class score's gradient integrated along the straight path between them.

use super::{Runner, Target};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::tensor::Tensor;

/// The image an attribution is measured from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Baseline<'a> {
    /// All zeros (black, for inputs scaled to `[0, 1]`); the default.
    Zeros,
    /// Every value `v`.
    Value(f32),
    /// One baseline per image, the shape of the images.
    Images(&'a Tensor),
}

/// Integrated Gradients' settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntegratedGradients<'a> {
    /// The baseline `x'`.
    pub baseline: Baseline<'a>,
    /// Intervals of the path (`steps + 1` gradient evaluations; default 50).
    pub steps: usize,
}

impl Default for IntegratedGradients<'_> {
    fn default() -> Self {
        IntegratedGradients { baseline: Baseline::Zeros, steps: 50 }
    }
}

/// Integrated Gradients of `images` (`[n, ...input shape]`), by the trapezoid rule over
/// `steps` intervals: `(x - x') * sum_k w_k grad f(x' + (k / steps) (x - x'))` with
/// `w_k = 1 / steps`, halved at both ends. Same shape as `images`. Completeness: each
/// image's attributions sum to about `f(x) - f(x')` (the rule's error shrinks as `steps`
/// grows). The class of [`Target::Predicted`] is the prediction for `x`.
pub fn integrated_gradients(
    model: &Model,
    images: &Tensor,
    target: Target<'_>,
    ig: IntegratedGradients<'_>,
) -> Result<Tensor> {
    if ig.steps == 0 {
        return Err(Error::Config("Integrated Gradients needs at least one step".into()));
    }
    let run = Runner::new(model, &[0])?;
    let n = run.samples(images)?;
    let x = images.data();
    let baseline: Vec<f32> = match ig.baseline {
        Baseline::Zeros => vec![0.0; x.len()],
        Baseline::Value(v) if v.is_finite() => vec![v; x.len()],
        Baseline::Value(v) => return Err(Error::Config(format!("baseline value {v} is not finite"))),
        Baseline::Images(b) if b.shape() == images.shape() => b.data().to_vec(),
        Baseline::Images(b) => {
            return Err(Error::Data(format!(
                "baseline of shape {:?} for images of shape {:?}",
                b.shape(),
                images.shape()
            )))
        }
    };
    let classes = match target {
        Target::Predicted => super::class_scores(model, images, target)?.0,
        Target::Classes(c) => c.to_vec(),
    };
    let mut sum = vec![0f32; x.len()];
    let mut point = vec![0f32; x.len()];
    for k in 0..=ig.steps {
        let alpha = (k as f64 / ig.steps as f64) as f32;
        point.iter_mut().zip(x.iter().zip(&baseline)).for_each(|(p, (&v, &b))| *p = b + alpha * (v - b));
        let g = run.run(&point, n, Target::Classes(&classes), true, |c| Ok(c.grads[0].to_vec()))?;
        let w = if k == 0 || k == ig.steps { 0.5 } else { 1.0 };
        sum.iter_mut().zip(&g.mapped).for_each(|(s, &v)| *s += w * v);
    }
    let inv = 1.0 / ig.steps as f32;
    sum.iter_mut().zip(x.iter().zip(&baseline)).for_each(|(s, (&v, &b))| *s *= inv * (v - b));
    Tensor::new(images.shape().to_vec(), sum)
}

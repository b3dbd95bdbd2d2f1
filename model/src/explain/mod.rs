//! Why the network decides: attributions of a class's score to the input pixels or to an
//! inner layer's channels.
//!
//! Every method explains, per sample, the score of one class: the output layer's value
//! *before* its softmax or sigmoid (the class logit), as Captum and keras.io's Grad-CAM
//! recipe do; for a model whose output has no such activation, the output itself. Which class
//! is a [`Target`]: the model's prediction, or one class per sample.
//!
//! | method | function | returns |
//! |---|---|---|
//! | vanilla gradient | [`saliency()`] (raw: [`input_gradients`]) | `[n, h, w]` |
//! | SmoothGrad | [`smooth_grad`] | `[n, h, w]` |
//! | Integrated Gradients | [`integrated_gradients`] | `[n, h, w, c]` |
//! | Grad-CAM | [`grad_cam()`] | `[n, h', w']` and `[n, h, w]` |
//! | occlusion | [`occlusion()`] | `[n, h, w]` |
//!
//! All take the model by shared reference: they run inference-mode passes (dropout off,
//! batch normalization on its moving statistics) on a plan of their own, with buffers of their
//! own, and never touch the weights, the optimizer or the training state. A batch runs in
//! parts of [`crate::PART`] samples spread over the model's threads; every sample's result is
//! the same on any number of threads. Pictures of the maps: [`heatmap`].

mod grad_cam;
pub mod heatmap;
mod integrated;
mod occlusion;
mod saliency;

pub use grad_cam::{grad_cam, GradCam};
pub use integrated::{integrated_gradients, Baseline, IntegratedGradients};
pub use occlusion::{occlusion, Occlusion};
pub use saliency::{input_gradients, saliency, smooth_grad, Saliency, SmoothGrad};

use crate::error::{Error, Result};
use crate::graph::executor::{self, Shard};
use crate::graph::plan::{Plan, PlanOptions};
use crate::layers::{Activation, Mode};
use crate::model::Model;
use crate::tensor::Tensor;

/// Which class each sample is explained for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// The class the model predicts for the sample.
    Predicted,
    /// `classes[i]` for sample `i`.
    Classes(&'a [usize]),
}

/// The class score (logit) of every sample of `images` (`[n, ...input shape]`) for `target`:
/// `(classes, scores)`, `n` each.
pub fn class_scores(model: &Model, images: &Tensor, target: Target<'_>) -> Result<(Vec<usize>, Vec<f32>)> {
    let run = Runner::new(model, &[])?;
    let n = run.samples(images)?;
    let out = run.run(images.data(), n, target, false, |_| Ok(Vec::new()))?;
    Ok((out.classes, out.scores))
}

/// What a chunk of samples left after its passes, for the per-method reduction.
pub(crate) struct Chunk<'a> {
    /// Samples in the chunk.
    pub m: usize,
    /// Per node asked for: its value and its gradient (`m` samples each; gradients empty
    /// when the run had no backward pass).
    pub values: Vec<&'a [f32]>,
    pub grads: Vec<&'a [f32]>,
}

/// The outputs of a run over `n` samples.
pub(crate) struct Outputs {
    pub classes: Vec<usize>,
    pub scores: Vec<f32>,
    /// The reductions' outputs, in sample order.
    pub mapped: Vec<f32>,
}

/// A plan that differentiates a class score with respect to some nodes, and the model.
pub(crate) struct Runner<'m> {
    pub model: &'m Model,
    pub plan: Plan,
    /// The nodes asked for (0: the input).
    pub wrt: Vec<usize>,
}

impl<'m> Runner<'m> {
    /// A plan for `model` differentiating with respect to `wrt` (graph nodes; 0 is the
    /// input). The model must be built.
    pub fn new(model: &'m Model, wrt: &[usize]) -> Result<Runner<'m>> {
        if !model.graph.built {
            return Err(Error::Config("the model has no weights yet: compile (or build) it first".into()));
        }
        let out = model.graph.output();
        let act = model.graph.layer(out).map_or(Activation::Linear, |l| l.activation());
        let absorb = matches!(act, Activation::Softmax | Activation::Sigmoid).then_some(act);
        let options = PlanOptions {
            absorb,
            wrt: wrt.to_vec(),
            weight_grads: false,
            batch_stats: false,
            ..PlanOptions::training(true, None)
        };
        let plan = Plan::new(&model.graph, options)?;
        if act != Activation::Linear && plan.absorbed.is_none() {
            return Err(Error::Config(format!(
                "the model's output ends in {act:?}, whose class logit cannot be reached; explain a model ending in softmax, sigmoid or no activation"
            )));
        }
        if !wrt.is_empty() && plan.grads.of[plan.output].is_none() {
            return Err(Error::Config("the model's output does not depend on the value explained".into()));
        }
        Ok(Runner { model, plan, wrt: wrt.to_vec() })
    }

    /// The number of samples in `images`, checked against the model's input shape.
    pub fn samples(&self, images: &Tensor) -> Result<usize> {
        let want = self.model.input_shape().unwrap_or(&[]);
        match images.shape().split_first() {
            Some((&n, rest)) if rest == want && n > 0 => Ok(n),
            _ => Err(Error::Data(format!(
                "images of shape {:?} do not fit the model: expected [n, {}] with n >= 1",
                images.shape(),
                want.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// Forward passes (and, with `backward`, backward passes from the one-hot class score)
    /// over the `n` samples `x`, in parts spread over the model's threads; `map` reduces
    /// each chunk to floats (concatenated in sample order).
    pub fn run<F>(&self, x: &[f32], n: usize, target: Target<'_>, backward: bool, map: F) -> Result<Outputs>
    where
        F: Fn(&Chunk<'_>) -> Result<Vec<f32>> + Sync,
    {
        use rayon::prelude::*;
        let plan = &self.plan;
        let in_len = plan.len[0];
        let classes_out = plan.len[plan.output];
        if x.len() != n * in_len {
            return Err(Error::Data(format!("{} input values for {n} samples of {in_len}", x.len())));
        }
        if let Target::Classes(c) = target {
            if c.len() != n {
                return Err(Error::Data(format!("{} target classes for {n} samples", c.len())));
            }
            if let Some(&bad) = c.iter().find(|&&k| k >= classes_out) {
                return Err(Error::Data(format!("target class {bad} outside the model's {classes_out} outputs")));
            }
        }
        let part = if plan.parts { plan.part } else { n };
        let chunks = n.div_ceil(part);
        let pool = self.model.pool()?;
        let tasks = pool.current_num_threads().clamp(1, chunks);
        let per = chunks.div_ceil(tasks);
        let weights = self.model.store.weights();
        let scratch_len = self.model.store.table().trainable_len();
        let task = |t: usize| -> Result<Outputs> {
            let mut shard = Shard::default();
            let mut scratch = vec![0f32; if backward { scratch_len } else { 0 }];
            let mut out = Outputs { classes: Vec::new(), scores: Vec::new(), mapped: Vec::new() };
            for c in t * per..((t + 1) * per).min(chunks) {
                let lo = c * part;
                let m = part.min(n - lo);
                let xp = &x[lo * in_len..(lo + m) * in_len];
                shard.size(plan, m);
                executor::forward(plan, weights, &mut shard, xp, m, Mode::default())?;
                let logits = shard.output(plan, m);
                let classes: Vec<usize> = match target {
                    Target::Classes(cl) => cl[lo..lo + m].to_vec(),
                    Target::Predicted => logits.chunks_exact(classes_out).map(argmax).collect(),
                };
                out.scores.extend(classes.iter().enumerate().map(|(i, &k)| logits[i * classes_out + k]));
                if backward {
                    let dy = shard.output_gradient_mut(plan, m).expect("checked in Runner::new");
                    dy.fill(0.0);
                    classes.iter().enumerate().for_each(|(i, &k)| dy[i * classes_out + k] = 1.0);
                    executor::backward(plan, weights, &mut scratch, &mut shard, (xp, m), false, Mode::default())?;
                }
                let values = self.wrt.iter().map(|&j| if j == 0 { xp } else { shard.value(plan, j, m) }).collect();
                let grads = self
                    .wrt
                    .iter()
                    .map(|&j| if backward { shard.gradient(plan, j, m).unwrap_or(&[]) } else { &[] })
                    .collect();
                out.mapped.extend(map(&Chunk { m, values, grads })?);
                out.classes.extend(classes);
            }
            Ok(out)
        };
        let parts: Vec<Result<Outputs>> = pool.install(|| (0..tasks).into_par_iter().map(task).collect());
        let mut all = Outputs { classes: Vec::with_capacity(n), scores: Vec::with_capacity(n), mapped: Vec::new() };
        for p in parts {
            let p = p?;
            all.classes.extend(p.classes);
            all.scores.extend(p.scores);
            all.mapped.extend(p.mapped);
        }
        Ok(all)
    }
}

/// The index of the largest value (the first among equals).
fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold(0, |b, (i, &x)| if x > v[b] { i } else { b })
}

/// `[n, ...]` from the model's per-sample shape with its last axis (channels) dropped: the
/// shape of a per-pixel map of images `[n, h, w, c]`.
pub(crate) fn image_dims(runner: &Runner<'_>) -> Result<[usize; 3]> {
    match *runner.model.input_shape().unwrap_or(&[]) {
        [h, w, c] => Ok([h, w, c]),
        ref s => Err(Error::Config(format!("pixel attributions need image inputs [h, w, c]; the model takes {s:?}"))),
    }
}

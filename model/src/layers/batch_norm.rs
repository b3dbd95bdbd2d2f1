//! Keras's `BatchNormalization(axis=-1, momentum=0.99, epsilon=1e-3, center=True,
//! scale=True)`: in training, each channel is normalised with the batch's mean and (biased)
//! variance over all other axes, and the moving statistics follow
//! `m = m · momentum + batch · (1 - momentum)`; in inference, the moving statistics are used.
//! `y = x · s + (β - μ s)`, `s = γ / √(σ² + ε)`, as `tf.nn.batch_normalization`.
//!
//! The layer couples the samples of a batch. Its passes come in halves around the batch
//! reductions (the part's moments / the joined statistics / the normalization; the part's
//! backward sums / their means / the input gradient), so a training batch still runs in
//! parts and shards (`graph::coupled`), and the moving statistics are updated after each
//! training step from the joined moments.
//!
//! [`BatchNormalization::forward_then`] and [`BatchNormalization::backward_then`] run the
//! layer with a ReLU fused after it (the `bn_relu` fusion rule).

use super::{Backward, Forward, Layer, LayerTraits, Workspace};
use crate::error::{Error, Result};
use crate::params::{grads_of, Layout, ParamBuilder, ParamId, ParamKind, ParamStore};
use crate::rng::Rng;
use ember_kernels::batchnorm::{
    batch_norm_apply, batch_norm_backward_dx, batch_norm_backward_sums, batch_norm_combine, batch_norm_part_moments,
    BatchNormSaved, PartMoments,
};

/// Keras's `BatchNormalization` over the last axis.
#[derive(Debug, Clone)]
pub struct BatchNormalization {
    name: String,
    momentum: f64,
    epsilon: f32,
    center: bool,
    scale: bool,
    channels: usize,
    gamma: Option<ParamId>,
    beta: Option<ParamId>,
    /// Moving mean and variance (non-trainable).
    moving: Option<(ParamId, ParamId)>,
    /// Every id, for `params()`.
    ids: Vec<ParamId>,
}

impl Default for BatchNormalization {
    fn default() -> Self {
        BatchNormalization {
            name: String::new(),
            momentum: 0.99,
            epsilon: 1e-3,
            center: true,
            scale: true,
            channels: 0,
            gamma: None,
            beta: None,
            moving: None,
            ids: Vec::new(),
        }
    }
}

impl BatchNormalization {
    /// Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// The moving statistics' momentum (a double, as Keras's Python float).
    pub fn momentum(mut self, m: f64) -> Self {
        self.momentum = m;
        self
    }
    /// ε added to the variance.
    pub fn epsilon(mut self, e: f32) -> Self {
        self.epsilon = e;
        self
    }
    /// Whether to learn β (default true).
    pub fn center(mut self, c: bool) -> Self {
        self.center = c;
        self
    }
    /// Whether to learn γ (default true).
    pub fn scale(mut self, s: bool) -> Self {
        self.scale = s;
        self
    }

    /// The channels it normalizes (after build).
    pub(crate) fn channels(&self) -> usize {
        self.channels
    }

    /// Per-channel `(s, t)` of inference's `y = x s + t` (the moving statistics), for
    /// folding into the convolution before the layer.
    pub(crate) fn inference_affine(&self, w: &crate::params::Weights<'_>) -> Result<(Vec<f32>, Vec<f32>)> {
        let (mm, mv) = self.moving.ok_or_else(|| Error::Config(format!("{}: not built", self.name)))?;
        let (gamma, beta) = (self.gamma.map(|g| w.get(g)), self.beta.map(|b| w.get(b)));
        let mut inv = vec![0.0; self.channels];
        let mut st = vec![0.0; 2 * self.channels];
        self.affine(gamma, beta, w.get(mm), w.get(mv), &mut inv, &mut st);
        let t = st.split_off(self.channels);
        Ok((st, t))
    }

    /// Per-channel `inv = 1/√(σ² + ε)` and `(s, t)` of `y = x s + t` (`st`: `[s | t]`) from a
    /// mean and a variance.
    fn affine(
        &self,
        gamma: Option<&[f32]>,
        beta: Option<&[f32]>,
        mean: &[f32],
        var: &[f32],
        inv: &mut [f32],
        st: &mut [f32],
    ) {
        let c = self.channels;
        let (s, t) = st.split_at_mut(c);
        for j in 0..c {
            inv[j] = 1.0 / (var[j] + self.epsilon).sqrt();
            s[j] = inv[j] * gamma.map_or(1.0, |g| g[j]);
            t[j] = beta.map_or(0.0, |b| b[j]) - mean[j] * s[j];
        }
    }
}

impl Layer for BatchNormalization {
    super::layer_plumbing!(name);
    fn class_name(&self) -> &'static str {
        "BatchNormalization"
    }
    fn build(&mut self, inputs: &[&[usize]], params: &mut ParamBuilder, _rng: &mut Rng) -> Result<Vec<usize>> {
        let input = super::single_input(&self.name, inputs)?;
        let Some(&c) = input.last().filter(|&&c| c > 0) else {
            return Err(Error::LayerShape {
                layer: self.name.clone(),
                input: input.to_vec(),
                what: "BatchNormalization needs a non-empty last axis".into(),
            });
        };
        if !((0.0..1.0).contains(&self.momentum) && self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(Error::Config(format!(
                "{}: momentum {} must be in [0, 1) and epsilon {} positive",
                self.name, self.momentum, self.epsilon
            )));
        }
        self.channels = c;
        let mut declare = |what: &str, kind, v: f32| {
            params.declare(format!("{}/{what}", self.name), vec![c], kind, Layout::Keras, vec![v; c])
        };
        self.gamma = self.scale.then(|| declare("gamma", ParamKind::Trainable, 1.0)).transpose()?;
        self.beta = self.center.then(|| declare("beta", ParamKind::Trainable, 0.0)).transpose()?;
        let mm = declare("moving_mean", ParamKind::NonTrainable, 0.0)?;
        let mv = declare("moving_variance", ParamKind::NonTrainable, 1.0)?;
        self.moving = Some((mm, mv));
        self.ids = [self.gamma, self.beta, Some(mm), Some(mv)].into_iter().flatten().collect();
        Ok(input.to_vec())
    }
    fn params(&self) -> &[ParamId] {
        &self.ids
    }
    fn traits(&self) -> LayerTraits {
        LayerTraits { couples_batch: true, ..LayerTraits::default() }
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        self.forward_then(f, false)
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        self.backward_then(b, false)
    }
    fn update_state(&self, ws: &Workspace, store: &mut ParamStore) -> Result<()> {
        let c = self.channels;
        let Some((mm, mv)) = self.moving else { return Ok(()) };
        if ws.kept.len() < 2 * c {
            return Ok(());
        }
        // Keras: `m * momentum + batch * (1 - momentum)`, momentum rounded to f32 and
        // `1 - momentum` computed in double precision, then rounded.
        let (m, one_minus) = (self.momentum as f32, (1.0 - self.momentum) as f32);
        for (id, batch) in [(mm, &ws.kept[..c]), (mv, &ws.kept[c..2 * c])] {
            store.value_mut(id).iter_mut().zip(batch).for_each(|(v, &b)| *v = *v * m + b * one_minus);
        }
        Ok(())
    }
}

impl BatchNormalization {
    /// The forward pass, followed by a ReLU with `relu` (`y = max(x s + t, 0)` in the same
    /// pass over memory). Leaves `[mean | variance | 1/√(σ²+ε) | s | t]` in `ws.kept` for the
    /// backward pass and the moving statistics' update.
    pub(crate) fn forward_then(&self, f: Forward<'_>, relu: bool) -> Result<()> {
        self.statistics(f.weights, f.x[0], f.mode.training, &mut f.ws.kept)?;
        self.apply(&f.ws.kept, f.x[0], relu, f.y)
    }

    /// The first half of the forward pass over `x` (`[rows, c]`): the statistics (the
    /// batch's in training, the moving ones otherwise) and the per-channel map, written to
    /// `kept` as `[mean | variance | 1/√(σ²+ε) | s | t]`. A fused op that applies the map
    /// inside another pass (`bn_add_relu`) runs this and then its own kernel.
    pub(crate) fn statistics(
        &self,
        weights: crate::params::Weights<'_>,
        x: &[f32],
        training: bool,
        kept: &mut Vec<f32>,
    ) -> Result<()> {
        let mut part = PartMoments::default();
        self.part_moments(x, training, &mut part)?;
        self.reduce_moments(weights, training, &[&part], kept)
    }

    /// A batch in parts, forward, first half: the moments of one part `x` (`[rows, c]`)
    /// into `out` (in training; nothing otherwise).
    pub(crate) fn part_moments(&self, x: &[f32], training: bool, out: &mut PartMoments) -> Result<()> {
        if training {
            batch_norm_part_moments(&ember_kernels::Ctx::new(), x, self.channels, out)?;
        }
        Ok(())
    }

    /// A batch in parts, forward, the reduction: the batch's statistics from its `parts`'
    /// moments joined in part order (in training; the moving statistics otherwise), and the
    /// map, into `kept` as [`Self::statistics`] writes it.
    pub(crate) fn reduce_moments(
        &self,
        weights: crate::params::Weights<'_>,
        training: bool,
        parts: &[&PartMoments],
        kept: &mut Vec<f32>,
    ) -> Result<()> {
        let c = self.channels;
        let (mm, mv) = self.moving.ok_or_else(|| Error::Config(format!("{}: not built", self.name)))?;
        let (gamma, beta) = (self.gamma.map(|g| weights.get(g)), self.beta.map(|b| weights.get(b)));
        kept.resize(5 * c, 0.0);
        let (stats, rest) = kept.split_at_mut(2 * c);
        let (mean, var) = stats.split_at_mut(c);
        let (inv, st) = rest.split_at_mut(c);
        if training {
            batch_norm_combine(parts, mean, var)?;
        } else {
            mean.copy_from_slice(weights.get(mm));
            var.copy_from_slice(weights.get(mv));
        }
        self.affine(gamma, beta, mean, var, inv, st);
        Ok(())
    }

    /// The second half of the forward pass over `x` (the batch or a part of it): `y = x s +
    /// t` (then the ReLU with `relu`) with the map [`Self::statistics`] left in `kept`.
    pub(crate) fn apply(&self, kept: &[f32], x: &[f32], relu: bool, y: &mut [f32]) -> Result<()> {
        let (s, t) = self.scale_shift(kept);
        batch_norm_apply(&ember_kernels::Ctx::new(), x, s, t, relu, y)?;
        Ok(())
    }

    /// The `(s, t)` of `y = x s + t` that [`Self::statistics`] left in `kept`.
    pub(crate) fn scale_shift<'k>(&self, kept: &'k [f32]) -> (&'k [f32], &'k [f32]) {
        let c = self.channels;
        kept[3 * c..5 * c].split_at(c)
    }

    /// The backward pass of [`Self::forward_then`] with the same `relu`: `b.dy` is the
    /// gradient of the ReLU's output when one followed. [`Self::backward_sums`] over the
    /// batch, their means, then [`Self::backward_dx`].
    pub(crate) fn backward_then(&self, mut b: Backward<'_, '_>, relu: bool) -> Result<()> {
        let kept = std::mem::take(&mut b.ws.kept);
        let mut sums = Vec::new();
        let r = self.backward_sums(&mut b, &kept, relu, &mut sums).and_then(|()| {
            let mut means = Vec::new();
            self.means(&[(b.dy.len() / self.channels.max(1), &sums)], &mut means);
            self.backward_dx(&mut b, &kept, &means, relu)
        });
        b.ws.kept = kept;
        r
    }

    /// A batch in parts, backward, first half, over one part (or the whole batch): the
    /// part's `[Σ d | Σ d x̂]` (`2c`, with `d = b.dy`, masked by the ReLU with `relu`) into
    /// `sums`, and (with `b.weight_grads`) the part's `dβ = Σ d`, `dγ = Σ d x̂` into
    /// `b.grads` (added to what they hold with `b.accumulate`). `kept`: the forward's
    /// statistics.
    pub(crate) fn backward_sums(
        &self,
        b: &mut Backward<'_, '_>,
        kept: &[f32],
        relu: bool,
        sums: &mut Vec<f64>,
    ) -> Result<()> {
        let c = self.channels;
        let (mean, inv, s, t) = Self::unpack(kept, c);
        sums.clear();
        sums.resize(2 * c, 0.0);
        if b.mode.training {
            let ones = self.ones_for_gamma();
            let gamma = self.gamma.map_or(&ones[..], |g| b.weights.get(g));
            let saved = BatchNormSaved { x: b.x[0], mean, inv_std: inv, gamma, relu: relu.then_some((s, t)) };
            batch_norm_backward_sums(&ember_kernels::Ctx::new(), saved, b.dy, sums)?;
        } else if b.weight_grads {
            // Fixed statistics: the sums are only the parameters' gradients.
            for (xr, dr) in b.x[0].chunks_exact(c).zip(b.dy.chunks_exact(c)) {
                for j in 0..c {
                    let dv = Self::masked(relu, xr[j], dr[j], s[j], t[j]);
                    sums[j] += f64::from(dv);
                    sums[c + j] += f64::from(dv * (xr[j] - mean[j]) * inv[j]);
                }
            }
        }
        if !b.weight_grads {
            return Ok(());
        }
        // Where a tensor is not learned its gradient goes to scratch and is dropped.
        b.ws.scratch.resize(2 * c, 0.0);
        let (sg, sb) = b.ws.scratch.split_at_mut(c);
        let table = b.weights.table();
        let (dg, db): (&mut [f32], &mut [f32]) = match (self.gamma, self.beta) {
            (Some(g), Some(bt)) => {
                let (dg, db) = grads_of(table, b.grads, g, Some(bt));
                (dg, db.expect("asked for"))
            }
            (Some(g), None) => (grads_of(table, b.grads, g, None).0, sb),
            (None, Some(bt)) => (sg, grads_of(table, b.grads, bt, None).0),
            (None, None) => (sg, sb),
        };
        for j in 0..c {
            let (d_beta, d_gamma) = (sums[j] as f32, sums[c + j] as f32);
            db[j] = if b.accumulate { db[j] + d_beta } else { d_beta };
            dg[j] = if b.accumulate { dg[j] + d_gamma } else { d_gamma };
        }
        Ok(())
    }

    /// A batch in parts, backward, the reduction: from each part's `(rows, sums)` (of
    /// [`Self::backward_sums`]), added in part order in f64, the batch's means
    /// `[Σ d / N | Σ d x̂ / N]` into `means` (`2c`).
    pub(crate) fn means(&self, parts: &[(usize, &[f64])], means: &mut Vec<f32>) {
        let c = self.channels;
        let mut total = vec![0f64; 2 * c];
        let mut rows = 0;
        for &(r, sums) in parts {
            rows += r;
            total.iter_mut().zip(sums).for_each(|(t, s)| *t += s);
        }
        means.clear();
        means.extend(total.iter().map(|t| (t / rows.max(1) as f64) as f32));
    }

    /// A batch in parts, backward, second half, over one part (or the whole batch): the
    /// input gradient into `b.dx[0]` (if asked for) from the batch's `means` (of
    /// [`Self::means`]; read in training only).
    pub(crate) fn backward_dx(&self, b: &mut Backward<'_, '_>, kept: &[f32], means: &[f32], relu: bool) -> Result<()> {
        let c = self.channels;
        let (mean, inv, s, t) = Self::unpack(kept, c);
        let ones = self.ones_for_gamma();
        let gamma = self.gamma.map_or(&ones[..], |g| b.weights.get(g));
        let Some(dx) = b.dx[0].as_deref_mut() else { return Ok(()) };
        if b.mode.training {
            let saved = BatchNormSaved { x: b.x[0], mean, inv_std: inv, gamma, relu: relu.then_some((s, t)) };
            let (md, mdx) = means.split_at(c);
            batch_norm_backward_dx(&ember_kernels::Ctx::new(), saved, b.dy, (md, mdx), dx)?;
        } else {
            // Fixed statistics: y is affine in x.
            for ((o, dr), xr) in dx.chunks_exact_mut(c).zip(b.dy.chunks_exact(c)).zip(b.x[0].chunks_exact(c)) {
                for j in 0..c {
                    o[j] = Self::masked(relu, xr[j], dr[j], s[j], t[j]) * gamma[j] * inv[j];
                }
            }
        }
        Ok(())
    }

    /// `(mean, 1/√(σ²+ε), s, t)` of the forward's `kept`.
    fn unpack(kept: &[f32], c: usize) -> (&[f32], &[f32], &[f32], &[f32]) {
        (&kept[..c], &kept[2 * c..3 * c], &kept[3 * c..4 * c], &kept[4 * c..5 * c])
    }

    /// Ones where the layer learns no γ (allocated only then, not every step).
    fn ones_for_gamma(&self) -> Vec<f32> {
        if self.gamma.is_none() {
            vec![1.0; self.channels]
        } else {
            Vec::new()
        }
    }

    /// `dv` where the ReLU (with `relu`) passed the forward's `x s + t` (recomputed as it
    /// was: multiply, then add), else 0.
    fn masked(relu: bool, xv: f32, dv: f32, s: f32, t: f32) -> f32 {
        if !relu || xv * s + t > 0.0 {
            dv
        } else {
            0.0
        }
    }
}

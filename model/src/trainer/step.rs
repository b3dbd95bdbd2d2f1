//! One batch at a time: `train_on_batch`, `loss_and_gradients`, the shard API for running
//! parts of a batch concurrently (`compute_gradients`), and the two halves of a training
//! step that `fit` and the data-parallel fit share: the loaded batch's forward and backward
//! over its shards ([`Model::run_loaded`]), then state updates, the gradient hook and the
//! optimizer ([`Model::apply_gradients`]).

use super::Compiled;
use crate::error::{Error, Result};
use crate::graph::executor::{self, RunArgs, Shard};
use crate::layers::Mode;
use crate::losses::Counts;
use crate::model::Model;
use crate::params::{Arena, Weights};
use crate::rng::mix;
use crate::targets::Targets;
use crate::trainer::Evaluation;

impl Model {
    /// Checks a batch of `x` (the samples' input) and `targets` against the model and
    /// loads the targets; returns the sample count. The input is not copied (the copy was
    /// 1.7% of the seed network's step): the run that follows reads `x` where it lies
    /// (`input: Some(x)`), while [`Model::fit`] gathers its batches into the model's own
    /// buffer and runs on that (`None`).
    pub(crate) fn load_targets(&mut self, x: &[f32], targets: Targets<'_>) -> Result<usize> {
        let c = self.compiled()?;
        let n = targets.len();
        c.loss.check_targets(targets, c.classes)?;
        if n == 0 || x.len() != n * self.input_len() {
            return Err(Error::Data(format!(
                "{} input values for {n} samples' targets; the model takes {} values per sample",
                x.len(),
                self.input_len()
            )));
        }
        self.plan.as_ref().ok_or(Error::NotCompiled)?;
        self.batch.targets.copy_from(targets);
        Ok(n)
    }

    /// Forward and backward over one batch (`x`: `n` samples; `y`: their [`Targets`], e.g.
    /// `&labels` or [`Targets::dense`]): returns the loss and leaves the gradients in the
    /// parameter store, without updating the weights. For gradient checks and custom
    /// training loops.
    pub fn loss_and_gradients<'a>(&mut self, x: &[f32], y: impl Into<Targets<'a>>) -> Result<f32> {
        let n = self.load_targets(x, y.into())?;
        let pool = self.pool()?;
        pool.install(|| Ok((self.run_loaded_summing(true, true, true, Some(x))?.0 / n as f64) as f32))
    }

    /// Forward and backward over a shard of a batch, reading the model's weights only: the
    /// loss summed over the shard's samples (each scaled as a mean over `global_batch`), and
    /// the parameter gradients written into `grads` (the trainable arena's length). Shards
    /// of one model can run at once, each with its own [`Shard`] and `grads`; `first_sample`
    /// is the index of the shard's first sample in the global batch. Batch normalization
    /// normalizes a call's samples with their own statistics (as Keras's per-replica batch
    /// normalization does), and the moving statistics are not updated.
    pub fn compute_gradients<'a>(
        &self,
        shard: &mut Shard,
        (x, y): (&[f32], impl Into<Targets<'a>>),
        (first_sample, global_batch): (usize, usize),
        grads: &mut [f32],
    ) -> Result<f64> {
        let plan = self.plan.as_ref().ok_or(Error::NotCompiled)?;
        let args = self.run_args(true, global_batch)?;
        let y = y.into();
        args.loss.check_targets(y, args.classes)?;
        let n = y.len();
        if n == 0 || x.len() != n * self.input_len() || grads.len() != self.store.table().trainable_len() {
            return Err(Error::Data(format!(
                "{} input values and {} gradients for {n} samples ({} per sample, {} gradients)",
                x.len(),
                grads.len(),
                self.input_len(),
                self.store.table().trainable_len()
            )));
        }
        if global_batch < first_sample + n {
            return Err(Error::Data(format!(
                "samples {first_sample}..{} lie outside a batch of {global_batch}",
                first_sample + n
            )));
        }
        self.pool()?.install(|| Ok(executor::run_range(plan, &args, Some(grads), shard, (x, y), first_sample)?.0))
    }

    /// One training step on one batch (Keras's `train_on_batch`): forward, loss, backward,
    /// hook, update. Returns the batch's loss and accuracy (of the predictions before the
    /// update). In a loop of your own, call it inside [`Model::in_threads`]: each call from
    /// outside the model's threads hands the step to them and waits for it.
    pub fn train_on_batch<'a>(&mut self, x: &[f32], y: impl Into<Targets<'a>>) -> Result<Evaluation> {
        let n = self.load_targets(x, y.into())?;
        let pool = self.pool()?;
        let (loss, counts) = pool.install(|| self.train_step_on(n, Some(x)))?;
        Ok(Evaluation {
            loss,
            accuracy: counts.accuracy(),
            top_k_accuracy: self.top_k().map(|_| counts.top_k as f32 / n as f32),
        })
    }

    /// The step on the loaded batch; inside the pool. Without a gradient hook the shards'
    /// gradients are summed inside the optimizer's step ([`Optimizer::apply_summed`]: the
    /// same sum, in the same order, as the hook's path makes before the step).
    ///
    /// [`Optimizer::apply_summed`]: crate::optimizers::Optimizer::apply_summed
    pub(crate) fn train_step(&mut self, n: usize) -> Result<(f32, crate::losses::Counts)> {
        self.train_step_on(n, None)
    }

    /// [`Model::train_step`] on `input` (`n` samples) where given, else on the loaded
    /// batch's.
    fn train_step_on(&mut self, n: usize, input: Option<&[f32]>) -> Result<(f32, crate::losses::Counts)> {
        let (loss, counts) = if self.train.hook.is_some() {
            let r = self.run_loaded_summing(true, true, true, input)?;
            self.apply_gradients()?;
            r
        } else {
            let r = self.run_loaded_summing(true, true, false, input)?;
            self.apply_update(false)?;
            r
        };
        Ok(((loss / n as f64) as f32, counts))
    }

    fn run_args(&self, training: bool, global_batch: usize) -> Result<RunArgs<'_>> {
        Ok(run_args(self.compiled()?, self.store.weights(), self.seed, training, global_batch))
    }

    /// Forward and (with `grads`) backward over the loaded batch in its shards, the
    /// parameter gradients summed into the store's gradient arena.
    pub(crate) fn run_loaded(&mut self, training: bool, grads: bool) -> Result<(f64, Counts)> {
        self.run_loaded_summing(training, grads, true, None)
    }

    /// [`Model::run_loaded`], the shards' gradients left in their arenas without `sum`
    /// (for [`Model::apply_update`]); on `input` where given (the loaded targets' samples),
    /// else on the loaded batch's input.
    fn run_loaded_summing(
        &mut self,
        training: bool,
        grads: bool,
        sum: bool,
        input: Option<&[f32]>,
    ) -> Result<(f64, Counts)> {
        let n = self.batch.targets.len();
        let Model { plan, infer_plan, store, shards, shard_grads, batch, train, seed, .. } = self;
        let batch = (input.unwrap_or(&batch.input), batch.targets.as_targets());
        // Evaluation runs the inference plan (batch normalization folded, in parts).
        let plan = if grads || training { plan } else { infer_plan };
        let plan = plan.as_ref().ok_or(Error::NotCompiled)?;
        let s = executor::shard_count(plan, n, store.table().trainable_len());
        shards.resize_with(shards.len().max(s), Shard::default);
        while grads && shard_grads.len() + 1 < s {
            shard_grads.push(Arena::zeros(store.table().trainable_len())?);
        }
        let (weights, arena) = store.split_mut();
        let args = run_args(train.compiled.as_ref().ok_or(Error::NotCompiled)?, weights, *seed, training, n);
        if !grads {
            return executor::run_sharded(plan, &args, None, &mut shards[..s], batch, sum);
        }
        let mut bufs: Vec<&mut [f32]> =
            std::iter::once(arena).chain(shard_grads.iter_mut().map(Arena::as_mut_slice)).take(s).collect();
        executor::run_sharded(plan, &args, Some(&mut bufs), &mut shards[..s], batch, sum)
    }

    /// State updates (moving statistics), hook, then optimizer: the second half of a
    /// training step, after a run that summed the shards' gradients into the store's arena.
    pub(crate) fn apply_gradients(&mut self) -> Result<()> {
        self.apply_update(true)
    }

    /// [`Model::apply_gradients`]; without `summed`, after a run that left each shard's
    /// gradients in its own arena (only without a hook, which sees the summed arena): the
    /// optimizer sums them, the store's arena first and then the shards' in order, as it
    /// steps, and leaves the sum in the store's arena.
    fn apply_update(&mut self, summed: bool) -> Result<()> {
        let Model { store, train, plan, shards, shard_grads, batch, .. } = self;
        let plan = plan.as_ref().ok_or(Error::NotCompiled)?;
        if let Some(shard) = shards.first() {
            executor::update_state(plan, shard, store)?;
        }
        let c = train.compiled.as_mut().ok_or(Error::NotCompiled)?;
        if summed {
            if let Some(hook) = train.hook.as_mut() {
                let step = c.optimizer.iterations() + 1;
                let table = store.table().clone();
                hook.on_gradients(step, store.grads_mut(), &table)?;
            }
            let (values, grads) = store.trainable_mut();
            return c.optimizer.apply(values, grads);
        }
        let s = executor::shard_count(plan, batch.targets.len(), store.table().trainable_len());
        let more: Vec<&[f32]> = shard_grads.iter().take(s.saturating_sub(1)).map(Arena::as_slice).collect();
        let (values, grads) = store.trainable_and_grads_mut();
        c.optimizer.apply_summed(values, grads, &more)
    }
}

/// The arguments of a batch run: the step's seed is a function of the model's seed and the
/// number of the update the step leads to.
pub(super) fn run_args<'a>(
    c: &Compiled,
    weights: Weights<'a>,
    seed: u64,
    training: bool,
    global_batch: usize,
) -> RunArgs<'a> {
    let step = c.optimizer.iterations() + 1;
    RunArgs {
        weights,
        mode: Mode { training, seed: mix(seed, step), ..Mode::default() },
        loss: c.loss,
        classes: c.classes,
        global_batch,
        top_k: c.top_k(),
    }
}

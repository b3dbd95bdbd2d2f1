//! The trainer (Keras's `Trainer`, apart from what a model is): `compile` (optimizer, loss,
//! metrics), `fit` (shuffling, batches, validation split, callbacks, the non-finite guard,
//! checkpoint cadence), `evaluate`, `train_on_batch`, and the training step itself:
//!
//! forward + backward over the batch → the gradient hook ([`GradientHook`]) → the optimizer.

mod callbacks;
pub(crate) mod checkpoint;
mod data_parallel;
mod hook;
mod keras_callbacks;
mod step;

pub use callbacks::{BatchLogs, Callback, EpochLogs, Evaluation, History};
pub use hook::{ClipByGlobalNorm, GradientHook};
pub use keras_callbacks::{CsvLogger, EarlyStopping, LearningRateScheduler, ModelCheckpoint, ReduceLrOnPlateau};

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::losses::{Counts, Loss, Metric};
use crate::model::Model;
use crate::optimizers::Optimizer;
use std::time::Instant;

/// How to train (Keras's `fit` arguments).
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// The epoch to stop after (1-based count, as Keras's `epochs`).
    pub epochs: usize,
    /// Samples per step; the last batch of an epoch may be smaller.
    pub batch_size: usize,
    /// Reshuffle the training samples at the start of every epoch.
    pub shuffle: bool,
    /// The fraction of the training data (its last samples, before shuffling, as Keras)
    /// held out for validation; 0 for none. Ignored when validation data is given.
    pub validation_split: f32,
    /// Epochs already done (from a checkpoint): training runs epochs `initial_epoch + 1 ..= epochs`.
    pub initial_epoch: usize,
    /// Stop with [`Error::NonFiniteLoss`] when a batch's loss is NaN or infinite (else go on).
    pub stop_on_non_finite: bool,
    /// Write a checkpoint here at the end of every epoch (atomically).
    pub checkpoint: Option<std::path::PathBuf>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            validation_split: 0.0,
            initial_epoch: 0,
            stop_on_non_finite: true,
            checkpoint: None,
        }
    }
}

/// What `compile` set.
pub(crate) struct Compiled {
    pub optimizer: Box<dyn Optimizer>,
    pub loss: Loss,
    pub metrics: Vec<Metric>,
    /// The output width (classes, or 1 for binary cross-entropy).
    pub classes: usize,
}

impl Compiled {
    /// The `k` of the top-k accuracy metric, if one was given.
    pub(crate) fn top_k(&self) -> Option<usize> {
        self.metrics.iter().find_map(|m| match m {
            Metric::SparseTopKCategoricalAccuracy { k } => Some(*k),
            Metric::Accuracy => None,
        })
    }
}

/// The model's training state: the compiled configuration, the hook, progress.
#[derive(Default)]
pub(crate) struct TrainState {
    pub compiled: Option<Compiled>,
    pub hook: Option<Box<dyn GradientHook>>,
    pub epochs_done: usize,
    /// Set by a callback ([`Model::stop_training`]): `fit` ends after the current epoch.
    stop: bool,
    order: Vec<usize>,
    /// This process's rank in a data-parallel fit (0 otherwise).
    pub rank: usize,
    /// A data-parallel rank's buffer for the running gradient sum it receives.
    pub incoming: Vec<f32>,
    /// Time spent combining ranks' results since the last data-parallel fit began.
    pub combine: std::time::Duration,
}

impl Model {
    /// Builds the model, plans it for `loss` and sets the optimizer, loss and metrics. The
    /// loss needs a model output of rank 1 (`[classes]`).
    pub fn compile(&mut self, optimizer: impl Optimizer + 'static, loss: Loss, metrics: &[Metric]) -> Result<()> {
        optimizer.check()?;
        self.build()?;
        let out = self.output_shape().unwrap_or(&[]);
        let &[classes] = out else {
            return Err(Error::Config(format!(
                "{} needs outputs [classes]; the model outputs {out:?} per sample (add Flatten and Dense)",
                loss.name()
            )));
        };
        loss.check()?;
        if metrics.iter().any(|m| matches!(m, Metric::SparseTopKCategoricalAccuracy { k: 0 })) {
            return Err(Error::Config("SparseTopKCategoricalAccuracy needs k >= 1".into()));
        }
        self.train.compiled =
            Some(Compiled { optimizer: Box::new(optimizer), loss, metrics: metrics.to_vec(), classes });
        self.replan()
    }

    fn compiled(&self) -> Result<&Compiled> {
        self.train.compiled.as_ref().ok_or(Error::NotCompiled)
    }

    /// The `k` of the top-k accuracy metric given to `compile`, if any.
    pub(crate) fn top_k(&self) -> Option<usize> {
        self.train.compiled.as_ref().and_then(Compiled::top_k)
    }

    /// The metrics given to `compile` (accuracy is always computed).
    pub fn metrics(&self) -> &[Metric] {
        self.train.compiled.as_ref().map_or(&[], |c| &c.metrics)
    }

    /// The optimizer given to `compile`.
    pub fn optimizer(&self) -> Option<&dyn Optimizer> {
        self.train.compiled.as_ref().map(|c| &*c.optimizer)
    }

    /// Epochs completed by `fit` (or restored from a checkpoint).
    pub fn epochs_done(&self) -> usize {
        self.train.epochs_done
    }

    /// Installs the hook called between the backward pass and the optimizer step of every
    /// training step (replacing any earlier one; it survives `compile`).
    pub fn set_gradient_hook(&mut self, hook: impl GradientHook + 'static) -> &mut Self {
        self.train.hook = Some(Box::new(hook));
        self
    }

    /// Asks `fit` to stop after the current epoch (Keras's `model.stop_training = True`;
    /// for callbacks).
    pub fn stop_training(&mut self) {
        self.train.stop = true;
    }

    /// The optimizer's learning rate for the next update (`None` before `compile`).
    pub fn learning_rate(&self) -> Option<f32> {
        self.optimizer().map(Optimizer::learning_rate)
    }

    /// Sets the optimizer's learning rate to a constant (Keras's
    /// `model.optimizer.learning_rate = lr`; for callbacks).
    pub fn set_learning_rate(&mut self, lr: f32) -> Result<()> {
        let c = self.train.compiled.as_mut().ok_or(Error::NotCompiled)?;
        let rate = crate::optimizers::LearningRate::Constant(lr);
        rate.check()?;
        c.optimizer.set_learning_rate(rate);
        Ok(())
    }

    /// Removes the gradient hook.
    pub fn clear_gradient_hook(&mut self) -> &mut Self {
        self.train.hook = None;
        self
    }

    fn check_data(&self, data: &Dataset) -> Result<()> {
        let c = self.compiled()?;
        self.check_samples(data)?;
        c.loss.check_targets(data.targets(), c.classes)
    }

    /// Trains (Keras's `fit`): `validation` data, or else `opts.validation_split` of `train`,
    /// is evaluated after every epoch. Returns the per-epoch history.
    pub fn fit(
        &mut self,
        train: &Dataset,
        validation: Option<&Dataset>,
        opts: &FitOptions,
        callback: &mut dyn Callback,
    ) -> Result<History> {
        let mut split = None;
        let (train_n, val) = self.fit_data(train, validation, opts, &mut split)?;
        let pool = self.pool()?;
        pool.install(|| self.fit_loop(train, train_n, val, opts, callback, &data_parallel::Local))
    }

    /// `fit`'s checks and the validation split: the training samples used and the
    /// validation data.
    fn fit_data<'d>(
        &self,
        train: &Dataset,
        validation: Option<&'d Dataset>,
        opts: &FitOptions,
        split: &'d mut Option<Dataset>,
    ) -> Result<(usize, Option<&'d Dataset>)> {
        self.compiled()?;
        if opts.batch_size == 0 {
            return Err(Error::Config("batch size must be at least 1".into()));
        }
        if !(0.0..1.0).contains(&opts.validation_split) {
            return Err(Error::Config(format!("validation_split {} is not in [0, 1)", opts.validation_split)));
        }
        self.check_data(train)?;
        if let Some(v) = validation {
            self.check_data(v)?;
        }
        let (train_n, val) = match validation {
            Some(v) => (train.len(), Some(v)),
            None if opts.validation_split > 0.0 => {
                // As Keras, floor(n * (1 - split)) with the split as the decimal it was
                // written as (0.2, not the f32 0.2000000029...).
                let split_f64: f64 = opts.validation_split.to_string().parse().unwrap_or(0.0);
                let at = (train.len() as f64 * (1.0 - split_f64)).floor() as usize;
                let held: &'d Dataset = split.insert(train.slice_unchecked(at..train.len()));
                (at, Some(held))
            }
            None => (train.len(), None),
        };
        if train_n == 0 {
            return Err(Error::Data("no training samples".into()));
        }
        Ok((train_n, val))
    }

    fn fit_loop<X: data_parallel::Exchange>(
        &mut self,
        train: &Dataset,
        train_n: usize,
        val: Option<&Dataset>,
        opts: &FitOptions,
        callback: &mut dyn Callback,
        ex: &X,
    ) -> Result<History> {
        let bs = opts.batch_size;
        let steps = train_n.div_ceil(bs);
        let mut history = History::default();
        self.train.stop = false;
        // Across ranks, what a callback or a file write returns is agreed on, so an error on
        // one rank ends the fit on all of them instead of leaving them waiting.
        let r = callback.on_train_begin(self);
        ex.agree(r)?;
        for epoch in opts.initial_epoch + 1..=opts.epochs {
            let r = callback.on_epoch_begin(epoch, opts.epochs, steps, self);
            ex.agree(r)?;
            let start = Instant::now();
            let mut order = std::mem::take(&mut self.train.order);
            order.clear();
            order.extend(0..train_n);
            if opts.shuffle {
                self.rng.shuffle(&mut order);
            }
            let (mut loss_sum, mut counts, mut seen) = (0f64, Counts::default(), 0usize);
            for (step, idx) in order.chunks(bs).enumerate() {
                let n = idx.len();
                self.load_gathered(train, idx)?;
                let (loss, ok) = ex.train_step(self, n)?;
                if !loss.is_finite() && opts.stop_on_non_finite {
                    self.train.order = order;
                    return Err(Error::NonFiniteLoss { epoch, step: step + 1, loss });
                }
                loss_sum += f64::from(loss) * n as f64;
                counts = counts + ok;
                seen += n;
                callback.on_batch_end(&BatchLogs {
                    step: step + 1,
                    steps,
                    loss: (loss_sum / seen as f64) as f32,
                    accuracy: counts.accuracy(),
                    samples: seen,
                });
            }
            self.train.order = order;
            let seconds = start.elapsed().as_secs_f64();
            let val_start = Instant::now();
            let v = val.map(|v| self.evaluate_inner(v, bs, ex)).transpose()?;
            let val_seconds = v.map(|_| val_start.elapsed().as_secs_f64());
            self.train.epochs_done = epoch;
            let logs = EpochLogs {
                epoch,
                loss: (loss_sum / seen as f64) as f32,
                accuracy: counts.accuracy(),
                top_k_accuracy: self.top_k().map(|_| counts.top_k as f32 / seen as f32),
                val_loss: v.map(|e| e.loss),
                val_accuracy: v.map(|e| e.accuracy),
                val_top_k_accuracy: v.and_then(|e| e.top_k_accuracy),
                seconds,
                val_seconds,
                samples: seen,
            };
            let saved = match opts.checkpoint.as_ref().filter(|_| ex.chief()) {
                Some(path) => self.save_checkpoint(path),
                None => Ok(()),
            };
            let r = saved.and_then(|()| callback.on_epoch_end(&logs, self));
            ex.agree(r)?;
            history.epochs.push(logs);
            if self.train.stop {
                break;
            }
        }
        let r = callback.on_train_end(self);
        ex.agree(r)?;
        Ok(history)
    }

    /// Loads the samples `idx` of `data` (and their targets) as the batch to run.
    fn load_gathered(&mut self, data: &Dataset, idx: &[usize]) -> Result<()> {
        let plan = self.plan.as_ref().ok_or(Error::NotCompiled)?;
        let batch = &mut self.batch;
        batch.input.resize(idx.len() * plan.len[0], 0.0);
        data.gather(idx, &mut batch.input);
        batch.targets.gather_from(data.targets(), Some(idx));
        Ok(())
    }

    /// Mean loss and accuracy over `data` (Keras's `evaluate`), in batches of `batch_size`.
    pub fn evaluate(&mut self, data: &Dataset, batch_size: usize) -> Result<Evaluation> {
        self.check_data(data)?;
        if batch_size == 0 {
            return Err(Error::Config("batch size must be at least 1".into()));
        }
        let pool = self.pool()?;
        pool.install(|| self.evaluate_inner(data, batch_size, &data_parallel::Local))
    }

    fn evaluate_inner<X: data_parallel::Exchange>(&mut self, data: &Dataset, bs: usize, ex: &X) -> Result<Evaluation> {
        let (mut loss_sum, mut counts) = (0f64, Counts::default());
        let mut idx = Vec::with_capacity(bs);
        for b0 in (0..data.len()).step_by(bs) {
            idx.clear();
            idx.extend(b0..(b0 + bs).min(data.len()));
            self.load_gathered(data, &idx)?;
            let (loss, ok) = ex.run_loaded(self, false, false)?;
            loss_sum += loss;
            counts = counts + ok;
        }
        let n = data.len().max(1) as f64;
        Ok(Evaluation {
            loss: (loss_sum / n) as f32,
            accuracy: counts.accuracy(),
            top_k_accuracy: self.top_k().map(|_| (counts.top_k as f64 / n) as f32),
        })
    }
}

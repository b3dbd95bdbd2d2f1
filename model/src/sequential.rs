//! A Keras-like `Sequential` model: `add` layers, `compile` (which builds the weights and
//! plans the kernel steps once), then `fit`, `evaluate`, `predict`.
//!
//! Everything runs inside the model's own rayon pool (kernels called from outside a pool pay
//! its job injection on every call). Buffers are sized for the largest batch once and reused,
//! and images stay `u8` until their batch is converted. Every kernel gives results that do
//! not depend on the number of threads, so neither does training.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::layers::{Conv2D, Ctx, Layer, Param};
use crate::losses::{self, Loss, Metric};
use crate::optimizers::Optimizer;
use crate::plan::{self, Step, StepKind};
use crate::rng::Rng;
use crate::tensor::Tensor;
use std::sync::Arc;
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

/// Running figures of the epoch in progress, after each batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchLogs {
    /// 1-based step within the epoch.
    pub step: usize,
    /// Steps in the epoch.
    pub steps: usize,
    /// Mean loss over the samples seen so far this epoch.
    pub loss: f32,
    /// Accuracy over the samples seen so far this epoch.
    pub accuracy: f32,
    /// Samples seen so far this epoch.
    pub samples: usize,
}

/// One epoch's results.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochLogs {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss (over samples, weights changing during the epoch, as Keras).
    pub loss: f32,
    /// Training accuracy.
    pub accuracy: f32,
    /// Validation loss and accuracy, when there is validation data.
    pub val_loss: Option<f32>,
    /// Validation accuracy.
    pub val_accuracy: Option<f32>,
    /// Wall-clock seconds of the training part of the epoch.
    pub seconds: f64,
    /// Training samples.
    pub samples: usize,
}

/// What `fit` returns: one entry per epoch run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Per-epoch results.
    pub epochs: Vec<EpochLogs>,
}

/// Loss and accuracy over a dataset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean loss.
    pub loss: f32,
    /// Accuracy.
    pub accuracy: f32,
}

/// Progress hooks of `fit` (all optional); `()` ignores everything.
pub trait Callback: Send {
    /// An epoch starts (1-based), with `steps` batches.
    fn on_epoch_begin(&mut self, _epoch: usize, _epochs: usize, _steps: usize) {}
    /// A batch is done.
    fn on_batch_end(&mut self, _logs: &BatchLogs) {}
    /// An epoch is done (validation included).
    fn on_epoch_end(&mut self, _logs: &EpochLogs) {}
}

impl Callback for () {}

struct Compiled {
    optimizer: Box<dyn Optimizer>,
    loss: Loss,
    metrics: Vec<Metric>,
    /// The trailing softmax is fused into the loss (the model computes logits).
    logits: bool,
    classes: usize,
}

/// A stack of layers trained as one model.
pub struct Sequential {
    name: String,
    layers: Vec<Box<dyn Layer>>,
    input_shape: Option<Vec<usize>>,
    /// Per-layer output shapes, once built.
    shapes: Vec<Vec<usize>>,
    steps: Vec<Step>,
    /// The first step with weights (steps before it run no backward pass).
    first_trainable: usize,
    compiled: Option<Compiled>,
    rng: Rng,
    fuse: bool,
    pool: Arc<rayon::ThreadPool>,
    /// `acts[0]` the input batch, `acts[s + 1]` the output of step `s`; `grads` alike.
    acts: Vec<Vec<f32>>,
    grads: Vec<Vec<f32>>,
    labels: Vec<u32>,
    order: Vec<usize>,
    epochs_done: usize,
}

/// More threads than any machine could use: past it, `set_threads` is an error rather than
/// an attempt to start them until memory runs out.
const MAX_THREADS: usize = 4096;

fn build_pool(threads: usize) -> Result<Arc<rayon::ThreadPool>> {
    if threads > MAX_THREADS {
        return Err(Error::Config(format!("{threads} threads: at most {MAX_THREADS} (0 for one per CPU)")));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("ember-{i}"))
        .build()
        .map_err(|e| Error::Config(format!("cannot start {threads} threads: {e}")))?;
    Ok(Arc::new(pool))
}

impl Default for Sequential {
    fn default() -> Self {
        Self::new()
    }
}

impl Sequential {
    /// An empty model, seed 0, all CPUs.
    pub fn new() -> Self {
        Sequential {
            name: "sequential".into(),
            layers: Vec::new(),
            input_shape: None,
            shapes: Vec::new(),
            steps: Vec::new(),
            first_trainable: 0,
            compiled: None,
            rng: Rng::new(0),
            fuse: true,
            pool: build_pool(0).expect("the default rayon pool starts"),
            acts: Vec::new(),
            grads: Vec::new(),
            labels: Vec::new(),
            order: Vec::new(),
            epochs_done: 0,
        }
    }

    /// Seeds the generator behind weight initialisation, shuffling and dropout (call before
    /// `compile`).
    pub fn seed(&mut self, seed: u64) -> &mut Self {
        self.rng = Rng::new(seed);
        self
    }

    /// Sets the per-sample input shape (else the first layer's `input_shape`).
    pub fn input(&mut self, shape: &[usize]) -> &mut Self {
        self.input_shape = Some(shape.to_vec());
        self
    }

    /// Runs on `threads` threads (0: one per CPU; at most 4096).
    pub fn set_threads(&mut self, threads: usize) -> Result<&mut Self> {
        self.pool = build_pool(threads)?;
        Ok(self)
    }

    /// The number of threads the model runs on.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Enables (default) or disables the fused steps (for comparisons; results agree).
    pub fn set_fusion(&mut self, on: bool) -> &mut Self {
        self.fuse = on;
        if !self.shapes.is_empty() {
            self.replan();
        }
        self
    }

    /// Appends a layer, named as Keras names it (`conv2d`, `conv2d_1`, ...). Adding after
    /// `compile` requires compiling again.
    pub fn add(&mut self, mut layer: impl Layer) -> &mut Self {
        let base = snake(layer.class_name());
        let count = self.layers.iter().filter(|l| l.class_name() == layer.class_name()).count();
        layer.set_name(if count == 0 { base } else { format!("{base}_{count}") });
        self.layers.push(Box::new(layer));
        self.shapes.clear();
        self.compiled = None;
        self
    }

    /// The layers.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }
    /// The layers, mutable (weights can be set through their parameters).
    pub fn layers_mut(&mut self) -> &mut [Box<dyn Layer>] {
        &mut self.layers
    }
    /// Epochs completed by `fit` (or restored from a checkpoint).
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }
    pub(crate) fn set_epochs_done(&mut self, e: usize) {
        self.epochs_done = e;
    }
    pub(crate) fn rng(&self) -> &Rng {
        &self.rng
    }
    pub(crate) fn set_rng(&mut self, rng: Rng) {
        self.rng = rng;
    }
    pub(crate) fn optimizer(&self) -> Option<&dyn Optimizer> {
        self.compiled.as_ref().map(|c| &*c.optimizer)
    }
    pub(crate) fn optimizer_mut(&mut self) -> Option<&mut Box<dyn Optimizer>> {
        self.compiled.as_mut().map(|c| &mut c.optimizer)
    }

    /// The per-sample input shape, once known.
    pub fn input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref().or_else(|| self.layers.first().and_then(|l| l.declared_input_shape()))
    }

    /// The per-sample output shape of every layer (after `compile`).
    pub fn output_shapes(&self) -> &[Vec<usize>] {
        &self.shapes
    }

    /// Every parameter with its Keras name (`conv2d/kernel`), in model order.
    pub fn named_params(&self) -> Vec<(String, &Param)> {
        self.layers
            .iter()
            .flat_map(|l| l.params().iter().map(move |p| (format!("{}/{}", l.name(), p.name), p)))
            .collect()
    }

    /// Total number of weights.
    pub fn param_count(&self) -> usize {
        self.layers.iter().flat_map(|l| l.params()).map(|p| p.value.len()).sum()
    }

    /// Builds the layers (creating their weights) if not done yet.
    pub fn build(&mut self) -> Result<()> {
        if !self.shapes.is_empty() {
            return Ok(());
        }
        let input = self.input_shape().map(<[usize]>::to_vec).ok_or_else(|| {
            Error::Config("the model's input shape is unknown: give the first layer an input_shape".into())
        })?;
        if self.layers.is_empty() {
            return Err(Error::Config("the model has no layers".into()));
        }
        let mut shape = input.clone();
        let mut shapes = Vec::with_capacity(self.layers.len());
        for l in &mut self.layers {
            shape = l.build(&shape, &mut self.rng)?;
            shapes.push(shape.clone());
        }
        self.input_shape = Some(input);
        self.shapes = shapes;
        self.replan();
        Ok(())
    }

    fn replan(&mut self) {
        self.steps = plan::plan(&self.layers, &self.shapes, self.fuse);
        let has_params = |s: &Step| match s.kind {
            StepKind::Layer(i) => !self.layers[i].params().is_empty(),
            StepKind::ConvReluPool { conv, .. } => !self.layers[conv].params().is_empty(),
        };
        self.first_trainable = self.steps.iter().position(has_params).unwrap_or(self.steps.len());
    }

    /// The metrics given to `compile` (accuracy is always computed).
    pub fn metrics(&self) -> &[Metric] {
        self.compiled.as_ref().map_or(&[], |c| &c.metrics)
    }

    /// The plan, one step per line (which layers run fused).
    pub fn plan(&self) -> String {
        plan::describe(&self.layers, &self.steps)
    }

    /// Builds the model, plans its steps and sets the optimizer, loss and metrics. The loss
    /// needs a model output of rank 1 (`[classes]`).
    pub fn compile(&mut self, optimizer: impl Optimizer + 'static, loss: Loss, metrics: &[Metric]) -> Result<()> {
        optimizer.check()?;
        self.build()?;
        let out = self.shapes.last().expect("built models have layers");
        let &[classes] = &out[..] else {
            return Err(Error::Config(format!(
                "{} needs outputs [classes]; the model outputs {out:?} per sample (add Flatten and Dense)",
                loss.name()
            )));
        };
        let Loss::SparseCategoricalCrossentropy { from_logits } = loss;
        let last = self.layers.last_mut().expect("built models have layers");
        let logits = last.emit_logits(!from_logits);
        self.compiled =
            Some(Compiled { optimizer: Box::new(optimizer), loss, metrics: metrics.to_vec(), logits, classes });
        Ok(())
    }

    fn compiled(&self) -> Result<&Compiled> {
        self.compiled.as_ref().ok_or(Error::NotCompiled)
    }

    fn input_len(&self) -> usize {
        self.input_shape.as_ref().map_or(0, |s| s.iter().product())
    }

    /// Sizes the buffers for a batch of `n` samples: the input for all of it, the
    /// intermediate activations and gradients for one part of [`plan::PART`] samples (no
    /// allocation once the largest batch has been seen).
    fn size_buffers(&mut self, n: usize) {
        let part = n.min(plan::PART);
        let input_len = self.input_len();
        let lens = std::iter::once(input_len).chain(self.steps.iter().map(|s| s.out_len));
        self.acts.resize_with(self.steps.len() + 1, Vec::new);
        self.grads.resize_with(self.steps.len() + 1, Vec::new);
        for (s, ((a, g), len)) in self.acts.iter_mut().zip(self.grads.iter_mut()).zip(lens).enumerate() {
            a.resize(if s == 0 { n } else { part } * len, 0.0);
            g.resize(if s == 0 { 0 } else { part * len }, 0.0);
        }
    }

    fn check_data(&self, data: &Dataset) -> Result<()> {
        let classes = self.compiled()?.classes;
        let want = self.input_shape.as_deref().unwrap_or(&[]);
        if data.sample_shape() != want {
            return Err(Error::Data(format!(
                "samples of shape {:?} do not fit the model's input {want:?}",
                data.sample_shape()
            )));
        }
        losses::check_labels(data.labels(), classes)
    }

    /// Forward pass of samples `lo..lo + m` of the batch in `acts[0]` (`m` at most one part).
    fn forward(&mut self, lo: usize, m: usize, training: bool) -> Result<()> {
        let in_len = self.input_len();
        let Sequential { layers, steps, acts, rng, .. } = self;
        for (s, step) in steps.iter().enumerate() {
            let (done, rest) = acts.split_at_mut(s + 1);
            let x =
                if s == 0 { &done[0][lo * in_len..(lo + m) * in_len] } else { &done[s][..m * steps[s - 1].out_len] };
            let y = &mut rest[0][..m * step.out_len];
            match step.kind {
                StepKind::Layer(i) => layers[i].forward(x, y, m, &mut Ctx { training, rng })?,
                StepKind::ConvReluPool { conv, .. } => conv_layer(&mut layers[conv]).fused_forward(x, y, m)?,
            }
        }
        Ok(())
    }

    /// Backward pass of samples `lo..lo + m` (after their forward pass and loss); parameter
    /// gradients are added to the current ones with `accumulate`.
    fn backward(&mut self, lo: usize, m: usize, accumulate: bool) -> Result<()> {
        let in_len = self.input_len();
        let Sequential { layers, steps, acts, grads, first_trainable, .. } = self;
        for s in (*first_trainable..steps.len()).rev() {
            let x =
                if s == 0 { &acts[0][lo * in_len..(lo + m) * in_len] } else { &acts[s][..m * steps[s - 1].out_len] };
            let y = &acts[s + 1][..m * steps[s].out_len];
            let (below, above) = grads.split_at_mut(s + 1);
            let dy = &mut above[0][..m * steps[s].out_len];
            let dx = (s > *first_trainable).then(|| &mut below[s][..m * steps[s - 1].out_len]);
            match steps[s].kind {
                StepKind::Layer(i) => layers[i].backward(x, y, dy, dx, m, accumulate)?,
                StepKind::ConvReluPool { conv, .. } => {
                    conv_layer(&mut layers[conv]).fused_backward(x, y, dy, dx, m, accumulate)?
                }
            }
        }
        Ok(())
    }

    /// Loss of the last forward pass (samples `lo..lo + m`, labels in `self.labels`) summed
    /// over them, its gradient for a batch of `n` in the last gradient buffer, and the
    /// number of correct predictions.
    fn loss(&mut self, lo: usize, m: usize, n: usize) -> Result<(f64, usize)> {
        let c = self.compiled.as_ref().ok_or(Error::NotCompiled)?;
        let last = self.steps.len();
        let out = &self.acts[last][..m * c.classes];
        let dout = &mut self.grads[last][..m * c.classes];
        let labels = &self.labels[lo..lo + m];
        let Loss::SparseCategoricalCrossentropy { from_logits } = c.loss;
        let scale = 1.0 / n as f32;
        let loss = if c.logits || from_logits {
            losses::sparse_ce_from_logits(out, labels, c.classes, scale, dout)?
        } else {
            losses::sparse_ce_from_probs(out, labels, c.classes, scale, dout)?
        };
        Ok((loss, losses::correct_predictions(out, labels, c.classes)?))
    }

    /// Forward, loss and (with `train`) backward over the loaded batch of `n`, part by part:
    /// each part's activations stay in cache and its parameter gradients add up. Returns the
    /// summed loss and the correct predictions.
    fn batch_pass(&mut self, n: usize, training: bool, train: bool) -> Result<(f64, usize)> {
        let (mut loss, mut correct) = (0f64, 0usize);
        for (k, lo) in (0..n).step_by(plan::PART).enumerate() {
            let m = plan::PART.min(n - lo);
            self.forward(lo, m, training)?;
            let (l, c) = self.loss(lo, m, n)?;
            if train {
                self.backward(lo, m, k > 0)?;
            }
            loss += l;
            correct += c;
        }
        Ok((loss, correct))
    }

    fn update(&mut self) -> Result<()> {
        let Sequential { layers, compiled, .. } = self;
        let c = compiled.as_mut().ok_or(Error::NotCompiled)?;
        c.optimizer.apply(&mut layers.iter_mut().flat_map(|l| l.params_mut().iter_mut()))
    }

    /// Forward and backward over one batch (`x`: `n` samples, `labels`: `n` labels):
    /// returns the loss and leaves the gradients in the parameters, without updating them.
    /// For gradient checks and custom training loops.
    pub fn loss_and_gradients(&mut self, x: &[f32], labels: &[u32]) -> Result<f32> {
        let n = self.load_batch(x, labels)?;
        let pool = self.pool.clone();
        pool.install(|| Ok((self.batch_pass(n, true, true)?.0 / n as f64) as f32))
    }

    /// One training step on one batch (Keras's `train_on_batch`): forward, loss, backward,
    /// update. Returns the batch's loss and accuracy (of the predictions before the update).
    pub fn train_on_batch(&mut self, x: &[f32], labels: &[u32]) -> Result<Evaluation> {
        let n = self.load_batch(x, labels)?;
        let pool = self.pool.clone();
        let (loss, correct) = pool.install(|| self.train_step(n))?;
        Ok(Evaluation { loss, accuracy: correct as f32 / n as f32 })
    }

    fn load_batch(&mut self, x: &[f32], labels: &[u32]) -> Result<usize> {
        let c = self.compiled()?;
        let n = labels.len();
        losses::check_labels(labels, c.classes)?;
        if n == 0 || x.len() != n * self.input_len() {
            return Err(Error::Data(format!(
                "{} input values for {n} labels; the model takes {} values per sample",
                x.len(),
                self.input_len()
            )));
        }
        self.size_buffers(n);
        self.acts[0].copy_from_slice(x);
        self.labels.clear();
        self.labels.extend_from_slice(labels);
        Ok(n)
    }

    /// The step itself, on buffers already loaded; inside the pool.
    fn train_step(&mut self, n: usize) -> Result<(f32, usize)> {
        let (loss, correct) = self.batch_pass(n, true, true)?;
        self.update()?;
        Ok(((loss / n as f64) as f32, correct))
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
        let split;
        let (train_n, val) = match validation {
            Some(v) => (train.len(), Some(v)),
            None if opts.validation_split > 0.0 => {
                // As Keras, floor(n * (1 - split)) with the split as the decimal it was
                // written as (0.2, not the f32 0.2000000029...).
                let split_f64: f64 = opts.validation_split.to_string().parse().unwrap_or(0.0);
                let at = (train.len() as f64 * (1.0 - split_f64)).floor() as usize;
                split = train.slice_unchecked(at..train.len());
                (at, Some(&split))
            }
            None => (train.len(), None),
        };
        if train_n == 0 {
            return Err(Error::Data("no training samples".into()));
        }
        let pool = self.pool.clone();
        pool.install(|| self.fit_loop(train, train_n, val, opts, callback))
    }

    fn fit_loop(
        &mut self,
        train: &Dataset,
        train_n: usize,
        val: Option<&Dataset>,
        opts: &FitOptions,
        callback: &mut dyn Callback,
    ) -> Result<History> {
        let bs = opts.batch_size;
        let steps = train_n.div_ceil(bs);
        let mut history = History::default();
        for epoch in opts.initial_epoch + 1..=opts.epochs {
            callback.on_epoch_begin(epoch, opts.epochs, steps);
            let start = Instant::now();
            let mut order = std::mem::take(&mut self.order);
            order.clear();
            order.extend(0..train_n);
            if opts.shuffle {
                self.rng.shuffle(&mut order);
            }
            let (mut loss_sum, mut correct, mut seen) = (0f64, 0usize, 0usize);
            for (step, idx) in order.chunks(bs).enumerate() {
                let n = idx.len();
                self.size_buffers(n);
                train.gather(idx, &mut self.acts[0]);
                self.labels.clear();
                self.labels.extend(idx.iter().map(|&i| train.labels()[i]));
                let (loss, ok) = self.train_step(n)?;
                if !loss.is_finite() && opts.stop_on_non_finite {
                    self.order = order;
                    return Err(Error::NonFiniteLoss { epoch, step: step + 1, loss });
                }
                loss_sum += f64::from(loss) * n as f64;
                correct += ok;
                seen += n;
                callback.on_batch_end(&BatchLogs {
                    step: step + 1,
                    steps,
                    loss: (loss_sum / seen as f64) as f32,
                    accuracy: correct as f32 / seen as f32,
                    samples: seen,
                });
            }
            self.order = order;
            let seconds = start.elapsed().as_secs_f64();
            let v = val.map(|v| self.evaluate_inner(v, bs)).transpose()?;
            self.epochs_done = epoch;
            let logs = EpochLogs {
                epoch,
                loss: (loss_sum / seen as f64) as f32,
                accuracy: correct as f32 / seen as f32,
                val_loss: v.map(|e| e.loss),
                val_accuracy: v.map(|e| e.accuracy),
                seconds,
                samples: seen,
            };
            if let Some(path) = &opts.checkpoint {
                self.save_checkpoint(path)?;
            }
            callback.on_epoch_end(&logs);
            history.epochs.push(logs);
        }
        Ok(history)
    }

    /// Mean loss and accuracy over `data` (Keras's `evaluate`), in batches of `batch_size`.
    pub fn evaluate(&mut self, data: &Dataset, batch_size: usize) -> Result<Evaluation> {
        self.check_data(data)?;
        if batch_size == 0 {
            return Err(Error::Config("batch size must be at least 1".into()));
        }
        let pool = self.pool.clone();
        pool.install(|| self.evaluate_inner(data, batch_size))
    }

    fn evaluate_inner(&mut self, data: &Dataset, bs: usize) -> Result<Evaluation> {
        let (mut loss_sum, mut correct) = (0f64, 0usize);
        let mut idx = Vec::with_capacity(bs);
        for b0 in (0..data.len()).step_by(bs) {
            idx.clear();
            idx.extend(b0..(b0 + bs).min(data.len()));
            let n = idx.len();
            self.size_buffers(n);
            data.gather(&idx, &mut self.acts[0]);
            self.labels.clear();
            self.labels.extend_from_slice(&data.labels()[b0..b0 + n]);
            let (loss, ok) = self.batch_pass(n, false, false)?;
            loss_sum += loss;
            correct += ok;
        }
        let n = data.len().max(1) as f64;
        Ok(Evaluation { loss: (loss_sum / n) as f32, accuracy: (correct as f64 / n) as f32 })
    }

    /// The model's outputs for every sample of `data` (Keras's `predict`): `[n, classes]`
    /// probabilities when the model ends in a softmax. Labels are ignored.
    pub fn predict(&mut self, data: &Dataset, batch_size: usize) -> Result<Tensor> {
        let c = self.compiled()?;
        let (classes, logits) = (c.classes, c.logits);
        if data.sample_shape() != self.input_shape.as_deref().unwrap_or(&[]) {
            return Err(Error::Data(format!("samples of shape {:?} do not fit the model", data.sample_shape())));
        }
        if batch_size == 0 {
            return Err(Error::Config("batch size must be at least 1".into()));
        }
        let mut out = Vec::with_capacity(data.len() * classes);
        let pool = self.pool.clone();
        pool.install(|| -> Result<()> {
            let mut idx = Vec::with_capacity(batch_size);
            for b0 in (0..data.len()).step_by(batch_size) {
                idx.clear();
                idx.extend(b0..(b0 + batch_size).min(data.len()));
                self.size_buffers(idx.len());
                data.gather(&idx, &mut self.acts[0]);
                for lo in (0..idx.len()).step_by(plan::PART) {
                    let m = plan::PART.min(idx.len() - lo);
                    self.forward(lo, m, false)?;
                    out.extend_from_slice(&self.acts[self.steps.len()][..m * classes]);
                }
            }
            Ok(())
        })?;
        if logits {
            ember_kernels::elementwise::softmax(&mut out, classes)?;
        }
        Tensor::new(vec![data.len(), classes], out)
    }

    /// The output of layer `layer` (by name) for one sample (feature maps, for pictures);
    /// runs the layers up to it one by one, unfused.
    pub fn layer_output(&mut self, data: &Dataset, sample: usize, layer: &str) -> Result<Tensor> {
        let last = self
            .layers
            .iter()
            .position(|l| l.name() == layer)
            .ok_or_else(|| Error::Config(format!("no layer named {layer:?}")))?;
        if sample >= data.len() || data.sample_shape() != self.input_shape.as_deref().unwrap_or(&[]) {
            return Err(Error::Data(format!("sample {sample} of a dataset of {} does not fit the model", data.len())));
        }
        self.build()?;
        let mut x = data.sample(sample)?;
        let mut rng = self.rng.clone();
        let pool = self.pool.clone();
        pool.install(|| -> Result<()> {
            for (i, l) in self.layers.iter_mut().enumerate().take(last + 1) {
                let mut y = vec![0.0; self.shapes[i].iter().product()];
                let was_logits = l.emit_logits(false);
                l.forward(&x, &mut y, 1, &mut Ctx { training: false, rng: &mut rng })?;
                l.emit_logits(was_logits);
                x = y;
            }
            Ok(())
        })?;
        Tensor::new(self.shapes[last].clone(), x)
    }

    /// A Keras-style table of layers, output shapes and parameter counts.
    pub fn summary(&self) -> String {
        let rows: Vec<[String; 3]> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let shape = self.shapes.get(i).map_or("?".to_string(), |s| {
                    let dims: Vec<String> =
                        std::iter::once("None".to_string()).chain(s.iter().map(|d| d.to_string())).collect();
                    format!("({})", dims.join(", "))
                });
                let params: usize = l.params().iter().map(|p| p.value.len()).sum();
                [format!("{} ({})", l.name(), l.class_name()), shape, thousands(params)]
            })
            .collect();
        let w = [33, 24, 15];
        let line = |l: char, m: char, r: char, f: char| {
            format!(
                "{l}{}{m}{}{m}{}{r}\n",
                f.to_string().repeat(w[0]),
                f.to_string().repeat(w[1]),
                f.to_string().repeat(w[2])
            )
        };
        let mut s = format!("Model: \"{}\"\n", self.name);
        s += &line('┏', '┳', '┓', '━');
        s += &format!(
            "┃ {:<a$}┃ {:<b$}┃ {:>c$} ┃\n",
            "Layer (type)",
            "Output Shape",
            "Param #",
            a = w[0] - 1,
            b = w[1] - 1,
            c = w[2] - 2
        );
        s += &line('┡', '╇', '┩', '━');
        for (i, r) in rows.iter().enumerate() {
            s += &format!("│ {:<a$}│ {:<b$}│ {:>c$} │\n", r[0], r[1], r[2], a = w[0] - 1, b = w[1] - 1, c = w[2] - 2);
            if i + 1 < rows.len() {
                s += &line('├', '┼', '┤', '─');
            }
        }
        s += &line('└', '┴', '┘', '─');
        let total = self.param_count();
        s += &format!(" Total params: {} ({})\n", thousands(total), bytes(total * 4));
        s += &format!(" Trainable params: {} ({})\n", thousands(total), bytes(total * 4));
        s += " Non-trainable params: 0 (0.00 B)\n";
        s
    }
}

fn conv_layer(l: &mut Box<dyn Layer>) -> &mut Conv2D {
    l.as_any_mut().downcast_mut::<Conv2D>().expect("the plan fuses only Conv2D layers")
}

/// `Conv2D` -> `conv2d`, `MaxPooling2D` -> `max_pooling2d` (Keras's default names).
fn snake(class: &str) -> String {
    let mut s = String::new();
    let chars: Vec<char> = class.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower = i > 0 && chars[i - 1].is_ascii_lowercase();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if i > 0 && (prev_lower || (next_lower && chars[i - 1].is_ascii_uppercase())) {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn bytes(b: usize) -> String {
    match b {
        b if b >= 1 << 20 => format!("{:.2} MB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.2} KB", b as f64 / 1024.0),
        b => format!("{b}.00 B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_names() {
        assert_eq!(snake("Conv2D"), "conv2d");
        assert_eq!(snake("MaxPooling2D"), "max_pooling2d");
        assert_eq!(snake("AveragePooling2D"), "average_pooling2d");
        assert_eq!(snake("Dense"), "dense");
        assert_eq!(thousands(54410), "54,410");
        assert_eq!(bytes(54410 * 4), "212.54 KB");
    }
}

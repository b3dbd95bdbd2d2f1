//! The model: a built graph, its parameter store, its plan and its thread pool. Made by
//! [`crate::Sequential`] or from the functional form ([`Model::new`]); trained through the
//! trainer's methods (`compile`, `fit`, `evaluate`, in [`crate::trainer`]).

mod saving;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::graph::executor::{self, Batch, Shard};
use crate::graph::plan::{Plan, PlanOptions};
use crate::graph::profile::{OpClock, OpProfile};
use crate::graph::{self, Graph, Node};
use crate::layers::{Activation, Flops, Layer, Mode};
use crate::params::{Arena, ParamKind, ParamStore};
use crate::rng::Rng;
use crate::tensor::Tensor;
use crate::trainer::TrainState;
use ember_kernels::activation::Act;
use std::sync::Arc;

/// A model: layers in a graph, their tensors in a [`ParamStore`], the plan that runs them.
pub struct Model {
    /// Made by [`Model::new`] (Keras's functional `Model`), not by [`crate::Sequential`]:
    /// its name and the layout of its summary.
    pub(crate) functional: bool,
    pub(crate) graph: Graph,
    pub(crate) store: ParamStore,
    pub(crate) plan: Option<Plan>,
    /// The plan of predict and evaluate: no gradients, batch normalization folded.
    pub(crate) infer_plan: Option<Plan>,
    pub(crate) fuse: bool,
    /// The pool set by `set_threads`; `None`: the shared pool of one thread per CPU.
    pub(crate) pool: Option<Arc<rayon::ThreadPool>>,
    pub(crate) rng: Rng,
    /// The seed the model was given: with the step number, it seeds dropout masks.
    pub(crate) seed: u64,
    /// The batch being run, and the shards it runs in (with their gradient arenas, past the
    /// store's own, which is shard 0's).
    pub(crate) batch: Batch,
    pub(crate) shards: Vec<Shard>,
    pub(crate) shard_grads: Vec<Arena>,
    pub(crate) train: TrainState,
    /// Whether the plans time their ops ([`Model::set_op_profiling`]).
    pub(crate) op_profiling: bool,
}

impl Model {
    /// Keras's `keras.Model(inputs, outputs)`: the model from `input` (an [`crate::Input`])
    /// to `output`, made of every layer `output` depends on. Layers are named as Keras
    /// names them, in topological order.
    pub fn new(input: &Node, output: &Node) -> Result<Model> {
        let mut m = Model::from_graph(graph::from_nodes(input, output)?);
        m.functional = true;
        Ok(m)
    }

    pub(crate) fn from_graph(graph: Graph) -> Model {
        Model {
            functional: false,
            graph,
            store: ParamStore::default(),
            plan: None,
            infer_plan: None,
            fuse: true,
            pool: None,
            rng: Rng::new(0),
            seed: 0,
            batch: Batch::default(),
            shards: Vec::new(),
            shard_grads: Vec::new(),
            train: TrainState::default(),
            op_profiling: false,
        }
    }

    /// The model's name (`sequential`, `functional`).
    pub fn name(&self) -> &str {
        if self.functional {
            "functional"
        } else {
            "sequential"
        }
    }

    /// Seeds the generator behind weight initialisation and shuffling, and dropout's masks
    /// (call before `compile`).
    pub fn seed(&mut self, seed: u64) -> &mut Self {
        self.rng = Rng::new(seed);
        self.seed = seed;
        self
    }

    /// Runs on `threads` threads (0: one per CPU; at most 4096), from a pool shared with
    /// every model of the same count.
    pub fn set_threads(&mut self, threads: usize) -> Result<&mut Self> {
        self.pool = Some(crate::threads::pool(threads)?);
        Ok(self)
    }

    /// The number of threads the model runs on.
    pub fn threads(&self) -> usize {
        self.pool
            .as_ref()
            .map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), |p| p.current_num_threads())
    }

    /// Runs `f` with the model on the model's own threads and returns what it returns: a
    /// training loop of your own (`train_on_batch`, `predict`, `evaluate` called in turn)
    /// runs its calls where they would have run anyway, without each call handing its work
    /// from your thread to the pool and waiting to be woken with the result. `fit` does this
    /// for its whole loop. The hand-off is a wake-up of a pool thread and one of yours per
    /// call: tens of microseconds on a virtual machine, ~10% of a step of the reference CNN
    /// at batch 32. Results are the same bits either way.
    ///
    /// ```
    /// use ember_model::layers::{Activation, Dense};
    /// use ember_model::{losses::Loss, optimizers::Sgd, Sequential};
    ///
    /// let mut model = Sequential::new();
    /// model.add(Dense::new(3).activation(Activation::Softmax).input_shape(4)).set_threads(1)?;
    /// model.compile(Sgd::new().learning_rate(0.1), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])?;
    /// let (x, labels) = ([0.5, -1.0, 2.0, 0.0, 1.0, 0.5, -0.5, 1.5], [0u32, 2]); // two samples
    /// let losses = model.in_threads(|m| {
    ///     (0..3).map(|_| m.train_on_batch(&x, &labels).map(|e| e.loss)).collect::<Result<Vec<f32>, _>>()
    /// })??;
    /// assert!(losses[2] < losses[0]);
    /// # Ok::<(), ember_model::Error>(())
    /// ```
    pub fn in_threads<R: Send>(&mut self, f: impl FnOnce(&mut Model) -> R + Send) -> Result<R> {
        let pool = self.pool()?;
        Ok(pool.install(|| f(self)))
    }

    /// The pool the model runs in.
    pub(crate) fn pool(&self) -> Result<Arc<rayon::ThreadPool>> {
        match &self.pool {
            Some(p) => Ok(p.clone()),
            None => crate::threads::pool(0),
        }
    }

    /// Enables (default) or disables the fused conv+ReLU+pool steps (for comparisons;
    /// results agree to rounding).
    pub fn set_fusion(&mut self, on: bool) -> &mut Self {
        self.fuse = on;
        if self.plan.is_some() {
            self.plan = None;
            let _ = self.replan();
        }
        self
    }

    /// The layers, in the graph's (topological) order.
    pub fn layers(&self) -> impl Iterator<Item = &dyn Layer> {
        self.graph.nodes.iter().filter_map(|n| n.layer.as_deref())
    }

    /// The layer named `name`.
    pub fn layer(&self, name: &str) -> Option<&dyn Layer> {
        self.graph.find(name).and_then(|i| self.graph.layer(i))
    }

    /// The parameter store (every tensor, by id or name; values and gradients).
    pub fn params(&self) -> &ParamStore {
        &self.store
    }

    /// The parameter store, mutable (set weights through it).
    pub fn params_mut(&mut self) -> &mut ParamStore {
        &mut self.store
    }

    /// Number of trainable weights.
    pub fn param_count(&self) -> usize {
        self.store.table().count(ParamKind::Trainable)
    }

    /// The per-sample input shape, once known.
    pub fn input_shape(&self) -> Option<&[usize]> {
        self.graph.nodes[0].shape.as_deref().or_else(|| {
            let first = self.graph.nodes.iter().position(|n| n.inputs.contains(&0))?;
            self.graph.layer(first)?.declared_input_shape()
        })
    }

    /// The per-sample output shape of every layer, in order (after `build`).
    pub fn output_shapes(&self) -> Vec<Vec<usize>> {
        if !self.graph.built {
            return Vec::new();
        }
        (1..self.graph.nodes.len()).map(|i| self.graph.shape(i).to_vec()).collect()
    }

    /// The per-sample shape of the model's output (after `build`).
    pub fn output_shape(&self) -> Option<&[usize]> {
        self.graph.built.then(|| self.graph.shape(self.graph.output()))
    }

    /// Builds the layers (creating their weights) if not done yet.
    pub fn build(&mut self) -> Result<()> {
        if self.graph.built {
            return Ok(());
        }
        self.plan = None;
        self.store = self.graph.build(&mut self.rng)?;
        self.replan()
    }

    /// Plans the built graph (with the compiled loss, if any).
    pub(crate) fn replan(&mut self) -> Result<()> {
        // Before `compile` the plan runs for predictions: a softmax output may run as logits.
        let absorb = self.train.compiled.as_ref().map_or(Some(Activation::Softmax), |c| c.loss.absorbs());
        self.plan = Some(Plan::new(&self.graph, PlanOptions::training(self.fuse, absorb))?);
        self.infer_plan = Some(Plan::new(&self.graph, PlanOptions::inference(self.fuse, absorb))?);
        self.set_op_profiling(self.op_profiling);
        Ok(())
    }

    /// With `on`, times every op of the model's plans from now on, forward and backward, as
    /// the executor runs them (a plan made later, by `compile`, too); off drops the times.
    /// [`Model::op_profile`] then tells where training steps and inference spend their
    /// time, layer by layer, inside the network (where a layer's data may come from L3,
    /// unlike in a benchmark of its kernel alone). Off by default; profiling changes no
    /// value, only adds a clock read per op and part.
    pub fn set_op_profiling(&mut self, on: bool) {
        self.op_profiling = on;
        for plan in [&mut self.plan, &mut self.infer_plan].into_iter().flatten() {
            plan.clock = on.then(|| OpClock::new(plan.ops.len()));
        }
    }

    /// The ops' times since profiling was switched on ([`Model::set_op_profiling`]) or last
    /// reset; empty while it is off. Its `Display` is a table per plan.
    pub fn op_profile(&self) -> OpProfile {
        let times =
            |plan: &Option<Plan>| plan.as_ref().and_then(|p| p.clock.as_ref().map(|c| c.times(p))).unwrap_or_default();
        OpProfile { training: times(&self.plan), inference: times(&self.infer_plan) }
    }

    /// Starts the ops' times again from zero (where profiling is on).
    pub fn reset_op_profile(&mut self) {
        self.set_op_profiling(self.op_profiling);
    }

    /// The training plan, one op per line (which layers run fused).
    pub fn plan(&self) -> String {
        self.plan.as_ref().map_or_else(String::new, Plan::describe)
    }

    /// The plan of `predict` and `evaluate`, one op per line (batch normalization folded
    /// into the convolution before it).
    pub fn inference_plan(&self) -> String {
        self.infer_plan.as_ref().map_or_else(String::new, Plan::describe)
    }

    pub(crate) fn input_len(&self) -> usize {
        self.graph.len_of(0)
    }

    /// Checks that `data`'s samples fit the model's input.
    pub(crate) fn check_samples(&self, data: &Dataset) -> Result<()> {
        let want = self.input_shape().unwrap_or(&[]);
        if data.sample_shape() != want {
            return Err(Error::Data(format!(
                "samples of shape {:?} do not fit the model's input {want:?}",
                data.sample_shape()
            )));
        }
        Ok(())
    }

    /// The model's outputs for every sample of `data` (Keras's `predict`): `[n, classes]`
    /// probabilities when the model ends in a softmax. Labels are ignored.
    pub fn predict(&mut self, data: &Dataset, batch_size: usize) -> Result<Tensor> {
        self.build()?;
        self.check_samples(data)?;
        if batch_size == 0 {
            return Err(Error::Config("batch size must be at least 1".into()));
        }
        let pool = self.pool()?;
        let Model { infer_plan, store, shards, batch, graph, .. } = self;
        let threads = pool.current_num_threads().max(1);
        shards.resize_with(shards.len().max(threads), Shard::default);
        let plan = infer_plan.as_ref().ok_or(Error::NotCompiled)?;
        let classes = graph.len_of(graph.output());
        let in_len = plan.len[0];
        let mut out = Vec::with_capacity(data.len() * classes);
        pool.install(|| -> Result<()> {
            use rayon::prelude::*;
            for b0 in (0..data.len()).step_by(batch_size) {
                let n = batch_size.min(data.len() - b0);
                batch.input.resize(n * in_len, 0.0);
                // The batch's parts, spread over the threads in contiguous runs, each in a
                // shard of its own; every part computes the same whatever thread runs it.
                // Each run gathers its own samples: gathered on one thread before the runs,
                // the seed network's batches took 1.16x as long at two threads.
                let part = if plan.parts { plan.part } else { n };
                let parts = n.div_ceil(part);
                let tasks = threads.min(parts);
                let per = parts.div_ceil(tasks);
                let outs: Vec<Result<Vec<f32>>> = shards[..tasks]
                    .par_iter_mut()
                    .zip(batch.input.par_chunks_mut(per * part * in_len))
                    .enumerate()
                    .map(|(t, (shard, x))| {
                        let first = t * per * part;
                        data.gather_range(b0 + first..b0 + first + x.len() / in_len, x);
                        let mut o = Vec::new();
                        for p in t * per..((t + 1) * per).min(parts) {
                            let (lo, m) = (p * part - first, part.min(n - p * part));
                            shard.size(plan, m);
                            executor::forward(
                                plan,
                                store.weights(),
                                shard,
                                &x[lo * in_len..(lo + m) * in_len],
                                m,
                                Mode::default(),
                            )?;
                            o.extend_from_slice(shard.output(plan, m));
                        }
                        Ok(o)
                    })
                    .collect();
                for o in outs {
                    out.extend(o?);
                }
            }
            Ok(())
        })?;
        match plan.absorbed {
            Some(Activation::Softmax) => ember_kernels::elementwise::softmax(&mut out, classes)?,
            Some(Activation::Sigmoid) => {
                ember_kernels::activation::act_forward_inplace(&ember_kernels::Ctx::new(), Act::Sigmoid, &mut out)?
            }
            _ => {}
        }
        Tensor::new(vec![data.len(), classes], out)
    }

    /// The output of the layer named `layer` for one sample (feature maps, for pictures);
    /// runs the layers up to it unfused.
    pub fn layer_output(&mut self, data: &Dataset, sample: usize, layer: &str) -> Result<Tensor> {
        self.build()?;
        let node = self.graph.find(layer).ok_or_else(|| Error::Config(format!("no layer named {layer:?}")))?;
        if sample >= data.len() || self.check_samples(data).is_err() {
            return Err(Error::Data(format!("sample {sample} of a dataset of {} does not fit the model", data.len())));
        }
        let plan = Plan::new(
            &self.graph,
            PlanOptions { train: false, keep: Some(node), batch_stats: false, ..PlanOptions::training(false, None) },
        )?;
        let mut shard = Shard::default();
        shard.size(&plan, 1);
        let x = data.sample(sample)?;
        let store = &self.store;
        self.pool()?.install(|| executor::forward(&plan, store.weights(), &mut shard, &x, 1, Mode::default()))?;
        Tensor::new(self.graph.shape(node).to_vec(), shard.value(&plan, node, 1).to_vec())
    }

    /// Keras's `model.summary()`: the layers (a functional model's input too), their output
    /// shapes and parameter counts (and, for a functional model with branches, the layers
    /// each reads), then the totals, trainable and non-trainable, and, once the compiled
    /// optimizer has run a step, its variables ("Optimizer params"). The text Keras prints at
    /// its default line length (88 characters, or 108 with "Connected to"), as in a
    /// terminal at least that wide.
    pub fn summary(&self) -> String {
        crate::summary::table(self, None).expect("the default line length fits every column")
    }

    /// [`Model::summary`] at `line_length` characters (Keras's `summary(line_length=...)`;
    /// Keras prints at 76 into a pipe or an 80-column terminal). Errors if a column would
    /// be narrower than 4 characters.
    pub fn summary_with_line_length(&self, line_length: usize) -> Result<String> {
        crate::summary::table(self, Some(line_length))
    }

    /// The floating-point operations of one training step over `batch` samples, per layer
    /// (direct count, as the kernels' benchmarks count them; after `build`), and their sum.
    pub fn training_flops(&self, batch: usize) -> (Vec<(String, Flops)>, u64) {
        let rows = crate::summary::training_flops(self, batch);
        let total = rows.iter().map(|(_, f)| f.forward + f.backward_data + f.backward_weights).sum();
        (rows, total)
    }

    /// [`Model::training_flops`] as a table in MFLOP.
    pub fn flops_summary(&self, batch: usize) -> String {
        crate::summary::flops_table(self, batch)
    }

    /// A new shard: buffers for running a batch (or part of one) concurrently with other
    /// shards of this model ([`Model::compute_gradients`]).
    pub fn new_shard(&self) -> Shard {
        Shard::default()
    }
}

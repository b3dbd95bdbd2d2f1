//! The plan: a built graph as a list of ops, decided once when the model is compiled.
//!
//! - Fusion rules ([`super::fusion`]) replace patterns of nodes by one op where the value
//!   between them has a single consumer (conv+bias+ReLU+max-pool; batch norm+ReLU;
//!   batch norms+add+ReLU, planned where the add stands; add+ReLU; in inference,
//!   conv+BN(+ReLU) folded; softmax + cross-entropy).
//! - A view layer (Flatten) runs nothing: its value shares its input's buffer.
//! - Ops run backward only where a trainable tensor lies upstream, and ask for an input's
//!   gradient only where one does.
//! - Buffers are planned by liveness: an activation lives from the op that writes it to the
//!   last pass that reads it, a value's gradient from the first backward op that writes it
//!   to its producer's backward op; values whose lives do not overlap share a buffer. In
//!   plans that run in segments between reductions, values and gradients that live within
//!   one part's run through one segment get a buffer of one part ([`super::segments`]).
//! - A batch runs in parts of [`PART`] samples (forward, loss, backward each), parameter
//!   gradients accumulated over the parts. Where ops reduce over the batch (batch
//!   normalization in training), the parts ([`COUPLED_PART`] samples) run op by op between
//!   the reductions ([`super::executor::coupled`]); a layer that couples the batch without
//!   such an op turns the parts off.

use super::fusion;
use super::liveness::liveness;
use super::reduction::Reduction;
use super::segments::{part_local, PartLocal};
use super::Graph;
use crate::error::Result;
use crate::layers::{Activation, Backward, Forward, Layer, Workspace};
use crate::params::ParamStore;
use std::sync::Arc;

/// Samples per part of a batch: a training step runs forward, loss and backward part by
/// part (parameter gradients add up over the parts), so that a part's activations (about
/// 0.8 MB for the reference model's 16 images) stay in the L2 cache between the passes
/// instead of streaming a whole batch's through memory. The parts depend only on the batch
/// size and the plan, never on the thread count.
///
/// Sixteen rather than eight: the convolutions and dense layers run twice the images per
/// call (longer loops over the tiles, half the passes over the weights), and a 32-sample
/// batch makes two shards, each with its gradient arena, not four. Measured on the suite's
/// networks (session 59, Intel AVX-512): the CIFAR-shaped network's step 0.89x (one
/// thread) and 0.91x (two), keras.io's convnet 0.99x / 0.96x, the reference CNN 0.98x /
/// 0.95x. Plans that reduce over the batch keep [`COUPLED_PART`].
pub const PART: usize = 16;

/// Samples per part of a plan that reduces over the batch in training (batch
/// normalization, whose parts run op by op between the reductions). Every part's
/// activations of such a plan stay in memory until its backward pass, and a part is the
/// unit of the reductions' partial sums. The smaller the part, the more of a segment's
/// one-part values stay in L2 (a 28x28x32 value is 392 KiB a part of four): against parts
/// of eight, four made the residual network's step 0.964x at one thread and 0.989x at
/// two (session 62; two, against four, 0.999x and 0.979x, within the noise), where parts
/// of 16 had made it 1.02x and 0.99x.
pub const COUPLED_PART: usize = 4;

/// One unit of execution: a layer, or a fused group of them.
pub(crate) trait Op: Send + Sync {
    /// One line for the plan's description.
    fn describe(&self) -> String;
    /// The forward pass.
    fn forward(&self, f: Forward<'_>) -> Result<()>;
    /// The backward pass.
    fn backward(&self, b: Backward<'_, '_>) -> Result<()>;
    /// After a training step: the op's layers update their state (see
    /// [`Layer::update_state`]).
    fn update_state(&self, _ws: &Workspace, _store: &mut ParamStore) -> Result<()> {
        Ok(())
    }
    /// The halves of its passes, for an op that reduces over the batch in training (a
    /// batch then runs in parts around its reductions; see [`super::reduction`]).
    fn reduction(&self) -> Option<&dyn Reduction> {
        None
    }
    /// Whether its backward pass adds an input's gradient into a buffer that already holds
    /// one (see [`crate::layers::LayerTraits::adds_input_gradient`]).
    fn adds_input_gradient(&self) -> bool {
        false
    }
}

/// A layer on its own.
pub(crate) struct LayerOp(pub Arc<dyn Layer>);

impl Op for LayerOp {
    fn describe(&self) -> String {
        format!("{} ({})", self.0.name(), self.0.class_name())
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        self.0.forward(f)
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        self.0.backward(b)
    }
    fn update_state(&self, ws: &Workspace, store: &mut ParamStore) -> Result<()> {
        self.0.update_state(ws, store)
    }
    fn adds_input_gradient(&self) -> bool {
        self.0.traits().adds_input_gradient
    }
}

/// An op with the values it reads and writes (graph node ids; views resolved to the node
/// that owns the buffer).
pub(crate) struct PlanOp {
    pub op: Arc<dyn Op>,
    pub inputs: Vec<usize>,
    pub output: usize,
    /// The op produces the model's output as logits (its activation left to the loss).
    pub logits: bool,
    /// Whether it runs backward (a trainable tensor in it or upstream).
    pub backward: bool,
    /// Per input: whether its gradient is needed.
    pub needs_dx: Vec<bool>,
    /// Whether the op has trainable tensors of its own.
    pub has_params: bool,
}

/// What a rule or the planner decided for a group of nodes.
pub(crate) struct Planned {
    pub op: Arc<dyn Op>,
    /// The values it reads (graph node ids), in the order its passes take them.
    pub inputs: Vec<usize>,
    /// The nodes it covers; the last one's value is the op's output.
    pub covers: Vec<usize>,
    pub has_params: bool,
}

/// A slot of one buffer pool: the nodes whose values (or gradients) it holds in turn, and
/// its per-sample length (the largest of theirs).
#[derive(Debug, Clone, Default)]
pub(crate) struct Slots {
    /// Per node: its slot, if it has a buffer in this pool.
    pub of: Vec<Option<usize>>,
    /// Per slot: elements per sample.
    pub len: Vec<usize>,
    /// Per slot: it holds one part's samples, which every part writes from its first row
    /// ([`super::segments`]), instead of the whole run's.
    pub part: Vec<bool>,
}

impl Slots {
    /// Where in slot `s` the `m` samples from sample `lo` of a value of `len` per sample
    /// lie: from sample `lo` of the slot's own length (from 0 in a one-part slot), so that
    /// the parts of values of different lengths that share the slot never overlap (the
    /// parts of a coupled plan's batch stay in their slots together).
    pub fn range(&self, s: usize, lo: usize, m: usize, len: usize) -> std::ops::Range<usize> {
        let start = if self.part[s] { 0 } else { lo * self.len[s] };
        start..start + m * len
    }
}

/// The ops of a graph and their buffers.
pub(crate) struct Plan {
    pub ops: Vec<PlanOp>,
    /// The ops' times, where the model profiles them ([`super::profile`]).
    pub clock: Option<super::profile::OpClock>,
    /// Per node: the node whose buffer holds its value (itself, or a view's source).
    pub root: Vec<usize>,
    pub acts: Slots,
    pub grads: Slots,
    /// Per node: per-sample value length.
    pub len: Vec<usize>,
    /// The output node (root), and the output activation the loss absorbed (the output then
    /// holds logits).
    pub output: usize,
    pub absorbed: Option<Activation>,
    /// Whether a batch may run in parts.
    pub parts: bool,
    /// Samples per part where it does: [`PART`], or [`COUPLED_PART`] in a coupled plan.
    pub part: usize,
    /// Whether its parts are joined by reductions over the batch (ops with
    /// [`Op::reduction`] in a training plan): then every part's forward runs before the
    /// backward passes, op by op between the reductions ([`super::executor::coupled`]).
    pub coupled: bool,
    /// Per op: a reduction whose output each part's backward pass through the segment
    /// after it recomputes first ([`super::segments`]).
    pub recompute: Vec<bool>,
    /// Per node (root): whether its value needs a gradient in training.
    pub needs_grad: Vec<bool>,
    /// Whether backward passes compute parameter gradients (not for input attributions).
    pub weight_grads: bool,
}

/// How to plan.
#[derive(Debug, Clone)]
pub(crate) struct PlanOptions {
    /// Apply the conv+ReLU+pool fusion.
    pub fuse: bool,
    /// Whether the plan trains (gradient buffers); false for a layer's output for pictures.
    pub train: bool,
    /// The output activation the loss can absorb (computing from the logits).
    pub absorb: Option<Activation>,
    /// Keep this node's value until the end (an inner layer's output asked for).
    pub keep: Option<usize>,
    /// Nodes (0: the model's input) whose gradients a backward pass must leave, with their
    /// values, until the end (attributions: the input's gradient, a layer's for Grad-CAM).
    /// A fused op never hides one of them.
    pub wrt: Vec<usize>,
    /// Backward passes compute parameter gradients (training); without, ops run backward
    /// only to carry gradients to `wrt`.
    pub weight_grads: bool,
    /// Layers that couple a batch do (training-mode statistics), so the batch cannot run
    /// in parts; inference-only plans set this false.
    pub batch_stats: bool,
    /// Fold batch normalization into the convolution before it (inference-only plans).
    pub fold_bn: bool,
    /// Give the values that live within one part's run through one segment buffers of one
    /// part (plans that reduce over the batch; [`super::segments`]).
    pub part_buffers: bool,
}

impl PlanOptions {
    /// A training plan.
    pub fn training(fuse: bool, absorb: Option<Activation>) -> PlanOptions {
        PlanOptions {
            fuse,
            train: true,
            absorb,
            keep: None,
            wrt: Vec::new(),
            weight_grads: true,
            batch_stats: true,
            fold_bn: false,
            part_buffers: true,
        }
    }

    /// An inference plan (predict, evaluate): no gradients, batch normalization on its
    /// moving statistics (so batches run in parts) and folded into convolutions.
    pub fn inference(fuse: bool, absorb: Option<Activation>) -> PlanOptions {
        PlanOptions {
            train: false,
            weight_grads: false,
            batch_stats: false,
            fold_bn: fuse,
            ..Self::training(fuse, absorb)
        }
    }
}

impl Plan {
    /// Plans a built graph.
    pub fn new(g: &Graph, o: PlanOptions) -> Result<Plan> {
        let n = g.nodes.len();
        let consumers = g.consumers();
        let mut root: Vec<usize> = (0..n).collect();
        let mut planned: Vec<Planned> = Vec::new();
        let mut covered = vec![false; n];
        // Batch normalizations that a later `Add` takes in (`bn_add_relu`): planned with it,
        // where it stands. Never a value asked for, nor in plans that fold normalizations.
        let mut deferred = vec![false; n];
        // A layer that couples the batch inside an op without reduction halves: such a
        // plan runs its batches whole.
        let mut whole = false;
        if o.fuse && !o.fold_bn {
            let asked = |j: usize| o.wrt.contains(&j) || o.keep == Some(j);
            for i in 1..n {
                let taken = fusion::bn_add_relu::absorbed(g, &consumers, i);
                if !asked(i) && !taken.iter().any(|&j| asked(j)) {
                    taken.into_iter().for_each(|j| deferred[j] = true);
                }
            }
        }
        for i in 1..n {
            if covered[i] || deferred[i] {
                continue;
            }
            let layer = g.nodes[i].layer.as_ref().expect("nodes after the input have layers");
            if layer.traits().view {
                root[i] = root[g.nodes[i].inputs[0]];
                continue;
            }
            let fused = fusion::conv_relu_pool::rule(g, &consumers, i, o.fuse);
            // A fused op does not store its inner values: none of them may be asked for.
            let fused = fused.or_else(|| o.fold_bn.then(|| fusion::conv_bn_fold::rule(g, &consumers, i)).flatten());
            let fused = fused.or_else(|| fusion::bn_relu::rule(g, &consumers, i, o.fuse));
            let fused = fused.or_else(|| fusion::bn_add_relu::rule(g, &consumers, i, &deferred));
            let fused = fused.or_else(|| fusion::add_relu::rule(g, &consumers, i, o.fuse));
            let fused = fused.filter(|p| !p.covers[..p.covers.len() - 1].iter().any(|c| o.wrt.contains(c)));
            let p = fused.or_else(|| fusion::bn_relu::alone(g, i)).unwrap_or_else(|| Planned {
                op: Arc::new(LayerOp(layer.clone())),
                inputs: g.nodes[i].inputs.clone(),
                covers: vec![i],
                has_params: !layer.params().is_empty(),
            });
            p.covers.iter().for_each(|&c| covered[c] = true);
            let couples = |c: &usize| g.layer(*c).is_some_and(|l| l.traits().couples_batch);
            whole |= p.op.reduction().is_none() && p.covers.iter().any(couples);
            planned.push(p);
        }
        let output = root[g.output()];
        if output == 0 {
            return Err(crate::error::Error::Config("the model computes nothing: its output is its input".into()));
        }
        let absorbed = o.absorb.filter(|&a| fusion::cross_entropy_logits::rule(g, &consumers, a));
        let logits = absorbed.is_some();
        let mut ops: Vec<PlanOp> = planned
            .into_iter()
            .map(|p| {
                let out = *p.covers.last().expect("an op covers a node");
                PlanOp {
                    op: p.op,
                    inputs: p.inputs.iter().map(|&j| root[j]).collect(),
                    output: out,
                    logits: logits && out == output,
                    backward: false,
                    needs_dx: Vec::new(),
                    has_params: p.has_params,
                }
            })
            .collect();
        // Which values need a gradient: those asked for, and those downstream of a value
        // that does or of a trainable tensor (when parameter gradients are computed).
        let mut needs_grad = vec![false; n];
        let wrt: Vec<usize> = o.wrt.iter().map(|&j| root[j]).collect();
        wrt.iter().for_each(|&j| needs_grad[j] = true);
        for op in &mut ops {
            op.needs_dx = op.inputs.iter().map(|&j| needs_grad[j]).collect();
            op.backward = (op.has_params && o.weight_grads) || op.needs_dx.iter().any(|&d| d);
            needs_grad[op.output] |= op.backward;
        }
        let len: Vec<usize> = (0..n).map(|i| g.len_of(i)).collect();
        let couples = g.nodes.iter().filter_map(|nd| nd.layer.as_ref()).any(|l| l.traits().couples_batch);
        let coupled = couples && o.batch_stats && !whole;
        let parts = !(couples && o.batch_stats) || coupled;
        let keep = o.keep.map(|k| root[k]);
        let local = if coupled && o.train && o.part_buffers {
            let asked: Vec<usize> = wrt.iter().copied().chain(keep).collect();
            part_local(&ops, n, output, &asked)
        } else {
            PartLocal { acts: vec![None; n], grads: vec![None; n], recompute: vec![false; ops.len()] }
        };
        let (acts, grads) = liveness(&ops, n, &len, output, (keep, &wrt), o.train, &local);
        let weight_grads = o.weight_grads;
        let recompute = local.recompute;
        let part = if coupled { COUPLED_PART } else { PART };
        Ok(Plan {
            ops,
            clock: None,
            root,
            acts,
            grads,
            len,
            output,
            absorbed,
            parts,
            part,
            coupled,
            recompute,
            needs_grad,
            weight_grads,
        })
    }

    /// One line per op.
    pub fn describe(&self) -> String {
        self.ops.iter().map(|o| o.op.describe()).collect::<Vec<_>>().join("\n")
    }
}

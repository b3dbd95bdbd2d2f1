//! The executor: runs a [`Plan`] over one shard of a batch. A [`Shard`] owns everything a
//! run writes (activation and gradient buffers, each op's workspace, the batch itself), and
//! the model's weights are only read, so several shards of one model can run at once, each
//! on its own thread with its own gradient arena. Ops are called through one trait: no kind
//! matches, no downcasts.

use super::plan::{Plan, PART};
use crate::error::{Error, Result};
use crate::layers::{Backward, Forward, Mode, Workspace};
use crate::losses::{self, Loss};
use crate::params::Weights;

/// One shard's buffers: what a forward and backward pass over (part of) a batch writes.
/// Create one per concurrent run with [`crate::Model::new_shard`].
#[derive(Debug, Clone, Default)]
pub struct Shard {
    acts: Vec<Vec<f32>>,
    grads: Vec<Vec<f32>>,
    ws: Vec<Workspace>,
    /// Per input of the op being run backward: a gradient to add into a value that already
    /// holds another consumer's.
    fan: Vec<Vec<f32>>,
    written: Vec<bool>,
    /// The batch (`n` samples of the model's input).
    pub(crate) input: Vec<f32>,
    /// Its labels.
    pub(crate) labels: Vec<u32>,
    /// The index of this shard's first sample within its global batch (random draws
    /// depend on it).
    pub(crate) first_sample: usize,
}

/// What a batch run needs besides the plan and the shard.
pub(crate) struct RunArgs<'a> {
    pub weights: Weights<'a>,
    /// Training or inference, and the step's seed.
    pub mode: Mode,
    pub loss: Loss,
    pub classes: usize,
    /// The size of the global batch the loss is a mean over (this shard may hold part).
    pub global_batch: usize,
}

impl Shard {
    /// Sizes the buffers for `n` samples (no allocation once the largest has been seen).
    pub(crate) fn size(&mut self, plan: &Plan, n: usize) {
        let part = if plan.parts { n.min(PART) } else { n };
        let size = |bufs: &mut Vec<Vec<f32>>, lens: &[usize]| {
            bufs.resize_with(lens.len(), Vec::new);
            bufs.iter_mut().zip(lens).for_each(|(b, &l)| b.resize(part * l, 0.0));
        };
        size(&mut self.acts, &plan.acts.len);
        size(&mut self.grads, &plan.grads.len);
        self.ws.resize_with(plan.ops.len(), Workspace::default);
        let widest = plan.ops.iter().map(|o| o.inputs.len()).max().unwrap_or(0);
        self.fan.resize_with(widest, Vec::new);
        self.input.resize(n * plan.len[0], 0.0);
    }

    fn act<'s>(&'s self, plan: &Plan, node: usize, lo: usize, m: usize) -> &'s [f32] {
        let len = plan.len[node];
        match plan.acts.of[node] {
            Some(s) => &self.acts[s][..m * len],
            None => &self.input[lo * len..(lo + m) * len],
        }
    }

    /// The model's output for the last forward pass over `m` samples.
    pub(crate) fn output(&self, plan: &Plan, m: usize) -> &[f32] {
        self.act(plan, plan.output, 0, m)
    }

    /// The value of `node` after the last forward pass over `m` samples (a node the plan
    /// was asked to keep).
    pub(crate) fn value(&self, plan: &Plan, node: usize, m: usize) -> &[f32] {
        self.act(plan, plan.root[node], 0, m)
    }
}

/// Forward pass of samples `lo..lo + m` of the shard's batch.
pub(crate) fn forward(
    plan: &Plan,
    weights: Weights<'_>,
    shard: &mut Shard,
    lo: usize,
    m: usize,
    mode: Mode,
) -> Result<()> {
    for (k, op) in plan.ops.iter().enumerate() {
        let slot = plan.acts.of[op.output].expect("op outputs have buffers");
        let mut out = std::mem::take(&mut shard.acts[slot]);
        let mut ws = std::mem::take(&mut shard.ws[k]);
        let r = {
            let x: Vec<&[f32]> = op.inputs.iter().map(|&j| shard.act(plan, j, lo, m)).collect();
            let mode = Mode { logits: op.logits, first_sample: shard.first_sample + lo, ..mode };
            op.op.forward(Forward { weights, x: &x, y: &mut out[..m * plan.len[op.output]], n: m, ws: &mut ws, mode })
        };
        shard.acts[slot] = out;
        shard.ws[k] = ws;
        r?;
    }
    Ok(())
}

/// Backward pass of samples `lo..lo + m` after their forward pass and loss; parameter
/// gradients go to `grads` (added with `accumulate`).
pub(crate) fn backward(
    plan: &Plan,
    weights: Weights<'_>,
    grads: &mut [f32],
    shard: &mut Shard,
    (lo, m): (usize, usize),
    accumulate: bool,
    mode: Mode,
) -> Result<()> {
    shard.written.clear();
    shard.written.resize(plan.len.len(), false);
    shard.written[plan.output] = true;
    for (k, op) in plan.ops.iter().enumerate().rev() {
        if !op.backward {
            continue;
        }
        let gslot = plan.grads.of[op.output].expect("ops that run backward have an output gradient");
        let mut dy = std::mem::take(&mut shard.grads[gslot]);
        let mut ws = std::mem::take(&mut shard.ws[k]);
        // Per input: its gradient buffer taken out to write directly, or the fan buffer.
        let mut direct: Vec<Option<Vec<f32>>> = vec![None; op.inputs.len()];
        let mut fans = std::mem::take(&mut shard.fan);
        for (q, (&j, &need)) in op.inputs.iter().zip(&op.needs_dx).enumerate() {
            if need && !shard.written[j] {
                let s = plan.grads.of[j].expect("values that need a gradient have a buffer");
                direct[q] = Some(std::mem::take(&mut shard.grads[s]));
                shard.written[j] = true;
            } else if need {
                fans[q].resize(m * plan.len[j], 0.0);
            }
        }
        let r = {
            let mut dx: Vec<Option<&mut [f32]>> = Vec::with_capacity(op.inputs.len());
            for (q, (d, fan)) in direct.iter_mut().zip(fans.iter_mut()).enumerate() {
                let l = m * plan.len[op.inputs[q]];
                dx.push(match d {
                    Some(v) => Some(&mut v[..l]),
                    None if op.needs_dx[q] => Some(&mut fan[..l]),
                    None => None,
                });
            }
            let x: Vec<&[f32]> = op.inputs.iter().map(|&j| shard.act(plan, j, lo, m)).collect();
            let y = shard.act(plan, op.output, lo, m);
            let mode = Mode { logits: op.logits, first_sample: shard.first_sample + lo, ..mode };
            let dy = &mut dy[..m * plan.len[op.output]];
            op.op.backward(Backward { weights, grads, accumulate, x: &x, y, dy, dx: &mut dx, n: m, ws: &mut ws, mode })
        };
        for (q, d) in direct.into_iter().enumerate() {
            let j = op.inputs[q];
            let s = plan.grads.of[j];
            match (d, s) {
                (Some(v), Some(s)) => shard.grads[s] = v,
                (None, Some(s)) if op.needs_dx[q] => {
                    let l = m * plan.len[j];
                    shard.grads[s][..l].iter_mut().zip(&fans[q][..l]).for_each(|(g, f)| *g += f);
                }
                _ => {}
            }
        }
        shard.fan = fans;
        shard.grads[gslot] = dy;
        shard.ws[k] = ws;
        r?;
    }
    Ok(())
}

/// Forward, loss and (when `grads` is given) backward over the `n` samples loaded in the
/// shard, part by part: each part's activations stay in cache and its parameter gradients
/// add up in `grads`. Returns the summed loss and the number of correct predictions.
pub(crate) fn run_batch(
    plan: &Plan,
    a: &RunArgs<'_>,
    mut grads: Option<&mut [f32]>,
    shard: &mut Shard,
) -> Result<(f64, usize)> {
    let n = shard.labels.len();
    if shard.input.len() != n * plan.len[0] {
        return Err(Error::Data(format!("{} input values for {n} samples", shard.input.len())));
    }
    let part = if plan.parts { PART } else { n.max(1) };
    let (mut loss, mut correct) = (0f64, 0usize);
    let scale = 1.0 / a.global_batch as f32;
    for (k, lo) in (0..n).step_by(part).enumerate() {
        let m = part.min(n - lo);
        forward(plan, a.weights, shard, lo, m, a.mode)?;
        let gslot = plan.grads.of[plan.output];
        let out_slot = plan.acts.of[plan.output].expect("the output has a buffer");
        let out = &shard.acts[out_slot][..m * a.classes];
        let labels = &shard.labels[lo..lo + m];
        let mut scratch = Vec::new();
        let dout = match gslot {
            Some(s) => &mut shard.grads[s][..m * a.classes],
            None => {
                scratch.resize(m * a.classes, 0.0);
                &mut scratch[..]
            }
        };
        loss += a.loss.sum_and_grad(out, labels, a.classes, scale, dout, plan.loss_from_logits)?;
        correct += losses::correct_predictions(out, labels, a.classes)?;
        if let Some(g) = grads.as_deref_mut() {
            backward(plan, a.weights, g, shard, (lo, m), k > 0, a.mode)?;
        }
    }
    Ok((loss, correct))
}

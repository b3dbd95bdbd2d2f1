//! Where a plan's runs spend their time, op by op ([`crate::Model::set_op_profiling`]).
//!
//! A sampling profiler sees kernels, not layers: the same Winograd product serves five
//! convolutions, and a pass over a batch-sized buffer costs twice its in-cache time inside
//! the network (the buffer comes back from L3) but not in a per-kernel benchmark. The
//! clock times each op's forward and backward call (a part of a batch, or one half of a
//! reduction's pass) where the executor makes it, and adds the time to the op's counters:
//! atomics in the plan, so the threads that run shards at once need no lock, and nothing
//! runs at all when profiling is off (the plan has no clock). Timing never changes what
//! runs or in which order, so a profiled run's values are the unprofiled run's.

use super::plan::Plan;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Which pass of an op a time is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpPass {
    /// The forward pass (in training, or inference's only one).
    Forward,
    /// The backward pass: input and parameter gradients.
    Backward,
}

/// One op's time in one pass over the runs profiled.
#[derive(Debug, Clone, PartialEq)]
pub struct OpTime {
    /// The op as [`crate::Model::plan`] (or [`crate::Model::inference_plan`]) lists it: its
    /// layers, and the fusion that joined them.
    pub op: String,
    /// Which of its passes.
    pub pass: OpPass,
    /// Calls: one per part of a batch; two per part where the op is a batch normalization
    /// in training, whose passes run in halves around the batch's statistics, and three
    /// forward calls where the backward pass first recomputes its output for the
    /// convolution that reads it.
    pub calls: u64,
    /// Seconds in those calls, summed over the threads that made them: with two threads,
    /// a training step's ops add up to about twice its wall time.
    pub seconds: f64,
}

/// The ops' times of a model's two plans since profiling was switched on or reset:
/// training steps (`fit`, `train_on_batch`) and inference (`predict`, `evaluate`, and
/// `fit`'s validation), each in plan order, a pass per op that ran.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpProfile {
    /// The training plan's ops (batch normalization with batch statistics).
    pub training: Vec<OpTime>,
    /// The inference plan's (batch normalization folded into the convolution before it).
    pub inference: Vec<OpTime>,
}

impl OpProfile {
    /// Seconds of all the training plan's calls.
    pub fn training_seconds(&self) -> f64 {
        seconds(&self.training)
    }

    /// Seconds of all the inference plan's calls.
    pub fn inference_seconds(&self) -> f64 {
        seconds(&self.inference)
    }
}

/// The seconds of `times`, summed.
fn seconds(times: &[OpTime]) -> f64 {
    times.iter().map(|t| t.seconds).sum()
}

impl std::fmt::Display for OpProfile {
    /// A table per plan: milliseconds, share of the plan's total, calls, pass and op.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (title, times) in [("Training", &self.training), ("Inference", &self.inference)] {
            if times.is_empty() {
                continue;
            }
            let total = seconds(times);
            writeln!(f, "{title} ops (thread-seconds summed over threads):")?;
            writeln!(f, "{:>10}  {:>6}  {:>7}  {:<8}  op", "ms", "share", "calls", "pass")?;
            for t in times {
                let share = if total > 0.0 { 100.0 * t.seconds / total } else { 0.0 };
                let pass = match t.pass {
                    OpPass::Forward => "forward",
                    OpPass::Backward => "backward",
                };
                writeln!(f, "{:>10.1}  {share:>5.1}%  {:>7}  {pass:<8}  {}", t.seconds * 1e3, t.calls, t.op)?;
            }
            writeln!(f, "{:>10.1}  100.0%  {:>7}  total", total * 1e3, times.iter().map(|t| t.calls).sum::<u64>())?;
        }
        Ok(())
    }
}

/// Per op of a plan: calls and nanoseconds, forward and backward.
#[derive(Debug, Default)]
pub(crate) struct OpClock {
    counters: Box<[[AtomicU64; 4]]>,
}

impl OpClock {
    pub fn new(ops: usize) -> Self {
        OpClock { counters: (0..ops).map(|_| Default::default()).collect() }
    }

    /// Starts timing op `k`'s `pass`: the time goes to its counters when the guard drops
    /// (at the end of the call, whichever way it returns).
    pub fn start(&self, k: usize, pass: OpPass) -> Timer<'_> {
        Timer { clock: self, k, pass, start: Instant::now() }
    }

    fn add(&self, k: usize, pass: OpPass, took: Duration) {
        if let Some(c) = self.counters.get(k) {
            let i = match pass {
                OpPass::Forward => 0,
                OpPass::Backward => 2,
            };
            c[i].fetch_add(1, Ordering::Relaxed);
            c[i + 1].fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        }
    }

    /// Every op's passes that ran, in plan order.
    pub fn times(&self, plan: &Plan) -> Vec<OpTime> {
        let mut out = Vec::new();
        for (op, c) in plan.ops.iter().zip(self.counters.iter()) {
            for (pass, i) in [(OpPass::Forward, 0), (OpPass::Backward, 2)] {
                let calls = c[i].load(Ordering::Relaxed);
                if calls > 0 {
                    let seconds = c[i + 1].load(Ordering::Relaxed) as f64 * 1e-9;
                    out.push(OpTime { op: op.op.describe(), pass, calls, seconds });
                }
            }
        }
        out
    }
}

/// A call being timed ([`OpClock::start`]).
pub(crate) struct Timer<'c> {
    clock: &'c OpClock,
    k: usize,
    pass: OpPass,
    start: Instant,
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.clock.add(self.k, self.pass, self.start.elapsed());
    }
}

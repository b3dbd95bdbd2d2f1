//! Optimizers: [`Adam`], [`AdamW`], [`RmsProp`], [`Adagrad`] and [`Sgd`] (momentum,
//! Nesterov), with Keras's update rules and constants. They
//! update the parameter store's trainable arena in one pass (`apply(values, grads)`), and
//! keep their per-parameter state (moments, velocities) as arenas of the same length,
//! declared once by name ([`Optimizer::slot_names`]), so a checkpoint can store and restore
//! it exactly without knowing the optimizer.

mod adagrad;
mod adam;
mod adamw;
mod rmsprop;
mod schedules;
mod sgd;

pub use adagrad::Adagrad;
pub use adam::Adam;
pub use adamw::AdamW;
pub use rmsprop::RmsProp;
pub use schedules::{CosineDecay, ExponentialDecay, LearningRate, PiecewiseConstantDecay, Schedule};
pub use sgd::Sgd;

use crate::error::{Error, Result};
use crate::params::Arena;

/// An optimizer's full state: the step count and one arena per slot name (each the length
/// of the trainable arena; none before the first step).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OptimizerState {
    /// Updates applied so far.
    pub iterations: u64,
    /// Per slot name, in [`Optimizer::slot_names`] order.
    pub slots: Vec<Vec<f32>>,
}

/// Updates the trainable tensors from their gradients.
pub trait Optimizer: Send + Sync {
    /// Keras's name (`adam`, `sgd`).
    fn name(&self) -> &'static str;
    /// The learning rate.
    fn learning_rate(&self) -> f32;
    /// Checks the hyper-parameters (`compile` calls it): an error names the one out of range.
    fn check(&self) -> Result<()>;
    /// The names of the state it keeps per parameter (`m`, `v`; `velocity`), in order.
    fn slot_names(&self) -> &'static [&'static str];
    /// One update: `values` and `grads` are the store's trainable arenas (one length; the
    /// same layout on every call).
    fn apply(&mut self, values: &mut [f32], grads: &[f32]) -> Result<()>;
    /// [`Optimizer::apply`] on the gradient `grads + more[0] + more[1] + …`, summed
    /// elementwise in that order and left in `grads` (the gradients of a batch's shards).
    /// By default the sum is made first ([`ember_kernels::elementwise::accumulate_in_order`]);
    /// an optimizer may make it inside its step, with the same bits.
    fn apply_summed(&mut self, values: &mut [f32], grads: &mut [f32], more: &[&[f32]]) -> Result<()> {
        ember_kernels::elementwise::accumulate_in_order(&ember_kernels::Ctx::new(), grads, more)?;
        self.apply(values, grads)
    }
    /// Updates applied so far.
    fn iterations(&self) -> u64;
    /// Whether the learning rate is a constant (which Keras holds in a variable of the
    /// optimizer, counted by `summary` among its "Optimizer params"), not a schedule.
    fn constant_learning_rate(&self) -> bool {
        true
    }
    /// Replaces the learning rate (a callback's change; the state is kept).
    fn set_learning_rate(&mut self, lr: LearningRate);
    /// The full state, for checkpoints.
    fn state(&self) -> OptimizerState;
    /// Restores a state saved by [`Optimizer::state`] for the same parameters.
    fn load_state(&mut self, state: OptimizerState) -> Result<()>;
}

/// A boxed optimizer is one (an optimizer chosen at run time can be given to `compile`).
impl<O: Optimizer + ?Sized> Optimizer for Box<O> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn learning_rate(&self) -> f32 {
        (**self).learning_rate()
    }
    fn check(&self) -> Result<()> {
        (**self).check()
    }
    fn slot_names(&self) -> &'static [&'static str] {
        (**self).slot_names()
    }
    fn apply(&mut self, values: &mut [f32], grads: &[f32]) -> Result<()> {
        (**self).apply(values, grads)
    }
    fn apply_summed(&mut self, values: &mut [f32], grads: &mut [f32], more: &[&[f32]]) -> Result<()> {
        (**self).apply_summed(values, grads, more)
    }
    fn iterations(&self) -> u64 {
        (**self).iterations()
    }
    fn constant_learning_rate(&self) -> bool {
        (**self).constant_learning_rate()
    }
    fn set_learning_rate(&mut self, lr: LearningRate) {
        (**self).set_learning_rate(lr)
    }
    fn state(&self) -> OptimizerState {
        (**self).state()
    }
    fn load_state(&mut self, state: OptimizerState) -> Result<()> {
        (**self).load_state(state)
    }
}

/// The `Optimizer` methods every optimizer with fields `iterations`, `slots` and `lr` writes
/// the same way: the step count, the learning rate's setter, and the state for checkpoints.
macro_rules! optimizer_state {
    () => {
        fn iterations(&self) -> u64 {
            self.iterations
        }
        fn constant_learning_rate(&self) -> bool {
            matches!(self.lr, super::LearningRate::Constant(_))
        }
        fn set_learning_rate(&mut self, lr: super::LearningRate) {
            self.lr = lr;
        }
        fn state(&self) -> super::OptimizerState {
            super::OptimizerState {
                iterations: self.iterations,
                slots: self.slots.iter().map(|a| a.to_vec()).collect(),
            }
        }
        fn load_state(&mut self, state: super::OptimizerState) -> crate::error::Result<()> {
            super::check_state(&state, self.slot_names())?;
            self.slots = state
                .slots
                .iter()
                .map(|s| crate::params::Arena::from_values(s))
                .collect::<crate::error::Result<_>>()?;
            self.iterations = state.iterations;
            Ok(())
        }
    };
}
use optimizer_state;

/// The optimizer's slot arenas for `len` trainable floats: created (filled with `init`) on
/// first use, each on a 64-byte line as the store's arenas are (the update's vectors would
/// otherwise straddle two lines each); an error if they exist with another length.
fn slots_for(slots: &mut Vec<Arena>, count: usize, len: usize, init: f32) -> Result<&mut [Arena]> {
    if slots.is_empty() {
        for _ in 0..count {
            let mut a = Arena::zeros(len)?;
            a.fill(init);
            slots.push(a);
        }
    }
    if slots.len() != count || slots.iter().any(|s| s.len() != len) {
        return Err(Error::Config("optimizer state does not match the model's parameters".into()));
    }
    Ok(slots)
}

/// Checks a state to restore: as many slot arenas as names (or none).
fn check_state(state: &OptimizerState, names: &[&str]) -> Result<()> {
    if !state.slots.is_empty() && state.slots.len() != names.len() {
        return Err(Error::Config(format!(
            "optimizer state has {} slots, expected {}",
            state.slots.len(),
            names.len()
        )));
    }
    Ok(())
}

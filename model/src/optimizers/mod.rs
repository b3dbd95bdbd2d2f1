//! Optimizers: [`Adam`] and [`Sgd`] (momentum, Nesterov), with Keras's update rules. State
//! (moments, velocities, the step count) is kept per parameter in model order and can be
//! saved in a checkpoint and restored exactly.

mod adam;
mod sgd;

pub use adam::Adam;
pub use sgd::Sgd;

use crate::error::{Error, Result};
use crate::layers::Param;

/// One named state tensor of an optimizer for one parameter (Adam's `m` of parameter 3).
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// The slot's name (`m`, `v`, `velocity`).
    pub name: &'static str,
    /// Index of the parameter in model order.
    pub param: usize,
    /// Its values (same length as the parameter).
    pub value: Vec<f32>,
}

/// An optimizer's full state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OptimizerState {
    /// Updates applied so far.
    pub iterations: u64,
    /// Every slot of every parameter.
    pub slots: Vec<Slot>,
}

/// Updates parameters from their gradients.
pub trait Optimizer: Send {
    /// Keras's name (`adam`, `sgd`).
    fn name(&self) -> &'static str;
    /// The learning rate.
    fn learning_rate(&self) -> f32;
    /// Checks the hyper-parameters (`compile` calls it): an error names the one out of range.
    fn check(&self) -> Result<()>;
    /// Applies one update to every parameter (model order; the same list on every call).
    fn apply(&mut self, params: &mut dyn Iterator<Item = &mut Param>) -> Result<()>;
    /// The full state, for checkpoints.
    fn state(&self) -> OptimizerState;
    /// Restores a state saved by [`Optimizer::state`] for the same parameters.
    fn load_state(&mut self, state: OptimizerState) -> Result<()>;
}

/// `lr` is finite and not negative.
fn check_lr(lr: f32) -> Result<()> {
    if lr.is_finite() && lr >= 0.0 {
        Ok(())
    } else {
        Err(Error::Config(format!("learning rate {lr} must be finite and not negative")))
    }
}

/// The `per_param` slots of parameter `i`, created (zero) on first use; errors if the
/// parameter's length changed since.
fn slots_for<'a>(slots: &'a mut Vec<Vec<f32>>, i: usize, p: &Param, per_param: usize) -> Result<&'a mut [Vec<f32>]> {
    if slots.len() == i * per_param {
        slots.extend((0..per_param).map(|_| vec![0.0; p.value.len()]));
    }
    let s = slots
        .get_mut(i * per_param..(i + 1) * per_param)
        .filter(|s| s.iter().all(|v| v.len() == p.value.len()))
        .ok_or_else(|| Error::Config("optimizer state does not match the model's parameters".into()))?;
    Ok(s)
}

fn export(slots: &[Vec<f32>], names: &[&'static str]) -> Vec<Slot> {
    slots
        .iter()
        .enumerate()
        .map(|(i, v)| Slot { name: names[i % names.len()], param: i / names.len(), value: v.clone() })
        .collect()
}

fn import(state: &OptimizerState, names: &[&'static str]) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(state.slots.len());
    for (i, s) in state.slots.iter().enumerate() {
        if s.name != names[i % names.len()] || s.param != i / names.len() {
            return Err(Error::Config(format!(
                "optimizer slot {i} is {}/{}, not in the expected order",
                s.name, s.param
            )));
        }
        out.push(s.value.clone());
    }
    Ok(out)
}

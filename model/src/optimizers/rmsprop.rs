//! RMSprop, Keras's form (`keras.optimizers.RMSprop`, no momentum, not centered):
//! `v = ρ v + (1 - ρ) g²`, `w -= lr g / √(v + ε)`; defaults lr 1e-3, ρ 0.9, ε 1e-7. As in
//! Keras, `1 - ρ` is computed in double precision from ρ and rounded to f32 once. The step is
//! `ember_kernels::elementwise::rms_update`, in TensorFlow's arithmetic (subnormal operands
//! and results flushed to zero): Keras's bits where gradients are tiny or the velocity of a
//! unit that stopped receiving gradient has decayed into the subnormal range.

use super::{slots_for, LearningRate, Optimizer};
use crate::error::{Error, Result};
use ember_kernels::elementwise::{rms_update, rms_update_summed, RmsParams};

/// Keras's `RMSprop(learning_rate, rho, epsilon)`.
#[derive(Debug, Clone)]
pub struct RmsProp {
    lr: LearningRate,
    rho: f64,
    eps: f32,
    iterations: u64,
    slots: Vec<crate::params::Arena>,
}

impl Default for RmsProp {
    fn default() -> Self {
        RmsProp { lr: LearningRate::Constant(1e-3), rho: 0.9, eps: 1e-7, iterations: 0, slots: Vec::new() }
    }
}

impl RmsProp {
    /// RMSprop with Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the learning rate: a constant or a schedule.
    pub fn learning_rate(mut self, lr: impl Into<LearningRate>) -> Self {
        self.lr = lr.into();
        self
    }
    /// Sets ρ, the decay of the squared-gradient average.
    pub fn rho(mut self, rho: f64) -> Self {
        self.rho = rho;
        self
    }
    /// Sets ε.
    pub fn epsilon(mut self, eps: f32) -> Self {
        self.eps = eps;
        self
    }
}

const NAMES: [&str; 1] = ["velocity"];

impl RmsProp {
    /// This step's constants (its learning rate; the step counted) and the running sums of
    /// `len` parameters.
    fn next_step(&mut self, len: usize) -> Result<(RmsParams, &mut [f32])> {
        let p = RmsParams::rmsprop(self.lr.at(self.iterations), self.rho, self.eps);
        self.iterations += 1;
        Ok((p, &mut slots_for(&mut self.slots, 1, len, 0.0)?[0]))
    }
}

impl Optimizer for RmsProp {
    fn name(&self) -> &'static str {
        "rmsprop"
    }
    fn learning_rate(&self) -> f32 {
        self.lr.at(self.iterations)
    }
    fn check(&self) -> Result<()> {
        self.lr.check()?;
        if !(0.0..1.0).contains(&self.rho) {
            return Err(Error::Config(format!("RMSprop rho {} is not in [0, 1)", self.rho)));
        }
        // The kernel follows TensorFlow's flush-to-zero exactly up to 2^100.
        if !(self.eps > 0.0 && self.eps <= 2f32.powi(100)) {
            return Err(Error::Config(format!("RMSprop epsilon {} must be positive and at most 2^100", self.eps)));
        }
        Ok(())
    }
    fn slot_names(&self) -> &'static [&'static str] {
        &NAMES
    }
    fn apply(&mut self, values: &mut [f32], grads: &[f32]) -> Result<()> {
        let (p, v) = self.next_step(values.len())?;
        rms_update(&ember_kernels::Ctx::new(), &p, values, grads, v)?;
        Ok(())
    }
    fn apply_summed(&mut self, values: &mut [f32], grads: &mut [f32], more: &[&[f32]]) -> Result<()> {
        let (p, v) = self.next_step(values.len())?;
        rms_update_summed(&ember_kernels::Ctx::new(), &p, values, grads, more, v)?;
        Ok(())
    }
    super::optimizer_state!();
}

//! Adagrad, Keras's form (`keras.optimizers.Adagrad`): the accumulator starts at
//! `initial_accumulator_value` (0.1), `a += g²`, `w -= lr g / √(a + ε)`; defaults lr 1e-3,
//! ε 1e-7. The step is `ember_kernels::elementwise::rms_update` (decay and gain 1), in
//! TensorFlow's arithmetic (subnormal operands and results flushed to zero): Keras's bits
//! where gradients are tiny.

use super::{slots_for, LearningRate, Optimizer};
use crate::error::{Error, Result};
use ember_kernels::elementwise::{rms_update, rms_update_summed, RmsParams};

/// Keras's `Adagrad(learning_rate, initial_accumulator_value, epsilon)`.
#[derive(Debug, Clone)]
pub struct Adagrad {
    lr: LearningRate,
    initial: f32,
    eps: f32,
    iterations: u64,
    slots: Vec<crate::params::Arena>,
}

impl Default for Adagrad {
    fn default() -> Self {
        Adagrad { lr: LearningRate::Constant(1e-3), initial: 0.1, eps: 1e-7, iterations: 0, slots: Vec::new() }
    }
}

impl Adagrad {
    /// Adagrad with Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the learning rate: a constant or a schedule.
    pub fn learning_rate(mut self, lr: impl Into<LearningRate>) -> Self {
        self.lr = lr.into();
        self
    }
    /// Sets the accumulators' starting value.
    pub fn initial_accumulator_value(mut self, v: f32) -> Self {
        self.initial = v;
        self
    }
    /// Sets ε.
    pub fn epsilon(mut self, eps: f32) -> Self {
        self.eps = eps;
        self
    }
}

const NAMES: [&str; 1] = ["accumulator"];

impl Adagrad {
    /// This step's constants (its learning rate; the step counted) and the running sums of
    /// `len` parameters.
    fn next_step(&mut self, len: usize) -> Result<(RmsParams, &mut [f32])> {
        let p = RmsParams::adagrad(self.lr.at(self.iterations), self.eps);
        self.iterations += 1;
        Ok((p, &mut slots_for(&mut self.slots, 1, len, self.initial)?[0]))
    }
}

impl Optimizer for Adagrad {
    fn name(&self) -> &'static str {
        "adagrad"
    }
    fn learning_rate(&self) -> f32 {
        self.lr.at(self.iterations)
    }
    fn check(&self) -> Result<()> {
        self.lr.check()?;
        if !(self.initial.is_finite() && self.initial >= 0.0) {
            return Err(Error::Config(format!(
                "Adagrad initial_accumulator_value {} must be finite, >= 0",
                self.initial
            )));
        }
        // The kernel follows TensorFlow's flush-to-zero exactly up to 2^100.
        if !(self.eps > 0.0 && self.eps <= 2f32.powi(100)) {
            return Err(Error::Config(format!("Adagrad epsilon {} must be positive and at most 2^100", self.eps)));
        }
        Ok(())
    }
    fn slot_names(&self) -> &'static [&'static str] {
        &NAMES
    }
    fn apply(&mut self, values: &mut [f32], grads: &[f32]) -> Result<()> {
        let (p, acc) = self.next_step(values.len())?;
        rms_update(&ember_kernels::Ctx::new(), &p, values, grads, acc)?;
        Ok(())
    }
    fn apply_summed(&mut self, values: &mut [f32], grads: &mut [f32], more: &[&[f32]]) -> Result<()> {
        let (p, acc) = self.next_step(values.len())?;
        rms_update_summed(&ember_kernels::Ctx::new(), &p, values, grads, more, acc)?;
        Ok(())
    }
    super::optimizer_state!();
}

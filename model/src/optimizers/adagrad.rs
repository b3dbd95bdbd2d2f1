//! Adagrad, Keras's form (`keras.optimizers.Adagrad`): the accumulator starts at
//! `initial_accumulator_value` (0.1), `a += g²`, `w -= lr g / √(a + ε)`; defaults lr 1e-3,
//! ε 1e-7.

use super::{slots_for, LearningRate, Optimizer};
use crate::error::{Error, Result};

/// Keras's `Adagrad(learning_rate, initial_accumulator_value, epsilon)`.
#[derive(Debug, Clone)]
pub struct Adagrad {
    lr: LearningRate,
    initial: f32,
    eps: f32,
    iterations: u64,
    slots: Vec<Vec<f32>>,
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
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(Error::Config(format!("Adagrad epsilon {} must be finite and positive", self.eps)));
        }
        Ok(())
    }
    fn slot_names(&self) -> &'static [&'static str] {
        &NAMES
    }
    fn apply(&mut self, values: &mut [f32], grads: &[f32]) -> Result<()> {
        let (lr, eps) = (self.lr.at(self.iterations), self.eps);
        self.iterations += 1;
        let acc = &mut slots_for(&mut self.slots, 1, values.len(), self.initial)?[0];
        for ((w, &g), a) in values.iter_mut().zip(grads).zip(acc.iter_mut()) {
            *a += g * g;
            *w -= lr * g / (*a + eps).sqrt();
        }
        Ok(())
    }
    super::optimizer_state!();
}

//! RMSprop, Keras's form (`keras.optimizers.RMSprop`, no momentum, not centered):
//! `v = ρ v + (1 - ρ) g²`, `w -= lr g / √(v + ε)`; defaults lr 1e-3, ρ 0.9, ε 1e-7. As in
//! Keras, `1 - ρ` is computed in double precision from ρ and rounded to f32 once.

use super::{slots_for, LearningRate, Optimizer};
use crate::error::{Error, Result};

/// Keras's `RMSprop(learning_rate, rho, epsilon)`.
#[derive(Debug, Clone)]
pub struct RmsProp {
    lr: LearningRate,
    rho: f64,
    eps: f32,
    iterations: u64,
    slots: Vec<Vec<f32>>,
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
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(Error::Config(format!("RMSprop epsilon {} must be finite and positive", self.eps)));
        }
        Ok(())
    }
    fn slot_names(&self) -> &'static [&'static str] {
        &NAMES
    }
    fn apply(&mut self, values: &mut [f32], grads: &[f32]) -> Result<()> {
        let (lr, eps, rho, one_minus) =
            (self.lr.at(self.iterations), self.eps, self.rho as f32, (1.0 - self.rho) as f32);
        self.iterations += 1;
        let v = &mut slots_for(&mut self.slots, 1, values.len(), 0.0)?[0];
        for ((w, &g), v) in values.iter_mut().zip(grads).zip(v.iter_mut()) {
            *v = rho * *v + one_minus * (g * g);
            *w -= lr * g / (*v + eps).sqrt();
        }
        Ok(())
    }
    super::optimizer_state!();
}

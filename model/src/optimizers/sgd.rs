//! Stochastic gradient descent with optional momentum and Nesterov momentum, as Keras:
//! `velocity = momentum·velocity - lr·g`; `w += velocity` (or, Nesterov,
//! `w += momentum·velocity - lr·g`); plain `w -= lr·g` without momentum. The step is
//! `ember_kernels::elementwise::sgd_update`, in TensorFlow's arithmetic (subnormal operands
//! and results flushed to zero): Keras's bits where gradients are tiny or the velocity of a
//! unit that stopped receiving gradient has decayed into the subnormal range.

use super::{slots_for, LearningRate, Optimizer};
use crate::error::{Error, Result};
use ember_kernels::elementwise::{sgd_update, sgd_update_summed, SgdParams};

/// Keras's `SGD(learning_rate, momentum, nesterov)`; defaults lr 0.01, no momentum.
#[derive(Debug, Clone)]
pub struct Sgd {
    lr: LearningRate,
    momentum: f32,
    nesterov: bool,
    iterations: u64,
    slots: Vec<crate::params::Arena>,
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd { lr: LearningRate::Constant(0.01), momentum: 0.0, nesterov: false, iterations: 0, slots: Vec::new() }
    }
}

impl Sgd {
    /// SGD with Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the learning rate: a constant or a schedule.
    pub fn learning_rate(mut self, lr: impl Into<LearningRate>) -> Self {
        self.lr = lr.into();
        self
    }
    /// Sets the momentum (in `[0, 1]`).
    pub fn momentum(mut self, m: f32) -> Self {
        self.momentum = m;
        self
    }
    /// Uses Nesterov momentum.
    pub fn nesterov(mut self, n: bool) -> Self {
        self.nesterov = n;
        self
    }
}

const NAMES: [&str; 1] = ["velocity"];

impl Sgd {
    /// This step's constants (its learning rate; the step counted) and, with momentum, the
    /// velocities of `len` parameters (Keras keeps none without).
    fn next_step(&mut self, len: usize) -> Result<(SgdParams, Option<&mut [f32]>)> {
        self.check()?;
        let p = SgdParams { lr: self.lr.at(self.iterations), momentum: self.momentum, nesterov: self.nesterov };
        self.iterations += 1;
        if self.momentum == 0.0 {
            return Ok((p, None));
        }
        Ok((p, Some(&mut slots_for(&mut self.slots, 1, len, 0.0)?[0][..])))
    }
}

impl Optimizer for Sgd {
    fn name(&self) -> &'static str {
        "sgd"
    }
    fn learning_rate(&self) -> f32 {
        self.lr.at(self.iterations)
    }
    fn check(&self) -> Result<()> {
        self.lr.check()?;
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::Config(format!("SGD momentum {} is not in [0, 1]", self.momentum)));
        }
        Ok(())
    }
    fn slot_names(&self) -> &'static [&'static str] {
        if self.momentum == 0.0 {
            &[]
        } else {
            &NAMES
        }
    }
    fn apply(&mut self, values: &mut [f32], grads: &[f32]) -> Result<()> {
        let (p, v) = self.next_step(values.len())?;
        sgd_update(&ember_kernels::Ctx::new(), &p, values, grads, v)?;
        Ok(())
    }
    fn apply_summed(&mut self, values: &mut [f32], grads: &mut [f32], more: &[&[f32]]) -> Result<()> {
        let (p, v) = self.next_step(values.len())?;
        sgd_update_summed(&ember_kernels::Ctx::new(), &p, values, grads, more, v)?;
        Ok(())
    }
    super::optimizer_state!();
}

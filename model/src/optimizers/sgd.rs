//! Stochastic gradient descent with optional momentum and Nesterov momentum, as Keras:
//! `velocity = momentum·velocity - lr·g`; `w += velocity` (or, Nesterov,
//! `w += momentum·velocity - lr·g`); plain `w -= lr·g` without momentum.

use super::{check_lr, export, import, slots_for, Optimizer, OptimizerState};
use crate::error::{Error, Result};
use crate::layers::Param;

/// Keras's `SGD(learning_rate, momentum, nesterov)`; defaults lr 0.01, no momentum.
#[derive(Debug, Clone)]
pub struct Sgd {
    lr: f32,
    momentum: f32,
    nesterov: bool,
    iterations: u64,
    slots: Vec<Vec<f32>>,
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd { lr: 0.01, momentum: 0.0, nesterov: false, iterations: 0, slots: Vec::new() }
    }
}

impl Sgd {
    /// SGD with Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the learning rate.
    pub fn learning_rate(mut self, lr: f32) -> Self {
        self.lr = lr;
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

impl Optimizer for Sgd {
    fn name(&self) -> &'static str {
        "sgd"
    }
    fn learning_rate(&self) -> f32 {
        self.lr
    }
    fn check(&self) -> Result<()> {
        check_lr(self.lr)?;
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::Config(format!("SGD momentum {} is not in [0, 1]", self.momentum)));
        }
        Ok(())
    }
    fn apply(&mut self, params: &mut dyn Iterator<Item = &mut Param>) -> Result<()> {
        self.check()?;
        self.iterations += 1;
        let (lr, mu, nesterov) = (self.lr, self.momentum, self.nesterov);
        for (i, p) in params.enumerate() {
            if mu == 0.0 {
                p.value.iter_mut().zip(&p.grad).for_each(|(w, g)| *w -= lr * g);
                continue;
            }
            let vel = &mut slots_for(&mut self.slots, i, p, 1)?[0];
            for ((w, &g), v) in p.value.iter_mut().zip(&p.grad).zip(vel.iter_mut()) {
                *v = mu * *v - lr * g;
                *w += if nesterov { mu * *v - lr * g } else { *v };
            }
        }
        Ok(())
    }
    fn state(&self) -> OptimizerState {
        OptimizerState { iterations: self.iterations, slots: export(&self.slots, &NAMES) }
    }
    fn load_state(&mut self, state: OptimizerState) -> Result<()> {
        self.slots = import(&state, &NAMES)?;
        self.iterations = state.iterations;
        Ok(())
    }
}

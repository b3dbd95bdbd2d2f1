//! Adam (Kingma & Ba), Keras's formulation and defaults.

use super::{slots_for, LearningRate, Optimizer};
use crate::error::{Error, Result};
use ember_kernels::elementwise::{adam_update, adam_update_summed, AdamParams};

/// Adam with Keras's update (`ember_kernels::elementwise::adam_update`): defaults lr 1e-3,
/// β1 0.9, β2 0.999, ε 1e-7 (at most 2^100). In TensorFlow's arithmetic, which flushes
/// subnormal operands and results to zero: the same bits as Keras's where gradients or
/// moments are tiny, e.g. in layers whose units have died.
#[derive(Debug, Clone)]
pub struct Adam {
    /// β1, β2, ε (the rate in it is set from `lr` at each step).
    hp: AdamParams,
    lr: LearningRate,
    iterations: u64,
    /// `m` and `v` over the trainable arena.
    slots: Vec<crate::params::Arena>,
}

impl Default for Adam {
    fn default() -> Self {
        let hp = AdamParams::default();
        Adam { hp, lr: LearningRate::Constant(hp.lr), iterations: 0, slots: Vec::new() }
    }
}

impl Adam {
    /// Adam with Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the learning rate: a constant or a schedule.
    pub fn learning_rate(mut self, lr: impl Into<LearningRate>) -> Self {
        self.lr = lr.into();
        self
    }
    /// Sets β1 and β2 (double precision, as Keras's Python floats: `1 - β` is computed from
    /// them before rounding to f32).
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        (self.hp.beta1, self.hp.beta2) = (beta1, beta2);
        self
    }
    /// Sets ε.
    pub fn epsilon(mut self, eps: f32) -> Self {
        self.hp.eps = eps;
        self
    }
    /// The hyper-parameters (with the rate of the next step).
    pub fn params(&self) -> AdamParams {
        AdamParams { lr: self.lr.at(self.iterations), ..self.hp }
    }
}

const NAMES: [&str; 2] = ["m", "v"];

impl Adam {
    /// The hyper-parameters (this step's learning rate) and number of the next update
    /// (counted), and the moments of `len` parameters.
    pub(super) fn next_step(&mut self, len: usize) -> Result<(AdamParams, u32, &mut [f32], &mut [f32])> {
        self.hp.lr = self.lr.at(self.iterations);
        self.iterations += 1;
        let t = u32::try_from(self.iterations).map_err(|_| Error::Config("Adam step count overflows u32".into()))?;
        let (m, v) = slots_for(&mut self.slots, 2, len, 0.0)?.split_at_mut(1);
        Ok((self.hp, t, &mut m[0], &mut v[0]))
    }
}

impl Optimizer for Adam {
    fn name(&self) -> &'static str {
        "adam"
    }
    fn learning_rate(&self) -> f32 {
        self.lr.at(self.iterations)
    }
    fn check(&self) -> Result<()> {
        self.lr.check()?;
        for (name, b) in [("beta_1", self.hp.beta1), ("beta_2", self.hp.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::Config(format!("Adam {name} {b} is not in [0, 1)")));
            }
        }
        // The kernel follows TensorFlow's flush-to-zero exactly up to 2^100.
        if !(self.hp.eps > 0.0 && self.hp.eps <= 2f32.powi(100)) {
            return Err(Error::Config(format!("Adam epsilon {} must be positive and at most 2^100", self.hp.eps)));
        }
        Ok(())
    }
    fn slot_names(&self) -> &'static [&'static str] {
        &NAMES
    }
    fn apply(&mut self, values: &mut [f32], grads: &[f32]) -> Result<()> {
        let (hp, t, m, v) = self.next_step(values.len())?;
        adam_update(&ember_kernels::Ctx::new(), &hp, t, values, grads, m, v)?;
        Ok(())
    }
    fn apply_summed(&mut self, values: &mut [f32], grads: &mut [f32], more: &[&[f32]]) -> Result<()> {
        let (hp, t, m, v) = self.next_step(values.len())?;
        adam_update_summed(&ember_kernels::Ctx::new(), &hp, t, values, grads, more, m, v)?;
        Ok(())
    }
    super::optimizer_state!();
}

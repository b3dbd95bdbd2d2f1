//! AdamW, Keras's form (`keras.optimizers.AdamW`): before each Adam step every weight
//! decays, `w -= w · wd · lr` (Keras's `_apply_weight_decay`, in f32), then Adam's update;
//! defaults as Adam's, weight decay 0.004. Both in Adam's kernel
//! (`ember_kernels::elementwise::adam_update` with `weight_decay`), in TensorFlow's
//! arithmetic (subnormal operands and results flushed to zero).

use super::{Adam, Optimizer, OptimizerState};
use crate::error::{Error, Result};
use ember_kernels::elementwise::{adam_update, adam_update_summed, AdamParams};

/// Keras's `AdamW(learning_rate, weight_decay, beta_1, beta_2, epsilon)`.
#[derive(Debug, Clone)]
pub struct AdamW {
    adam: Adam,
    weight_decay: f32,
}

impl Default for AdamW {
    fn default() -> Self {
        AdamW { adam: Adam::new(), weight_decay: 0.004 }
    }
}

impl AdamW {
    /// AdamW with Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the learning rate: a constant or a schedule.
    pub fn learning_rate(mut self, lr: impl Into<super::LearningRate>) -> Self {
        self.adam = self.adam.learning_rate(lr);
        self
    }
    /// Sets the weight decay.
    pub fn weight_decay(mut self, wd: f32) -> Self {
        self.weight_decay = wd;
        self
    }
    /// Sets β1 and β2 (as [`Adam::betas`]).
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.adam = self.adam.betas(beta1, beta2);
        self
    }
    /// Sets ε.
    pub fn epsilon(mut self, eps: f32) -> Self {
        self.adam = self.adam.epsilon(eps);
        self
    }
}

impl Optimizer for AdamW {
    fn name(&self) -> &'static str {
        "adamw"
    }
    fn learning_rate(&self) -> f32 {
        Optimizer::learning_rate(&self.adam)
    }
    fn check(&self) -> Result<()> {
        self.adam.check()?;
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::Config(format!("AdamW weight_decay {} must be finite, >= 0", self.weight_decay)));
        }
        Ok(())
    }
    fn slot_names(&self) -> &'static [&'static str] {
        self.adam.slot_names()
    }
    fn apply(&mut self, values: &mut [f32], grads: &[f32]) -> Result<()> {
        let (hp, t, m, v) = self.adam.next_step(values.len())?;
        let hp = AdamParams { weight_decay: Some(self.weight_decay), ..hp };
        adam_update(&ember_kernels::Ctx::new(), &hp, t, values, grads, m, v)?;
        Ok(())
    }
    fn apply_summed(&mut self, values: &mut [f32], grads: &mut [f32], more: &[&[f32]]) -> Result<()> {
        let (hp, t, m, v) = self.adam.next_step(values.len())?;
        let hp = AdamParams { weight_decay: Some(self.weight_decay), ..hp };
        adam_update_summed(&ember_kernels::Ctx::new(), &hp, t, values, grads, more, m, v)?;
        Ok(())
    }
    fn iterations(&self) -> u64 {
        self.adam.iterations()
    }
    fn constant_learning_rate(&self) -> bool {
        self.adam.constant_learning_rate()
    }
    fn set_learning_rate(&mut self, lr: super::LearningRate) {
        self.adam.set_learning_rate(lr);
    }
    fn state(&self) -> OptimizerState {
        self.adam.state()
    }
    fn load_state(&mut self, state: OptimizerState) -> Result<()> {
        self.adam.load_state(state)
    }
}

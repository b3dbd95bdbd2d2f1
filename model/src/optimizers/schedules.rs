//! Learning rates that change with the step (Keras's `keras.optimizers.schedules`), in
//! Keras's formulas and f32 arithmetic. An optimizer's rate is a [`LearningRate`]: a
//! constant (`0.001` converts into one) or a schedule, read at the number of updates applied
//! before the current one (Keras's `optimizer.iterations`).

use crate::error::{Error, Result};
use std::sync::Arc;

/// A learning rate as a function of the step.
pub trait Schedule: Send + Sync + std::fmt::Debug {
    /// The rate for the update that follows `step` earlier updates.
    fn at(&self, step: u64) -> f32;
    /// Checks the parameters (`compile` calls it through the optimizer).
    fn check(&self) -> Result<()>;
}

/// An optimizer's learning rate.
#[derive(Debug, Clone)]
pub enum LearningRate {
    /// The same rate at every step.
    Constant(f32),
    /// A schedule.
    Scheduled(Arc<dyn Schedule>),
}

impl From<f32> for LearningRate {
    fn from(lr: f32) -> Self {
        LearningRate::Constant(lr)
    }
}

impl<S: Schedule + 'static> From<S> for LearningRate {
    fn from(s: S) -> Self {
        LearningRate::Scheduled(Arc::new(s))
    }
}

impl LearningRate {
    /// The rate after `step` updates.
    pub fn at(&self, step: u64) -> f32 {
        match self {
            LearningRate::Constant(lr) => *lr,
            LearningRate::Scheduled(s) => s.at(step),
        }
    }
    /// Checks the rate (finite and not negative) or the schedule.
    pub fn check(&self) -> Result<()> {
        match self {
            LearningRate::Constant(lr) if lr.is_finite() && *lr >= 0.0 => Ok(()),
            LearningRate::Constant(lr) => {
                Err(Error::Config(format!("learning rate {lr} must be finite and not negative")))
            }
            LearningRate::Scheduled(s) => s.check(),
        }
    }
}

fn positive(what: &str, v: f32) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::Config(format!("{what} {v} must be finite and not negative")))
    }
}

/// Keras's `ExponentialDecay`: `initial · rate^(step / decay_steps)` (the exponent floored
/// with `staircase`).
#[derive(Debug, Clone, Copy)]
pub struct ExponentialDecay {
    /// The rate at step 0.
    pub initial_learning_rate: f32,
    /// Steps per factor of `decay_rate`.
    pub decay_steps: u64,
    /// The factor.
    pub decay_rate: f32,
    /// Decay in whole steps of `decay_steps`.
    pub staircase: bool,
}

impl Schedule for ExponentialDecay {
    fn at(&self, step: u64) -> f32 {
        let mut p = step as f32 / self.decay_steps as f32;
        if self.staircase {
            p = p.floor();
        }
        self.initial_learning_rate * self.decay_rate.powf(p)
    }
    fn check(&self) -> Result<()> {
        positive("ExponentialDecay initial_learning_rate", self.initial_learning_rate)?;
        positive("ExponentialDecay decay_rate", self.decay_rate)?;
        if self.decay_steps == 0 {
            return Err(Error::Config("ExponentialDecay decay_steps must be at least 1".into()));
        }
        Ok(())
    }
}

/// Keras's `CosineDecay` (no warm-up): `initial · ((1 - α) · ½(1 + cos(π · min(step,
/// decay_steps) / decay_steps)) + α)`.
#[derive(Debug, Clone, Copy)]
pub struct CosineDecay {
    /// The rate at step 0.
    pub initial_learning_rate: f32,
    /// Steps to decay over.
    pub decay_steps: u64,
    /// The floor, as a fraction of the initial rate (Keras's default 0).
    pub alpha: f64,
}

impl Schedule for CosineDecay {
    fn at(&self, step: u64) -> f32 {
        let d = self.decay_steps as f32;
        let fraction = (step as f32).min(d) / d;
        let cosine = 0.5 * (1.0 + (std::f32::consts::PI * fraction).cos());
        // Keras: `(1 - alpha)` in double precision (a Python float), then f32.
        let decayed = (1.0 - self.alpha) as f32 * cosine + self.alpha as f32;
        self.initial_learning_rate * decayed
    }
    fn check(&self) -> Result<()> {
        positive("CosineDecay initial_learning_rate", self.initial_learning_rate)?;
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(Error::Config(format!("CosineDecay alpha {} is not in [0, 1]", self.alpha)));
        }
        if self.decay_steps == 0 {
            return Err(Error::Config("CosineDecay decay_steps must be at least 1".into()));
        }
        Ok(())
    }
}

/// Keras's `PiecewiseConstantDecay`: `values[0]` up to and including step `boundaries[0]`,
/// `values[i + 1]` after `boundaries[i]` up to and including `boundaries[i + 1]`, the last
/// value after the last boundary.
#[derive(Debug, Clone)]
pub struct PiecewiseConstantDecay {
    /// Increasing steps.
    pub boundaries: Vec<u64>,
    /// One more value than boundaries.
    pub values: Vec<f32>,
}

impl Schedule for PiecewiseConstantDecay {
    fn at(&self, step: u64) -> f32 {
        let i = self.boundaries.iter().position(|&b| step <= b).unwrap_or(self.boundaries.len());
        self.values[i.min(self.values.len().saturating_sub(1))]
    }
    fn check(&self) -> Result<()> {
        if self.values.len() != self.boundaries.len() + 1 {
            return Err(Error::Config(format!(
                "PiecewiseConstantDecay needs one more value than boundaries: {} values, {} boundaries",
                self.values.len(),
                self.boundaries.len()
            )));
        }
        if self.boundaries.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::Config("PiecewiseConstantDecay boundaries must increase".into()));
        }
        self.values.iter().try_for_each(|&v| positive("PiecewiseConstantDecay value", v))
    }
}

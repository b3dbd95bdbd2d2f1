//! What `fit` reports: per-batch and per-epoch logs, the history, and the [`Callback`]
//! hooks that see them (Keras's callbacks are in `keras_callbacks`).

use crate::error::Result;
use crate::model::Model;

/// Running figures of the epoch in progress, after each batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchLogs {
    /// 1-based step within the epoch.
    pub step: usize,
    /// Steps in the epoch.
    pub steps: usize,
    /// Mean loss over the samples seen so far this epoch.
    pub loss: f32,
    /// Accuracy over the samples seen so far this epoch.
    pub accuracy: f32,
    /// Samples seen so far this epoch.
    pub samples: usize,
}

/// One epoch's results.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochLogs {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss (over samples, weights changing during the epoch, as Keras).
    pub loss: f32,
    /// Training accuracy.
    pub accuracy: f32,
    /// Training top-k accuracy, with a [`crate::losses::Metric::SparseTopKCategoricalAccuracy`].
    pub top_k_accuracy: Option<f32>,
    /// Validation loss and accuracy, when there is validation data.
    pub val_loss: Option<f32>,
    /// Validation accuracy.
    pub val_accuracy: Option<f32>,
    /// Validation top-k accuracy.
    pub val_top_k_accuracy: Option<f32>,
    /// Wall-clock seconds of the training part of the epoch.
    pub seconds: f64,
    /// Wall-clock seconds of the epoch's validation, when there is validation data. Keras's
    /// progress line counts an epoch as `seconds` plus this.
    pub val_seconds: Option<f64>,
    /// Training samples.
    pub samples: usize,
}

/// What `fit` returns: one entry per epoch run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Per-epoch results.
    pub epochs: Vec<EpochLogs>,
}

/// Loss and accuracy over a dataset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean loss.
    pub loss: f32,
    /// Accuracy.
    pub accuracy: f32,
    /// Top-k accuracy, with a [`crate::losses::Metric::SparseTopKCategoricalAccuracy`].
    pub top_k_accuracy: Option<f32>,
}

impl EpochLogs {
    /// The value Keras's callbacks call `monitor`: `loss`, `accuracy`, `val_loss` or
    /// `val_accuracy` (`None` for another name, or validation figures without validation).
    pub fn get(&self, monitor: &str) -> Option<f32> {
        match monitor {
            "loss" => Some(self.loss),
            "accuracy" => Some(self.accuracy),
            "val_loss" => self.val_loss,
            "val_accuracy" => self.val_accuracy,
            "sparse_top_k_categorical_accuracy" => self.top_k_accuracy,
            "val_sparse_top_k_categorical_accuracy" => self.val_top_k_accuracy,
            _ => None,
        }
    }
}

/// Hooks of `fit` (all optional); `()` ignores everything. The ones that get the model may
/// change it as Keras's callbacks do: stop training ([`Model::stop_training`]), change the
/// learning rate, read or restore the weights, save files. An error they return ends `fit`
/// with it.
pub trait Callback: Send {
    /// Training starts.
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        Ok(())
    }
    /// An epoch starts (1-based), with `steps` batches.
    fn on_epoch_begin(&mut self, _epoch: usize, _epochs: usize, _steps: usize, _model: &mut Model) -> Result<()> {
        Ok(())
    }
    /// A batch is done.
    fn on_batch_end(&mut self, _logs: &BatchLogs) {}
    /// An epoch is done (validation included).
    fn on_epoch_end(&mut self, _logs: &EpochLogs, _model: &mut Model) -> Result<()> {
        Ok(())
    }
    /// Training ends (after the last epoch, or when a callback stopped it).
    fn on_train_end(&mut self, _model: &mut Model) -> Result<()> {
        Ok(())
    }
}

impl Callback for () {}

/// Several callbacks, called in order.
impl Callback for Vec<Box<dyn Callback>> {
    fn on_train_begin(&mut self, model: &mut Model) -> Result<()> {
        self.iter_mut().try_for_each(|c| c.on_train_begin(model))
    }
    fn on_epoch_begin(&mut self, epoch: usize, epochs: usize, steps: usize, model: &mut Model) -> Result<()> {
        self.iter_mut().try_for_each(|c| c.on_epoch_begin(epoch, epochs, steps, model))
    }
    fn on_batch_end(&mut self, logs: &BatchLogs) {
        self.iter_mut().for_each(|c| c.on_batch_end(logs));
    }
    fn on_epoch_end(&mut self, logs: &EpochLogs, model: &mut Model) -> Result<()> {
        self.iter_mut().try_for_each(|c| c.on_epoch_end(logs, model))
    }
    fn on_train_end(&mut self, model: &mut Model) -> Result<()> {
        self.iter_mut().try_for_each(|c| c.on_train_end(model))
    }
}

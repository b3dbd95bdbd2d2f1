//! What `fit` reports: per-batch and per-epoch logs, the history, and the [`Callback`]
//! hooks that see them.

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
    /// Validation loss and accuracy, when there is validation data.
    pub val_loss: Option<f32>,
    /// Validation accuracy.
    pub val_accuracy: Option<f32>,
    /// Wall-clock seconds of the training part of the epoch.
    pub seconds: f64,
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
}

/// Progress hooks of `fit` (all optional); `()` ignores everything.
pub trait Callback: Send {
    /// An epoch starts (1-based), with `steps` batches.
    fn on_epoch_begin(&mut self, _epoch: usize, _epochs: usize, _steps: usize) {}
    /// A batch is done.
    fn on_batch_end(&mut self, _logs: &BatchLogs) {}
    /// An epoch is done (validation included).
    fn on_epoch_end(&mut self, _logs: &EpochLogs) {}
}

impl Callback for () {}

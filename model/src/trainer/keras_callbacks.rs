//! Keras's callbacks, with its defaults and rules: [`EarlyStopping`], [`ModelCheckpoint`],
//! [`ReduceLrOnPlateau`], [`LearningRateScheduler`], [`CsvLogger`]. A `monitor` is one of
//! `loss`, `accuracy`, `val_loss`, `val_accuracy`; in "auto" mode a name with `acc` in it
//! is maximised, anything else minimised.

use super::callbacks::{Callback, EpochLogs};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::params::ParamStore;
use std::io::Write;
use std::path::PathBuf;

/// Whether larger values of `monitor` are better (Keras's `mode="auto"`).
fn maximise(monitor: &str) -> bool {
    monitor.contains("acc")
}

/// The monitored value of an epoch, or an error naming what is missing.
fn monitored(logs: &EpochLogs, monitor: &str, who: &str) -> Result<f32> {
    logs.get(monitor).ok_or_else(|| {
        Error::Config(format!(
            "{who}: no {monitor:?} in the epoch's logs (loss, accuracy, and val_* with validation data)"
        ))
    })
}

/// Keras's `EarlyStopping(monitor="val_loss", min_delta=0, patience=0,
/// restore_best_weights=False, start_from_epoch=0)`: stops training when the monitored value
/// has not improved by more than `min_delta` for `patience` epochs, optionally restoring the
/// weights of the best epoch.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    /// The monitored value.
    pub monitor: String,
    /// The smallest change that counts as an improvement.
    pub min_delta: f32,
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// Restore the best epoch's weights when stopping.
    pub restore_best_weights: bool,
    /// Epochs to wait before watching (Keras's `start_from_epoch`).
    pub start_from_epoch: usize,
    best: Option<f32>,
    wait: usize,
    best_weights: Option<ParamStore>,
    /// The epoch (1-based) training stopped after, if it did.
    pub stopped_epoch: Option<usize>,
    /// The best epoch seen (1-based).
    pub best_epoch: Option<usize>,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping {
            monitor: "val_loss".into(),
            min_delta: 0.0,
            patience: 0,
            restore_best_weights: false,
            start_from_epoch: 0,
            best: None,
            wait: 0,
            best_weights: None,
            stopped_epoch: None,
            best_epoch: None,
        }
    }
}

impl EarlyStopping {
    /// Keras's defaults, watching `monitor`.
    pub fn new(monitor: &str) -> Self {
        EarlyStopping { monitor: monitor.into(), ..Self::default() }
    }
    /// Sets the patience.
    pub fn patience(mut self, p: usize) -> Self {
        self.patience = p;
        self
    }
    /// Sets `min_delta` (its absolute value, as Keras).
    pub fn min_delta(mut self, d: f32) -> Self {
        self.min_delta = d.abs();
        self
    }
    /// Restores the best weights when stopping.
    pub fn restore_best_weights(mut self, r: bool) -> Self {
        self.restore_best_weights = r;
        self
    }
    fn improves(&self, current: f32, reference: Option<f32>) -> bool {
        let Some(reference) = reference else { return true };
        if maximise(&self.monitor) {
            current - self.min_delta > reference
        } else {
            current + self.min_delta < reference
        }
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        (self.best, self.wait, self.best_weights, self.stopped_epoch, self.best_epoch) = (None, 0, None, None, None);
        Ok(())
    }
    fn on_epoch_end(&mut self, logs: &EpochLogs, model: &mut Model) -> Result<()> {
        let current = monitored(logs, &self.monitor, "EarlyStopping")?;
        // Keras counts epochs from 0: `epoch < start_from_epoch` skips.
        if logs.epoch <= self.start_from_epoch {
            return Ok(());
        }
        if self.restore_best_weights && self.best_weights.is_none() {
            self.best_weights = Some(model.params().clone());
        }
        self.wait += 1;
        if self.improves(current, self.best) {
            self.best = Some(current);
            self.best_epoch = Some(logs.epoch);
            if self.restore_best_weights {
                self.best_weights = Some(model.params().clone());
            }
            self.wait = 0;
            return Ok(());
        }
        if self.wait >= self.patience && logs.epoch > 1 {
            self.stopped_epoch = Some(logs.epoch);
            model.stop_training();
            if let Some(best) = &self.best_weights {
                model.params_mut().copy_values_from(best)?;
            }
        }
        Ok(())
    }
}

/// Keras's `ModelCheckpoint(filepath, monitor="val_loss", save_best_only=False)`, saving
/// the weights (safetensors) after each epoch, or with `save_best_only` only when the
/// monitored value improved. `{epoch}` in the path is replaced by the (1-based) epoch.
#[derive(Debug, Clone)]
pub struct ModelCheckpoint {
    /// Where to write.
    pub filepath: PathBuf,
    /// The monitored value (for `save_best_only`).
    pub monitor: String,
    /// Save only when the monitored value improves.
    pub save_best_only: bool,
    best: Option<f32>,
}

impl ModelCheckpoint {
    /// Saves after every epoch to `filepath`, watching `val_loss` for `save_best_only`.
    pub fn new(filepath: impl Into<PathBuf>) -> Self {
        ModelCheckpoint { filepath: filepath.into(), monitor: "val_loss".into(), save_best_only: false, best: None }
    }
    /// Sets the monitored value.
    pub fn monitor(mut self, m: &str) -> Self {
        self.monitor = m.into();
        self
    }
    /// Saves only when the monitored value improves.
    pub fn save_best_only(mut self, b: bool) -> Self {
        self.save_best_only = b;
        self
    }
}

impl Callback for ModelCheckpoint {
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        self.best = None;
        Ok(())
    }
    fn on_epoch_end(&mut self, logs: &EpochLogs, model: &mut Model) -> Result<()> {
        if self.save_best_only {
            let current = monitored(logs, &self.monitor, "ModelCheckpoint")?;
            let better = self.best.is_none_or(|b| if maximise(&self.monitor) { current > b } else { current < b });
            if !better {
                return Ok(());
            }
            self.best = Some(current);
        }
        if model.rank() != 0 {
            // A data-parallel fit: rank 0 writes.
            return Ok(());
        }
        let path = self.filepath.to_string_lossy().replace("{epoch}", &logs.epoch.to_string());
        model.save_weights(path)
    }
}

/// Keras's `ReduceLROnPlateau(monitor="val_loss", factor=0.1, patience=10, min_delta=1e-4,
/// cooldown=0, min_lr=0)`: multiplies the learning rate by `factor` when the monitored value
/// has not improved by `min_delta` for `patience` epochs, then waits `cooldown` epochs.
#[derive(Debug, Clone)]
pub struct ReduceLrOnPlateau {
    /// The monitored value.
    pub monitor: String,
    /// The factor (below 1).
    pub factor: f32,
    /// Epochs without improvement before reducing.
    pub patience: usize,
    /// The smallest change that counts as an improvement.
    pub min_delta: f32,
    /// Epochs to wait after a reduction.
    pub cooldown: usize,
    /// The rate is never reduced below this.
    pub min_lr: f32,
    best: Option<f32>,
    wait: usize,
    cooldown_counter: usize,
}

impl Default for ReduceLrOnPlateau {
    fn default() -> Self {
        ReduceLrOnPlateau {
            monitor: "val_loss".into(),
            factor: 0.1,
            patience: 10,
            min_delta: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
            best: None,
            wait: 0,
            cooldown_counter: 0,
        }
    }
}

impl ReduceLrOnPlateau {
    /// Keras's defaults, watching `monitor`.
    pub fn new(monitor: &str) -> Self {
        ReduceLrOnPlateau { monitor: monitor.into(), ..Self::default() }
    }
    /// Sets the factor.
    pub fn factor(mut self, f: f32) -> Self {
        self.factor = f;
        self
    }
    /// Sets the patience.
    pub fn patience(mut self, p: usize) -> Self {
        self.patience = p;
        self
    }
    /// Sets the minimum rate.
    pub fn min_lr(mut self, lr: f32) -> Self {
        self.min_lr = lr;
        self
    }
    /// Sets the cooldown.
    pub fn cooldown(mut self, c: usize) -> Self {
        self.cooldown = c;
        self
    }
    /// Sets `min_delta`.
    pub fn min_delta(mut self, d: f32) -> Self {
        self.min_delta = d;
        self
    }
}

impl Callback for ReduceLrOnPlateau {
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        if !(self.factor.is_finite() && (0.0..1.0).contains(&self.factor)) {
            return Err(Error::Config(format!("ReduceLROnPlateau factor {} is not in [0, 1)", self.factor)));
        }
        (self.best, self.wait, self.cooldown_counter) = (None, 0, 0);
        Ok(())
    }
    fn on_epoch_end(&mut self, logs: &EpochLogs, model: &mut Model) -> Result<()> {
        let current = monitored(logs, &self.monitor, "ReduceLROnPlateau")?;
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        let better = self.best.is_none_or(|b| {
            if maximise(&self.monitor) {
                current > b + self.min_delta
            } else {
                current < b - self.min_delta
            }
        });
        if better {
            self.best = Some(current);
            self.wait = 0;
        } else if self.cooldown_counter == 0 {
            self.wait += 1;
            if self.wait >= self.patience {
                let old = model.learning_rate().ok_or(Error::NotCompiled)?;
                if old > self.min_lr {
                    model.set_learning_rate((old * self.factor).max(self.min_lr))?;
                    self.cooldown_counter = self.cooldown;
                    self.wait = 0;
                }
            }
        }
        Ok(())
    }
}

/// Keras's `LearningRateScheduler(schedule)`: at the start of each epoch the learning rate
/// becomes `schedule(epoch, lr)`, `epoch` counted from 0 as Keras does.
pub struct LearningRateScheduler<F: FnMut(usize, f32) -> f32 + Send> {
    schedule: F,
}

impl<F: FnMut(usize, f32) -> f32 + Send> LearningRateScheduler<F> {
    /// The callback for `schedule(epoch, current_rate) -> new_rate`.
    pub fn new(schedule: F) -> Self {
        LearningRateScheduler { schedule }
    }
}

impl<F: FnMut(usize, f32) -> f32 + Send> Callback for LearningRateScheduler<F> {
    fn on_epoch_begin(&mut self, epoch: usize, _epochs: usize, _steps: usize, model: &mut Model) -> Result<()> {
        let lr = model.learning_rate().ok_or(Error::NotCompiled)?;
        model.set_learning_rate((self.schedule)(epoch - 1, lr))
    }
}

/// Keras's `CSVLogger(filename, separator=",", append=False)`: one row per epoch, `epoch`
/// (from 0, as Keras) then the logs in alphabetical order (`accuracy, loss`, and
/// `val_accuracy, val_loss` with validation data).
#[derive(Debug)]
pub struct CsvLogger {
    path: PathBuf,
    separator: char,
    append: bool,
    file: Option<std::fs::File>,
}

impl CsvLogger {
    /// Writes `path`, truncating it when training starts.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvLogger { path: path.into(), separator: ',', append: false, file: None }
    }
    /// Appends to the file instead (no header if it is not empty).
    pub fn append(mut self, a: bool) -> Self {
        self.append = a;
        self
    }
    /// Sets the separator.
    pub fn separator(mut self, s: char) -> Self {
        self.separator = s;
        self
    }
}

impl Callback for CsvLogger {
    fn on_train_begin(&mut self, model: &mut Model) -> Result<()> {
        if model.rank() != 0 {
            // A data-parallel fit: rank 0 writes.
            return Ok(());
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(self.append)
            .write(true)
            .truncate(!self.append)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        self.file = Some(f);
        Ok(())
    }
    fn on_epoch_end(&mut self, logs: &EpochLogs, _model: &mut Model) -> Result<()> {
        let Some(f) = self.file.as_mut() else { return Ok(()) };
        // Keras writes the logs' keys in sorted order.
        let all = [
            "accuracy",
            "loss",
            "sparse_top_k_categorical_accuracy",
            "val_accuracy",
            "val_loss",
            "val_sparse_top_k_categorical_accuracy",
        ];
        let names: Vec<&str> = all.into_iter().filter(|n| logs.get(n).is_some()).collect();
        let sep = self.separator.to_string();
        let mut out = String::new();
        let empty = f.metadata().map(|m| m.len() == 0).unwrap_or(true);
        if empty {
            out += &std::iter::once("epoch").chain(names.iter().copied()).collect::<Vec<_>>().join(&sep);
            out.push('\n');
        }
        let values: Vec<String> = names.iter().map(|n| logs.get(n).map_or(String::new(), |v| v.to_string())).collect();
        out += &format!("{}{sep}{}\n", logs.epoch - 1, values.join(&sep));
        f.write_all(out.as_bytes()).map_err(|e| Error::io(&self.path, e))
    }
    fn on_train_end(&mut self, _model: &mut Model) -> Result<()> {
        self.file = None;
        Ok(())
    }
}

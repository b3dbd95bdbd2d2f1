//! The example's progress output: a bar per epoch and Keras's end-of-epoch line.

use ember_model::{BatchLogs, Callback, EpochLogs, Model};
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Instant;

/// A progress bar per epoch and Keras's end-of-epoch line.
pub struct Progress {
    pub bar: Option<ProgressBar>,
    /// No bars (one line per epoch).
    pub quiet: bool,
    /// Nothing at all (the ranks of a data-parallel run other than 0).
    pub silent: bool,
    pub batch_size: usize,
    pub start: Instant,
    pub epoch: usize,
    /// (epoch progress, running loss, running accuracy) every 25 steps, for the curves.
    pub batches: Vec<(f64, f32, f32)>,
}

impl Callback for Progress {
    fn on_epoch_begin(&mut self, epoch: usize, epochs: usize, steps: usize, _m: &mut Model) -> ember_model::Result<()> {
        self.start = Instant::now();
        self.epoch = epoch;
        if self.silent {
            return Ok(());
        }
        println!("Epoch {epoch}/{epochs}");
        if !self.quiet {
            let bar = ProgressBar::new(steps as u64);
            bar.set_style(
                ProgressStyle::with_template("{pos:>5}/{len} [{bar:30}] {elapsed_precise} {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            self.bar = Some(bar);
        }
        Ok(())
    }
    fn on_batch_end(&mut self, l: &BatchLogs) {
        if l.step.is_multiple_of(25) || l.step == l.steps {
            self.batches.push(((self.epoch - 1) as f64 + l.step as f64 / l.steps as f64, l.loss, l.accuracy));
        }
        if let Some(bar) = &self.bar {
            if l.step.is_multiple_of(25) || l.step == l.steps {
                let ips = l.samples as f64 / self.start.elapsed().as_secs_f64();
                bar.set_message(format!("accuracy: {:.4} - loss: {:.4} - {:.0} img/s", l.accuracy, l.loss, ips));
                bar.set_position(l.step as u64);
            }
        }
    }
    fn on_epoch_end(&mut self, l: &EpochLogs, _m: &mut Model) -> ember_model::Result<()> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.silent {
            return Ok(());
        }
        let steps = l.samples.div_ceil(self.batch_size);
        // As Keras's line: the epoch's time with its validation, the step's without.
        let mut line = format!(
            "{steps}/{steps} - {:.2}s - {:.0}us/step - accuracy: {:.4} - loss: {:.4}",
            l.seconds + l.val_seconds.unwrap_or(0.0),
            l.seconds * 1e6 / steps as f64,
            l.accuracy,
            l.loss
        );
        if let (Some(vl), Some(va)) = (l.val_loss, l.val_accuracy) {
            line += &format!(" - val_accuracy: {va:.4} - val_loss: {vl:.4}");
        }
        println!("{line}");
        Ok(())
    }
}

//! Keras's callbacks through `fit`: early stopping (and restoring the best weights), best-only
//! checkpoints, plateau and scheduled learning rates, the CSV log; and a callback's error
//! ending `fit`.

mod common;

use common::{compile_adam, quadrant_task, seed_model, weights};
use ember_model::{
    Callback, CsvLogger, EarlyStopping, Error, FitOptions, LearningRateScheduler, ModelCheckpoint, ReduceLrOnPlateau,
};

fn opts(epochs: usize) -> FitOptions {
    FitOptions { epochs, batch_size: 16, ..FitOptions::default() }
}

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ember-callbacks-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn early_stopping_stops_and_restores_the_best_weights() {
    let data = quadrant_task(64, 12, 1);
    // No epoch improves the loss by 100: the first sets the best, the second stops.
    let mut m = seed_model(12, 4, 4, 3);
    compile_adam(&mut m);
    let mut es = EarlyStopping::new("loss").min_delta(100.0).restore_best_weights(true);
    let h = m.fit(&data, None, &opts(10), &mut es).unwrap();
    assert_eq!(h.epochs.len(), 2);
    assert_eq!((es.best_epoch, es.stopped_epoch), (Some(1), Some(2)));
    // The restored weights are those after epoch 1.
    let mut one = seed_model(12, 4, 4, 3);
    compile_adam(&mut one);
    one.fit(&data, None, &opts(1), &mut ()).unwrap();
    assert!(weights(&m) == weights(&one), "not the best epoch's weights");
    // Patience 2 lets two more epochs run; without validation data val_loss is an error.
    let mut m = seed_model(12, 4, 4, 3);
    compile_adam(&mut m);
    let h = m.fit(&data, None, &opts(10), &mut EarlyStopping::new("loss").min_delta(100.0).patience(2)).unwrap();
    assert_eq!(h.epochs.len(), 3);
    let r = m.fit(&data, None, &opts(2), &mut EarlyStopping::new("val_loss"));
    assert!(matches!(r, Err(Error::Config(_))), "{r:?}");
}

#[test]
fn model_checkpoint_saves_every_epoch_or_the_best_only() {
    let data = quadrant_task(64, 12, 2);
    let d = dir("ckpt");
    let mut m = seed_model(12, 4, 4, 3);
    compile_adam(&mut m);
    m.fit(&data, None, &opts(3), &mut ModelCheckpoint::new(d.join("w-{epoch}.safetensors"))).unwrap();
    for e in 1..=3 {
        assert!(d.join(format!("w-{e}.safetensors")).exists());
    }
    // Best only, on training accuracy (maximised): the file holds the weights of the last
    // epoch that improved it.
    let best = d.join("best.safetensors");
    let mut ck = ModelCheckpoint::new(&best).monitor("accuracy").save_best_only(true);
    let mut m = seed_model(12, 4, 4, 3);
    compile_adam(&mut m);
    let h = m.fit(&data, Some(&data), &opts(4), &mut ck).unwrap();
    let mut top = f32::MIN;
    let mut best_epoch = 0;
    for e in &h.epochs {
        if e.accuracy > top {
            (top, best_epoch) = (e.accuracy, e.epoch);
        }
    }
    let mut again = seed_model(12, 4, 4, 3);
    compile_adam(&mut again);
    again.fit(&data, None, &opts(best_epoch), &mut ()).unwrap();
    let mut loaded = seed_model(12, 4, 4, 99);
    compile_adam(&mut loaded);
    loaded.load_weights(&best).unwrap();
    assert!(weights(&loaded) == weights(&again), "best-only checkpoint is not epoch {best_epoch}'s");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn learning_rate_callbacks_change_the_optimizer_rate() {
    let data = quadrant_task(64, 12, 3);
    let mut m = seed_model(12, 4, 4, 3);
    compile_adam(&mut m);
    // Never improving by 100: patience 1 reduces after every epoch, down to min_lr.
    let mut plateau = ReduceLrOnPlateau::new("loss").factor(0.5).patience(1).min_lr(2e-4).min_delta(100.0);
    m.fit(&data, None, &opts(2), &mut plateau).unwrap();
    assert_eq!(m.learning_rate(), Some(1e-3 * 0.5));
    m.fit(&data, None, &opts(4), &mut plateau).unwrap();
    assert_eq!(m.learning_rate(), Some(2e-4), "clamped at min_lr");
    // Halve at the start of every epoch after the first (Keras counts epochs from 0).
    let mut m = seed_model(12, 4, 4, 3);
    compile_adam(&mut m);
    let mut seen = Vec::new();
    {
        let mut sched = LearningRateScheduler::new(|epoch, lr| {
            seen.push(epoch);
            if epoch == 0 {
                lr
            } else {
                lr * 0.5
            }
        });
        m.fit(&data, None, &opts(3), &mut sched).unwrap();
    }
    assert_eq!(seen, [0, 1, 2]);
    assert_eq!(m.learning_rate(), Some(1e-3 * 0.25));
}

#[test]
fn csv_logger_writes_a_row_per_epoch() {
    let data = quadrant_task(64, 12, 4);
    let d = dir("csv");
    let path = d.join("log.csv");
    let mut m = seed_model(12, 4, 4, 3);
    compile_adam(&mut m);
    let h = m.fit(&data, Some(&data), &opts(2), &mut CsvLogger::new(&path)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "epoch,accuracy,loss,val_accuracy,val_loss");
    assert_eq!(lines.len(), 3);
    let e = &h.epochs[1];
    let row = format!("1,{},{},{},{}", e.accuracy, e.loss, e.val_accuracy.unwrap(), e.val_loss.unwrap());
    assert_eq!(lines[2], row);
    // Appending adds rows, not another header.
    m.fit(&data, Some(&data), &FitOptions { initial_epoch: 2, ..opts(3) }, &mut CsvLogger::new(&path).append(true))
        .unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 4);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_callback_error_ends_fit() {
    struct Fails;
    impl Callback for Fails {
        fn on_epoch_end(&mut self, _: &ember_model::EpochLogs, _: &mut ember_model::Model) -> ember_model::Result<()> {
            Err(Error::Config("stop here".into()))
        }
    }
    let data = quadrant_task(32, 12, 5);
    let mut m = seed_model(12, 4, 4, 3);
    compile_adam(&mut m);
    let r = m.fit(&data, None, &opts(3), &mut Fails);
    assert!(matches!(r, Err(Error::Config(ref s)) if s == "stop here"), "{r:?}");
    assert_eq!(m.epochs_done(), 1);
}

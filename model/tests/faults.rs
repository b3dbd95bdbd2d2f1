//! Training faults with real processes: a run killed with SIGKILL in the middle of an epoch
//! resumes from its last checkpoint to the weights of an uninterrupted run, and a
//! checkpoint write that fails midway (the file-size limit cuts it off, with the process
//! either getting the error or dying of SIGXFSZ) leaves the previous checkpoint intact.
//!
//! The children are this test binary run again on an `#[ignore]`d helper test, told what to
//! do through environment variables.
#![cfg(unix)]

mod common;

use common::{compile_adam, quadrant_task, seed_model, weights};
use ember_model::Model;
use ember_model::{BatchLogs, Callback, FitOptions};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const EPOCHS: usize = 5;

fn fit_options(checkpoint: &Path) -> FitOptions {
    FitOptions { epochs: EPOCHS, batch_size: 16, checkpoint: Some(checkpoint.to_path_buf()), ..FitOptions::default() }
}

fn data() -> ember_model::data::Dataset {
    quadrant_task(128, 12, 21)
}

fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ember-faults-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// This test binary, running only the helper test `name`, with `env` set.
fn child(name: &str, env: &[(&str, &Path)]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--ignored", "--exact", name, "--nocapture", "--test-threads", "1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Prints `progress <epoch> <step>` after every batch, and after step 4 of epoch 3 waits
/// to be killed: the parent kills the process there, in the middle of an epoch, however
/// slow the machine.
struct Progress {
    epoch: usize,
}

impl Callback for Progress {
    fn on_epoch_begin(
        &mut self,
        epoch: usize,
        _epochs: usize,
        _steps: usize,
        _m: &mut Model,
    ) -> ember_model::Result<()> {
        self.epoch = epoch;
        Ok(())
    }
    fn on_batch_end(&mut self, logs: &BatchLogs) {
        println!("progress {} {}", self.epoch, logs.step);
        if (self.epoch, logs.step) == (3, 4) {
            std::thread::sleep(Duration::from_secs(600));
        }
    }
}

#[test]
#[ignore = "helper: run as a child process by sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights"]
fn child_trains_with_checkpoints() {
    let ckpt = PathBuf::from(std::env::var_os("EMBER_FAULT_CHECKPOINT").expect("run by the parent test"));
    let mut m = seed_model(12, 8, 4, 9);
    compile_adam(&mut m);
    m.fit(&data(), None, &fit_options(&ckpt), &mut Progress { epoch: 0 }).unwrap();
}

#[test]
fn sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights() {
    let dir = scratch_dir("kill");
    let ckpt = dir.join("run.safetensors");
    let mut proc = child("child_trains_with_checkpoints", &[("EMBER_FAULT_CHECKPOINT", &ckpt)])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill it in the middle of epoch 3 (epochs 1 and 2 checkpointed, 8 steps per epoch).
    let mut seen = None;
    for line in BufReader::new(proc.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("progress ") {
            let v: Vec<usize> = rest.split(' ').map(|s| s.parse().unwrap()).collect();
            if v == [3, 4] {
                proc.kill().unwrap();
                seen = Some(line);
                break;
            }
        }
    }
    let status = proc.wait().unwrap();
    assert_eq!(seen.as_deref(), Some("progress 3 4"), "the child never reached epoch 3 (status {status})");
    assert_eq!(status.signal(), Some(9), "the child was not killed by SIGKILL: {status}");

    // Resume in this process from whatever the killed run left, with a model of another
    // seed: everything must come from the checkpoint.
    let mut resumed = seed_model(12, 8, 4, 1234);
    compile_adam(&mut resumed);
    resumed.load_checkpoint(&ckpt).unwrap();
    assert_eq!(resumed.epochs_done(), 2, "the last checkpoint is the one after epoch 2");
    let o = fit_options(&ckpt);
    let initial_epoch = resumed.epochs_done();
    resumed.fit(&data(), None, &FitOptions { initial_epoch, ..o.clone() }, &mut ()).unwrap();

    let mut straight = seed_model(12, 8, 4, 9);
    compile_adam(&mut straight);
    straight
        .fit(&data(), None, &FitOptions { checkpoint: Some(dir.join("straight.safetensors")), ..o }, &mut ())
        .unwrap();
    assert!(weights(&straight) == weights(&resumed), "resumed weights differ from the uninterrupted run");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[ignore = "helper: run as a child process by a_checkpoint_write_cut_off_midway_keeps_the_previous_one"]
fn child_overwrites_a_checkpoint() {
    let ckpt = PathBuf::from(std::env::var_os("EMBER_FAULT_CHECKPOINT").expect("run by the parent test"));
    let mut m = seed_model(12, 8, 4, 5);
    compile_adam(&mut m);
    m.fit(&data(), None, &FitOptions { epochs: 1, batch_size: 16, ..FitOptions::default() }, &mut ()).unwrap();
    // The file-size limit cuts this write off: with SIGXFSZ ignored it is an I/O error (and
    // the temporary file is removed); otherwise the signal kills the process mid-write.
    let err = m.save_checkpoint(&ckpt).unwrap_err();
    assert!(matches!(err, ember_model::Error::Io { .. }), "{err}");
    println!("write failed: {err}");
}

#[test]
fn a_checkpoint_write_cut_off_midway_keeps_the_previous_one() {
    let dir = scratch_dir("cut");
    let ckpt = dir.join("ck.safetensors");
    let mut m = seed_model(12, 8, 4, 3);
    compile_adam(&mut m);
    m.fit(&data(), None, &FitOptions { epochs: 1, batch_size: 16, ..FitOptions::default() }, &mut ()).unwrap();
    m.save_checkpoint(&ckpt).unwrap();
    let before = std::fs::read(&ckpt).unwrap();
    // A limit of 4 KiB, well below the checkpoint's size: the write stops partway through.
    assert!(before.len() > 2 * 4096, "checkpoint of {} bytes is too small for the test", before.len());
    let exe = std::env::current_exe().unwrap();
    for (trap, want_signal) in [("trap '' XFSZ;", None), ("", Some(libc_sigxfsz()))] {
        let script = format!("{trap} ulimit -f 4; exec \"$0\" \"$@\"");
        let status = Command::new("bash")
            .args(["-c", &script])
            .arg(&exe)
            .args(["--ignored", "--exact", "child_overwrites_a_checkpoint", "--nocapture"])
            .env("EMBER_FAULT_CHECKPOINT", &ckpt)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        match want_signal {
            None => assert!(status.success(), "the child did not see the write fail: {status}"),
            Some(sig) => assert_eq!(status.signal(), Some(sig), "the child was not stopped by SIGXFSZ: {status}"),
        }
        assert!(std::fs::read(&ckpt).unwrap() == before, "the previous checkpoint changed ({status})");
        let mut again = seed_model(12, 8, 4, 99);
        compile_adam(&mut again);
        again.load_checkpoint(&ckpt).unwrap();
        assert!(weights(&again) == weights(&m), "the previous checkpoint does not load back");
        let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        if want_signal.is_none() {
            assert_eq!(leftovers.len(), 1, "a failed write left its temporary file: {leftovers:?}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// SIGXFSZ's number on Linux and the BSDs/macOS (25).
fn libc_sigxfsz() -> i32 {
    25
}

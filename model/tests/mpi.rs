//! Data-parallel training over MPI (feature `mpi`), run under `mpirun` by this harness: a
//! test target without libtest's harness (`harness = false`), whose `main` either runs the
//! checks below or, started by one of them under `mpirun -np N` with `EMBER_MPI_WORKER` set,
//! trains as one rank as that variable says. Compared with one process trained
//! here: 1, 2 and 3 ranks (3 oversubscribed on 2 cores: an uneven split) give byte-identical
//! weight files for the reference CNN and for a network with Dropout; a checkpoint written on
//! 2 ranks resumes on 3 to the uninterrupted run's weights; an error on one rank ends every
//! rank with an error naming it; a killed rank ends the job within a bounded time.
//!
//! Needs Open MPI's `mpirun` on the PATH (Debian: `openmpi-bin`). Runs as root allowed,
//! everything on loopback (see `../shared/notes/mpi.md` and the README).

use ember_model::data::{load_mnist, Dataset};
use ember_model::distributed::{Collective, MpiCollective};
use ember_model::layers::{Activation, Conv2D, Dense, Dropout, Flatten, MaxPooling2D};
use ember_model::losses::{Loss, Metric};
use ember_model::optimizers::Adam;
use ember_model::{BatchLogs, Callback, EpochLogs, FitOptions, Model, Sequential};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The reference CNN (with `dropout`, a Dropout(0.3) before its dense layer).
fn model(dropout: bool) -> Model {
    let mut m = Sequential::new();
    m.seed(17);
    m.add(Conv2D::new(32, (3, 3)).activation(Activation::Relu).input_shape([28, 28, 1]))
        .add(MaxPooling2D::new((2, 2)))
        .add(Flatten::new());
    if dropout {
        m.add(Dropout::new(0.3));
    }
    m.add(Dense::new(10).activation(Activation::Softmax));
    let mut m = m.into_model();
    m.set_threads(1).unwrap();
    m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[Metric::Accuracy]).unwrap();
    m
}

/// 1,000 MNIST training images: 31 batches of 32 and a last one of 8.
fn data() -> Dataset {
    let (train, _) = load_mnist(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/mnist")).unwrap();
    train.slice(0..1000).unwrap()
}

fn opts(epochs: usize) -> FitOptions {
    FitOptions { epochs, batch_size: 32, validation_split: 0.1, ..FitOptions::default() }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ember-mpi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Starts `mpirun -np ranks` on this binary's worker with `job`; its exit status and
/// output, or a failure if it runs past `limit`.
fn mpirun(ranks: usize, job: &str, limit: Duration) -> (bool, String) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new("mpirun")
        .args(["-np", &ranks.to_string(), "--oversubscribe", "--mca", "btl", "self,vader"])
        .args(["--mca", "oob_tcp_if_include", "lo"])
        .arg(&exe)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("EMBER_MPI_WORKER", job)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun (Open MPI) on the PATH");
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > limit {
            child.kill().ok();
            panic!("mpirun -np {ranks} {job}: still running after {limit:?} (a hang)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const LIMIT: Duration = Duration::from_secs(120);

fn one_two_and_three_ranks_write_one_process_weights() {
    let d = data();
    for dropout in [false, true] {
        let mut single = model(dropout);
        single.fit(&d, None, &opts(1), &mut ()).unwrap();
        let want = single.weights_to_bytes().unwrap();
        for ranks in 1..=3 {
            let out = scratch(&format!("w-{dropout}-{ranks}.safetensors"));
            let (ok, text) = mpirun(ranks, &format!("train {dropout} 1 {}", out.display()), LIMIT);
            assert!(ok, "{ranks} ranks failed:\n{text}");
            assert!(read(&out) == want, "dropout {dropout}, {ranks} ranks: weights differ from one process's");
        }
    }
}

fn a_checkpoint_from_two_ranks_resumes_on_three() {
    let d = data();
    let mut single = model(true);
    single.fit(&d, None, &opts(2), &mut ()).unwrap();
    let want = single.weights_to_bytes().unwrap();
    let ckpt = scratch("resume.ckpt");
    let out = scratch("resumed.safetensors");
    let (ok, text) = mpirun(2, &format!("checkpoint true 1 {}", ckpt.display()), LIMIT);
    assert!(ok, "{text}");
    let (ok, text) = mpirun(3, &format!("resume true 2 {} {}", ckpt.display(), out.display()), LIMIT);
    assert!(ok, "{text}");
    assert!(read(&out) == want, "resumed on 3 ranks: weights differ from an uninterrupted run");
}

fn an_error_on_one_rank_ends_every_rank_naming_it() {
    // Each worker checks its own error and exits successfully when it is as expected.
    let (ok, text) = mpirun(3, "fail 1", LIMIT);
    assert!(ok, "{text}");
    assert_eq!(text.matches("as expected").count(), 3, "{text}");
}

fn a_killed_rank_ends_the_job_without_a_hang() {
    let start = Instant::now();
    let (ok, text) = mpirun(2, "die 1", LIMIT);
    assert!(!ok, "the job succeeded although rank 1 died:\n{text}");
    assert!(text.contains("rank 1"), "mpirun's report names no rank:\n{text}");
    eprintln!("the job ended {:?} after it started", start.elapsed());
}

/// Rank `rank` of the job: errors at the end of epoch 1, or dies at step 3.
struct Sabotage {
    rank: usize,
    die: bool,
    me: usize,
}

impl Callback for Sabotage {
    fn on_batch_end(&mut self, l: &BatchLogs) {
        if self.die && self.me == self.rank && l.step == 3 {
            std::process::abort();
        }
    }
    fn on_epoch_end(&mut self, _l: &EpochLogs, m: &mut Model) -> ember_model::Result<()> {
        if !self.die && m.rank() == self.rank {
            return Err(ember_model::Error::Config("disk full".into()));
        }
        Ok(())
    }
}

/// The checks, each in turn; or, under `mpirun` with `EMBER_MPI_WORKER` set, one rank.
fn main() {
    if let Ok(job) = std::env::var("EMBER_MPI_WORKER") {
        return worker(&job);
    }
    let checks: [(&str, fn()); 4] = [
        ("one_two_and_three_ranks_write_one_process_weights", one_two_and_three_ranks_write_one_process_weights),
        ("a_checkpoint_from_two_ranks_resumes_on_three", a_checkpoint_from_two_ranks_resumes_on_three),
        ("an_error_on_one_rank_ends_every_rank_naming_it", an_error_on_one_rank_ends_every_rank_naming_it),
        ("a_killed_rank_ends_the_job_without_a_hang", a_killed_rank_ends_the_job_without_a_hang),
    ];
    for (name, check) in checks {
        check();
        println!("test {name} ... ok");
    }
    println!("test result: ok. {} passed", checks.len());
}

/// One rank, as `job` says: `train DROPOUT EPOCHS OUT`, `checkpoint DROPOUT EPOCHS CKPT`,
/// `resume DROPOUT EPOCHS CKPT OUT`, `fail RANK`, `die RANK`.
fn worker(job: &str) {
    let w: Vec<&str> = job.split(' ').collect();
    let universe = mpi::initialize().expect("MPI");
    let comm = MpiCollective::new(universe.world());
    let d = data();
    match w[0] {
        "train" | "checkpoint" | "resume" => {
            let mut m = model(w[1] == "true");
            let epochs: usize = w[2].parse().unwrap();
            let mut o = opts(epochs);
            if w[0] == "checkpoint" {
                o.checkpoint = Some(w[3].into());
            }
            if w[0] == "resume" && comm.rank() == 0 {
                m.load_checkpoint(w[3]).unwrap();
                o.initial_epoch = m.epochs_done();
            }
            m.fit_data_parallel(&comm, &d, None, &o, &mut ()).unwrap();
            let out = if w[0] == "resume" {
                w.get(4)
            } else if w[0] == "train" {
                w.get(3)
            } else {
                None
            };
            if let (Some(out), 0) = (out, comm.rank()) {
                m.save_weights(out).unwrap();
            }
        }
        "fail" | "die" => {
            let rank: usize = w[1].parse().unwrap();
            let mut m = model(false);
            let mut cb = Sabotage { rank, die: w[0] == "die", me: comm.rank() };
            let e = m.fit_data_parallel(&comm, &d, None, &opts(2), &mut cb).unwrap_err().to_string();
            let expected = if comm.rank() == rank {
                format!("rank {rank}: invalid configuration: disk full")
            } else {
                format!("rank {rank} failed")
            };
            assert!(e.contains(&expected), "rank {}: {e}", comm.rank());
            println!("rank {}: error as expected", comm.rank());
        }
        other => panic!("unknown job {other}"),
    }
}

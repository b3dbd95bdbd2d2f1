//! Data-parallel `fit` over ranks that are threads ([`ThreadGroup`]; the MPI transport runs
//! the same protocol, tested under `mpirun` in `mpi.rs`): 1, 2 and 3 ranks give weights
//! byte-identical to one process's (uneven final batches, dropout, batch normalization
//! with its statistics joined over the ranks), all ranks agree, a
//! checkpoint resumes on another rank count, and a rank that fails or vanishes ends the run
//! on every rank with an error naming it.

mod common;

use ember_model::data::Dataset;
use ember_model::distributed::{Collective, ThreadGroup};
use ember_model::layers::{
    Activation, ActivationLayer, BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D,
};
use ember_model::losses::{Loss, Metric};
use ember_model::optimizers::Adam;
use ember_model::{Callback, EpochLogs, FitOptions, Model, Sequential};

/// The reference architecture, with or without a Dropout before the dense layer.
fn model(dropout: bool, seed: u64) -> Model {
    model_of(Layers { dropout, batch_norm: false }, seed)
}

/// What the test network has besides the reference architecture.
#[derive(Clone, Copy, Debug)]
struct Layers {
    /// A Dropout before the dense layer.
    dropout: bool,
    /// A BatchNormalization (its statistics over the whole batch, which the ranks share)
    /// between the convolution and its ReLU.
    batch_norm: bool,
}

fn model_of(with: Layers, seed: u64) -> Model {
    let mut m = Sequential::new();
    m.seed(seed);
    if with.batch_norm {
        m.add(Conv2D::new(4, (3, 3)).input_shape([12, 12, 1]))
            .add(BatchNormalization::new())
            .add(ActivationLayer::new(Activation::Relu));
    } else {
        m.add(Conv2D::new(4, (3, 3)).activation(Activation::Relu).input_shape([12, 12, 1]));
    }
    m.add(MaxPooling2D::new((2, 2))).add(Flatten::new());
    if with.dropout {
        m.add(Dropout::new(0.3));
    }
    m.add(Dense::new(4).activation(Activation::Softmax));
    let mut m = m.into_model();
    m.set_threads(1).unwrap();
    m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[Metric::Accuracy]).unwrap();
    m
}

fn data() -> Dataset {
    // 203 samples in batches of 40: three parts of up to 16 samples (five of 8 with batch
    // normalization), a shard each, per batch; a last batch of 3.
    common::quadrant_task(203, 12, 5)
}

fn opts(epochs: usize) -> FitOptions {
    FitOptions { epochs, batch_size: 40, validation_split: 0.1, ..FitOptions::default() }
}

/// Runs `f(rank, comm)` on `ranks` threads; returns their results in rank order.
fn on_ranks<T: Send>(ranks: usize, f: impl Fn(usize, ThreadGroup) -> T + Sync) -> Vec<T> {
    std::thread::scope(|s| {
        let handles: Vec<_> = ThreadGroup::new(ranks)
            .into_iter()
            .enumerate()
            .map(|(r, g)| {
                let f = &f;
                s.spawn(move || f(r, g))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn one_two_and_three_ranks_give_one_process_weights() {
    let d = data();
    let kinds = [(false, false), (true, false), (false, true), (true, true)];
    for with in kinds.map(|(dropout, batch_norm)| Layers { dropout, batch_norm }) {
        let mut single = model_of(with, 3);
        let h = single.fit(&d, None, &opts(2), &mut ()).unwrap();
        let want = single.weights_to_bytes().unwrap();
        for ranks in 1..=3 {
            let results = on_ranks(ranks, |_, comm| {
                let mut m = model_of(with, 3);
                let h = m.fit_data_parallel(&comm, &d, None, &opts(2), &mut ()).unwrap();
                let e = m.evaluate_data_parallel(&comm, &d, 64).unwrap();
                (m.weights_to_bytes().unwrap(), h, e)
            });
            for (r, (w, hr, _)) in results.iter().enumerate() {
                assert!(*w == want, "{with:?}: {ranks} ranks, rank {r}: weights differ from one process's");
                for (a, b) in hr.epochs.iter().zip(&h.epochs) {
                    assert_eq!((a.loss, a.accuracy, a.val_loss), (b.loss, b.accuracy, b.val_loss), "history");
                }
            }
            let e1 = single.evaluate(&d, 64).unwrap();
            assert!(results.iter().all(|(_, _, e)| *e == e1), "evaluate: {ranks} ranks");
        }
    }
}

#[test]
fn rank_zero_state_reaches_every_rank_and_a_checkpoint_resumes_on_another_count() {
    let d = data();
    let dir = std::env::temp_dir().join(format!("ember-dp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("epoch1.ckpt");
    let mut single = model(true, 8);
    single.fit(&d, None, &opts(3), &mut ()).unwrap();
    let want = single.weights_to_bytes().unwrap();
    // Two ranks train epoch 1 and rank 0 writes the checkpoint; the other rank's model was
    // initialised from another seed, which rank 0's state replaces.
    on_ranks(2, |r, comm| {
        let mut m = model(true, if r == 0 { 8 } else { 99 });
        let o = FitOptions { checkpoint: Some(ckpt.clone()), ..opts(1) };
        m.fit_data_parallel(&comm, &d, None, &o, &mut ()).unwrap();
    });
    // Three ranks resume: only rank 0 reads the file (and, as in one process, is given the
    // run's seed: a checkpoint leaves the seed of dropout's masks to the program).
    let out = on_ranks(3, |r, comm| {
        let mut m = model(true, if r == 0 { 8 } else { 100 + r as u64 });
        let mut initial = 0;
        if r == 0 {
            m.load_checkpoint(&ckpt).unwrap();
            initial = m.epochs_done();
        }
        let o = FitOptions { initial_epoch: initial, ..opts(3) };
        let h = m.fit_data_parallel(&comm, &d, None, &o, &mut ()).unwrap();
        (m.weights_to_bytes().unwrap(), h.epochs.len())
    });
    for (r, (w, epochs)) in out.iter().enumerate() {
        assert_eq!(*epochs, 2, "rank {r} ran epochs 2 and 3");
        assert!(*w == want, "rank {r}: resumed weights differ from an uninterrupted run");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Fails at the end of epoch `at` on one rank.
struct FailOn {
    rank: usize,
    at: usize,
}

impl Callback for FailOn {
    fn on_epoch_end(&mut self, logs: &EpochLogs, m: &mut Model) -> ember_model::Result<()> {
        if m.rank() == self.rank && logs.epoch == self.at {
            return Err(ember_model::Error::Config("disk full".into()));
        }
        Ok(())
    }
}

#[test]
fn an_error_on_one_rank_stops_every_rank_naming_it() {
    let d = data();
    let errors = on_ranks(3, |_, comm| {
        let mut m = model(false, 1);
        m.fit_data_parallel(&comm, &d, None, &opts(3), &mut FailOn { rank: 2, at: 2 }).unwrap_err().to_string()
    });
    assert!(errors[2].contains("rank 2") && errors[2].contains("disk full"), "{}", errors[2]);
    for e in &errors[..2] {
        assert!(e.contains("rank 2 failed"), "{e}");
    }
    // Different data on one rank is caught before training.
    let other = common::quadrant_task(203, 12, 6);
    let errors = on_ranks(2, |r, comm| {
        let mut m = model(false, 1);
        let data = if r == 1 { &other } else { &d };
        m.fit_data_parallel(&comm, data, None, &opts(1), &mut ()).unwrap_err().to_string()
    });
    assert!(errors.iter().all(|e| e.contains("rank 1 was given other data")), "{errors:?}");
}

#[test]
fn a_rank_that_vanishes_ends_the_others_with_an_error() {
    let d = data();
    let out = on_ranks(3, |r, comm| {
        if r == 1 {
            drop(comm); // gone before training: its links close
            return String::new();
        }
        let mut m = model(false, 1);
        m.fit_data_parallel(&comm, &d, None, &opts(1), &mut ()).unwrap_err().to_string()
    });
    // Rank 2 may see rank 0 stop first (rank 0 ends as soon as it sees rank 1 gone).
    assert!(out[0].contains("rank 1 has stopped") && out[2].contains("has stopped"), "{out:?}");
    let ranks: Vec<usize> = ThreadGroup::new(2).iter().map(|g| g.rank()).collect();
    assert_eq!(ranks, vec![0, 1]);
}

//! Data-parallel training: `fit` and `evaluate` with the batch's shards spread over the
//! ranks of a [`Collective`] and their gradients combined in a fixed chain (the protocol is
//! described in [`crate::distributed`]). A step's exchange is a type parameter of the loop
//! (`Local` or `Ranks`), so the one-process path stays as it was and the collective (which
//! need not be `Send`) never enters the thread pool.

use super::{Callback, Evaluation, FitOptions, History};
use crate::data::Dataset;
use crate::distributed::{gather_partials, shards_of, Collective};
use crate::error::{Error, Result};
use crate::graph::executor::coupled::Ranked;
use crate::graph::executor::{self, fold_in_order, Shard};
use crate::graph::reduction::Partial;
use crate::io::Record;
use crate::losses::Counts;
use crate::model::Model;
use crate::params::Arena;
use crate::targets::Targets;

/// How a step's shards run and combine.
pub(crate) trait Exchange {
    /// Forward (and with `grads` backward) over the loaded batch: its summed loss and
    /// metric counts, the gradients in the store.
    fn run_loaded(&self, m: &mut Model, training: bool, grads: bool) -> Result<(f64, Counts)>;
    /// A training step on the loaded batch of `n`: mean loss and metric counts.
    fn train_step(&self, m: &mut Model, n: usize) -> Result<(f32, Counts)>;
    /// Whether this process writes files (checkpoints).
    fn chief(&self) -> bool;
    /// `r` on every rank if it is `Ok` on all, else an error on all (see [`agree`]).
    fn agree<T>(&self, r: Result<T>) -> Result<T>;
}

/// One process, inside its pool.
pub(crate) struct Local;

impl Exchange for Local {
    fn run_loaded(&self, m: &mut Model, training: bool, grads: bool) -> Result<(f64, Counts)> {
        m.run_loaded(training, grads)
    }
    fn train_step(&self, m: &mut Model, n: usize) -> Result<(f32, Counts)> {
        m.train_step(n)
    }
    fn chief(&self) -> bool {
        true
    }
    fn agree<T>(&self, r: Result<T>) -> Result<T> {
        r
    }
}

/// A rank of a data-parallel run, outside the pool (it enters it for the compute).
pub(crate) struct Ranks<'c>(pub &'c dyn Collective);

impl Exchange for Ranks<'_> {
    fn run_loaded(&self, m: &mut Model, training: bool, grads: bool) -> Result<(f64, Counts)> {
        run_rank(self.0, m, training, grads)
    }
    fn train_step(&self, m: &mut Model, n: usize) -> Result<(f32, Counts)> {
        let (loss, counts) = run_rank(self.0, m, true, true)?;
        let pool = m.pool()?;
        pool.install(|| m.apply_gradients())?;
        Ok(((loss / n as f64) as f32, counts))
    }
    fn chief(&self) -> bool {
        self.0.rank() == 0
    }
    fn agree<T>(&self, r: Result<T>) -> Result<T> {
        agree(self.0, r)
    }
}

/// Every rank learns whether all ranks' `r` is `Ok`; an error anywhere ends the step on
/// all of them (a failing rank reports its own error, the others name the first that
/// failed).
fn agree<T>(comm: &dyn Collective, r: Result<T>) -> Result<T> {
    let status = comm.all_gather(u64::from(r.is_err()))?;
    match (r, status.iter().position(|&s| s != 0)) {
        (Err(e), _) => Err(Error::Distributed(format!("rank {}: {e}", comm.rank()))),
        (Ok(v), None) => Ok(v),
        (Ok(_), Some(bad)) => Err(Error::Distributed(format!("rank {bad} failed (its output says why); stopping"))),
    }
}

/// This rank's shards of the loaded batch, then the chain (see [`crate::distributed`]).
fn run_rank(comm: &dyn Collective, m: &mut Model, training: bool, grads: bool) -> Result<(f64, Counts)> {
    let (rank, size) = (comm.rank(), comm.size());
    let pool = m.pool()?;
    let computed = run_mine(comm, m, &pool, training, grads);
    let started = std::time::Instant::now();
    let per_shard = agree(comm, computed)?;
    // The chain: (loss, correct, judged, in top k) in f64 (counts are exact below 2^53), and
    // the gradients.
    let mut stats = [0f64; 4];
    let len = m.store.table().trainable_len();
    let count = per_shard.len();
    let pack = |(l, c): (f64, Counts)| [l, c.correct as f64, c.judged as f64, c.top_k as f64];
    if rank == 0 {
        stats = pack(fold_in_order((0.0, Counts::default()), &per_shard));
    } else {
        comm.receive(rank - 1, &mut stats)?;
        let start = Counts { correct: stats[1] as usize, judged: stats[2] as usize, top_k: stats[3] as usize };
        stats = pack(fold_in_order((stats[0], start), &per_shard));
        if grads {
            let mut incoming = std::mem::take(&mut m.train.incoming);
            incoming.resize(len, 0.0);
            comm.receive_f32(rank - 1, &mut incoming)?;
            let Model { store, shard_grads, .. } = &mut *m;
            let arena = store.grads_mut();
            {
                let mut all: Vec<&mut [f32]> = std::iter::once(&mut incoming[..])
                    .chain(std::iter::once(&mut *arena).take(count))
                    .chain(shard_grads.iter_mut().map(Arena::as_mut_slice).take(count.saturating_sub(1)))
                    .collect();
                pool.install(|| executor::sum_in_order(&mut all))?;
            }
            arena.copy_from_slice(&incoming);
            m.train.incoming = incoming;
        }
    }
    if rank + 1 < size {
        comm.send(rank + 1, &stats)?;
        if grads {
            comm.send_f32(rank + 1, m.store.grads_mut())?;
        }
    }
    // The last rank holds the totals.
    let last = size - 1;
    let mut bytes: Vec<u8> = stats.iter().flat_map(|v| v.to_le_bytes()).collect();
    comm.broadcast_bytes(last, &mut bytes)?;
    let word = |i: usize| bytes.get(8 * i..8 * i + 8).and_then(|b| b.try_into().ok()).map(f64::from_le_bytes);
    let (Some(loss), Some(correct), Some(judged), Some(top_k)) = (word(0), word(1), word(2), word(3)) else {
        return Err(Error::Distributed(format!("rank {last} broadcast {} bytes of statistics", bytes.len())));
    };
    if grads {
        comm.broadcast_f32(last, m.store.grads_mut())?;
        m.train.combine += started.elapsed();
    }
    Ok((loss, Counts { correct: correct as usize, judged: judged as usize, top_k: top_k as usize }))
}

/// This rank's shards of the loaded batch on `pool`: each shard's (summed loss, counts),
/// gradients in the store's arena and the shard arenas (on rank 0 already summed in shard
/// order). A plan that reduces over the batch (batch normalization) joins every rank's
/// partials at each reduction ([`gather_partials`]), so its statistics are the whole
/// batch's, as in one process.
fn run_mine(
    comm: &dyn Collective,
    m: &mut Model,
    pool: &rayon::ThreadPool,
    training: bool,
    grads: bool,
) -> Result<Vec<(f64, Counts)>> {
    let (rank, size) = (comm.rank(), comm.size());
    let n = m.batch.targets.len();
    let Model { plan, infer_plan, store, shards, shard_grads, batch, train, seed, .. } = &mut *m;
    let plan = if grads || training { plan } else { infer_plan };
    let plan = plan.as_ref().ok_or(Error::NotCompiled)?;
    if !plan.parts && size > 1 {
        return Err(Error::Config(
            "a model with a layer that couples the batch without reduction halves cannot split its batches across ranks"
                .into(),
        ));
    }
    let len = store.table().trainable_len();
    let total = executor::shard_count(plan, n, len);
    let mine = shards_of(rank, size, total);
    let count = mine.len();
    // A rank with no shard of a coupled plan still joins every reduction, and keeps the
    // joined statistics (for the moving averages) in a shard of no samples.
    let local = if plan.coupled { count.max(1) } else { count };
    shards.resize_with(shards.len().max(local), Shard::default);
    while grads && shard_grads.len() + 1 < local {
        shard_grads.push(Arena::zeros(len)?);
    }
    let (weights, arena) = store.split_mut();
    let compiled = train.compiled.as_ref().ok_or(Error::NotCompiled)?;
    let args = super::step::run_args(compiled, weights, *seed, training, n);
    let mut bufs: Vec<&mut [f32]> = match grads {
        true => std::iter::once(arena).chain(shard_grads.iter_mut().map(Arena::as_mut_slice)).take(local).collect(),
        false => Vec::new(),
    };
    let mut bufs = grads.then_some(&mut bufs[..]);
    // Rank 0 starts the chain: its shards are summed as one process sums them. Later
    // ranks add each of theirs to the running sum they receive, so they keep them apart.
    if !plan.coupled || size == 1 {
        let split = (mine.start, total, rank == 0);
        let x = (&batch.input[..], batch.targets.as_targets());
        return pool.install(|| executor::run_shards(plan, &args, bufs, &mut shards[..count], x, split));
    }
    let mut exchange = |parts: Option<&[&Partial]>| gather_partials(comm, parts);
    let ranked = Ranked { first: mine.start, total, pool, exchange: &mut exchange };
    let x = (&batch.input[..], batch.targets.as_targets());
    let mut per_shard =
        executor::coupled::run(plan, &args, bufs.as_deref_mut(), &mut shards[..local], x, 0, Some(ranked))?;
    per_shard.truncate(count);
    if let (Some(g), 0) = (bufs, rank) {
        pool.install(|| executor::sum_in_order(&mut g[..count]))?;
    }
    Ok(per_shard)
}

/// A fingerprint of what every rank must agree on before a fit: options and data.
fn fingerprint(opts: &FitOptions, train: &Dataset, val: Option<&Dataset>, train_n: usize) -> u64 {
    let labels = |d: &Dataset| match d.targets() {
        Targets::Labels(l) => l.iter().fold(d.len() as u64, |h, &l| crate::rng::mix(h, u64::from(l))),
        Targets::Dense { values, width } => values
            .iter()
            .fold(crate::rng::mix(d.len() as u64, width as u64), |h, &v| crate::rng::mix(h, u64::from(v.to_bits()))),
    };
    let mut h = crate::rng::mix(opts.epochs as u64, opts.batch_size as u64);
    h = crate::rng::mix(h, u64::from(opts.shuffle) | u64::from(opts.validation_split.to_bits()) << 1);
    h = crate::rng::mix(h, train_n as u64);
    h = crate::rng::mix(h, labels(train));
    crate::rng::mix(h, val.map_or(0, labels))
}

impl Model {
    /// This process's rank during a data-parallel fit (0 otherwise): callbacks that write
    /// files do so on rank 0 only.
    pub fn rank(&self) -> usize {
        self.train.rank
    }

    /// The time the last data-parallel fit spent combining the ranks' gradients in its
    /// training steps: from the end of this rank's own shards to the arrival of the totals,
    /// so waiting for slower ranks is included.
    pub fn combine_time(&self) -> std::time::Duration {
        self.train.combine
    }

    /// Keras's `fit` on the ranks of `comm`, data-parallel: every rank calls it with the
    /// same data and options (checked: a mismatch is an error on every rank). Rank 0's
    /// weights, optimizer state, random generator, seed and epochs done are sent to the others
    /// first (so a checkpoint need only be loaded there, and `opts.initial_epoch` is rank
    /// 0's); then each global batch of `opts.batch_size` is split into the shards one
    /// process would use, each rank runs its contiguous slice of them on its threads, and
    /// the gradients are combined in shard order ([`crate::distributed`]): the weights after
    /// every step are bit-identical on every rank and to one process's. Losses, accuracies
    /// and validation are the global batch's. Checkpoints (`opts.checkpoint`) are written by
    /// rank 0 only; `callback` runs on every rank.
    pub fn fit_data_parallel(
        &mut self,
        comm: &dyn Collective,
        train: &Dataset,
        validation: Option<&Dataset>,
        opts: &FitOptions,
        callback: &mut dyn Callback,
    ) -> Result<History> {
        let mut split = None;
        let checked = self.fit_data(train, validation, opts, &mut split);
        let (train_n, val) = agree(comm, checked)?;
        let prints = comm.all_gather(fingerprint(opts, train, val, train_n))?;
        if let Some(r) = prints.iter().position(|&p| p != prints[0]) {
            return Err(Error::Distributed(format!(
                "rank {r} was given other data or options than rank 0 (epochs, batch size, shuffle, validation, samples or labels differ)"
            )));
        }
        let initial_epoch = self.sync_from_rank0(comm, opts.initial_epoch)?;
        self.train.rank = comm.rank();
        self.train.combine = std::time::Duration::ZERO;
        let opts = FitOptions { initial_epoch, ..opts.clone() };
        let r = self.fit_loop(train, train_n, val, &opts, callback, &Ranks(comm));
        self.train.rank = 0;
        r
    }

    /// Keras's `evaluate`, data-parallel over the ranks of `comm` (every rank calls it with
    /// the same data): each batch's shards run on the ranks, the losses and counts are
    /// combined in shard order, and every rank gets the same result as one process.
    pub fn evaluate_data_parallel(
        &mut self,
        comm: &dyn Collective,
        data: &Dataset,
        batch_size: usize,
    ) -> Result<Evaluation> {
        let checked = self.check_data(data).and_then(|()| {
            if batch_size == 0 {
                return Err(Error::Config("batch size must be at least 1".into()));
            }
            Ok(())
        });
        agree(comm, checked)?;
        self.evaluate_inner(data, batch_size, &Ranks(comm))
    }

    /// Sends rank 0's weights, optimizer state, generator and epochs done (a checkpoint
    /// record), its seed and its `initial_epoch` to every rank; returns rank 0's
    /// `initial_epoch`.
    fn sync_from_rank0(&mut self, comm: &dyn Collective, initial_epoch: usize) -> Result<usize> {
        let mut bytes = Vec::new();
        if comm.rank() == 0 {
            let mut r = super::checkpoint::record(self)?;
            r.metadata.insert("initial_epoch".into(), initial_epoch.to_string());
            // The seed of the dropout masks (a checkpoint leaves it to the program).
            r.metadata.insert("seed".into(), self.seed.to_string());
            bytes = r.to_bytes()?;
        }
        comm.broadcast_bytes(0, &mut bytes)?;
        let restored = (|| {
            let r = Record::from_bytes(&bytes, "rank 0's state")?;
            let epoch = r.number("initial_epoch").map_err(|e| Error::Distributed(e.to_string()))?;
            let seed = r.number("seed").map_err(|e| Error::Distributed(e.to_string()))?;
            if comm.rank() != 0 {
                super::checkpoint::restore(self, &r, "rank 0's state")?;
                self.seed = seed;
            }
            Ok(epoch as usize)
        })();
        agree(comm, restored)
    }
}

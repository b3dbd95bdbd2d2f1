//! Thread pools shared by every model with the same thread count: building a model starts
//! no threads (the first model of a count starts its pool, which then lives as long as the
//! process), so a program that builds models in a loop does not start and stop OS threads.
//! Everything a model runs, runs inside its pool (kernels called from outside a pool would
//! pay rayon's job injection on every call).

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// More threads than any machine could use: past it, asking for threads is an error rather
/// than an attempt to start them until memory runs out.
pub const MAX_THREADS: usize = 4096;

static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();

/// The shared pool of `threads` threads (0: one per CPU).
pub(crate) fn pool(threads: usize) -> Result<Arc<rayon::ThreadPool>> {
    if threads > MAX_THREADS {
        return Err(Error::Config(format!("{threads} threads: at most {MAX_THREADS} (0 for one per CPU)")));
    }
    let threads = if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { threads };
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| Error::Config("thread pool registry poisoned".into()))?;
    if let Some(p) = pools.get(&threads) {
        return Ok(p.clone());
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("ember-{threads}-{i}"))
        .build()
        .map_err(|e| Error::Config(format!("cannot start {threads} threads: {e}")))?;
    let p = Arc::new(p);
    pools.insert(threads, p.clone());
    Ok(p)
}

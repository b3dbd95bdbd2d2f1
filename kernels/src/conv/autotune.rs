//! Opt-in measured algorithm choice ([`super::ConvAlgo::Measured`]): the first call for a
//! (shape, pass, ISA, thread count) times every applicable algorithm and caches the fastest
//! for the rest of the process.
//!
//! Each candidate runs twice and the second run is timed (the first grows the scratch
//! buffers). Timings on a busy machine can pick differently from run to run, so unlike
//! `Auto` the choice is not reproducible across processes; within a process it never
//! changes after the first call, so results stay bit-identical call to call.

use super::{Conv2d, ConvAlgo, Pass};
use crate::arch::Isa;
use crate::error::Result;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

type Key = (Conv2d, Pass, Isa, usize);

fn cache() -> &'static Mutex<HashMap<Key, ConvAlgo>> {
    static CACHE: OnceLock<Mutex<HashMap<Key, ConvAlgo>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn key(c: &Conv2d, pass: Pass, isa: Isa) -> Key {
    (*c, pass, isa, rayon::current_num_threads())
}

/// The algorithm measured for `pass` of `c` on `isa` with the current thread count, if any.
pub fn measured_algo(c: &Conv2d, pass: Pass, isa: Isa) -> Option<ConvAlgo> {
    cache().lock().map(|m| m.get(&key(c, pass, isa)).copied()).unwrap_or(None)
}

/// Forgets every measurement (the next `Measured` call for each shape measures again).
pub fn clear_measurements() {
    if let Ok(mut m) = cache().lock() {
        m.clear();
    }
}

/// The cached winner, or the fastest of the applicable algorithms after timing each with
/// `run` (which computes the pass into the caller's output).
pub(crate) fn pick(c: &Conv2d, pass: Pass, isa: Isa, mut run: impl FnMut(ConvAlgo) -> Result<()>) -> Result<ConvAlgo> {
    if let Some(a) = measured_algo(c, pass, isa) {
        return Ok(a);
    }
    let mut best = (Duration::MAX, ConvAlgo::Direct);
    for algo in ConvAlgo::CONCRETE.into_iter().filter(|a| a.supports(c, pass)) {
        run(algo)?;
        let t0 = Instant::now();
        run(algo)?;
        let dt = t0.elapsed();
        if dt < best.0 {
            best = (dt, algo);
        }
    }
    if let Ok(mut m) = cache().lock() {
        m.insert(key(c, pass, isa), best.1);
    }
    Ok(best.1)
}

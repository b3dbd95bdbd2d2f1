//! Data-parallel training across processes: the messages a run exchanges ([`Collective`]),
//! a transport over threads of one process ([`ThreadGroup`], for tests and for trying a
//! rank count on one machine) and, with the `mpi` feature, over MPI (`MpiCollective`).
//!
//! How a step runs on `R` ranks ([`crate::Model::fit_data_parallel`]): every rank loads the
//! same global batch (the shuffle is the same permutation everywhere: the generator's state
//! comes from rank 0), which is split into the same shards as in one process (a function of
//! the batch size and the model only). Rank `r` runs the contiguous shards
//! `ceil(r S / R) .. ceil((r + 1) S / R)` on its threads and adds their gradients in shard
//! order. The ranks' sums are then combined in a **chain**: rank 0 sends its sum to rank 1,
//! which adds its shards' gradients to it one after another, in shard order, and passes it
//! on; the last rank broadcasts the total. Every addition is the one a single process does,
//! in the same order (`g_0 + g_1 + ... + g_{S-1}`, left to right), so the gradients, hence the
//! weights, are bit-identical to one process's on any number of ranks. MPI's `Allreduce`
//! leaves the order of its sum to the implementation (ring, tree, recursive halving: it
//! changes with the rank count and message size), which is why it is not used. The losses
//! and correct counts ride along the chain the same way.
//!
//! Batch normalization: a training step's statistics are the global batch's. At each of
//! its reductions (the forward's moments, the backward's two sums) the ranks all-gather
//! their parts' partials (with whether their parts ran: [`Collective::all_gather_f64`],
//! one `Allgatherv` under MPI), and every rank joins all of them in rank order, which is the batch's part order (ranks hold contiguous shards): the
//! same values, joined in the same order as in one process, so the statistics, the moving
//! averages and the weights are the same bits on any number of ranks.
//!
//! Failure: before the chain, every rank reports whether its shards ran (`all_gather`), so
//! an error on one rank ends the step on all of them with an error naming that rank. A rank
//! that dies is the launcher's to report: `mpirun` ends the job when a process exits
//! without finalizing.

#[cfg(feature = "mpi")]
mod mpi;
mod statistics;
mod thread_group;

#[cfg(feature = "mpi")]
pub use self::mpi::MpiCollective;
pub(crate) use statistics::gather_partials;
pub use thread_group::ThreadGroup;

use crate::error::Result;

/// The messages a data-parallel run exchanges between its ranks. Every rank calls the same
/// collectives in the same order; `send` / `receive` pair up by (sender, receiver) in order.
/// Errors are transport failures (a peer gone); they end the run.
pub trait Collective {
    /// This process's rank, `0..size()`.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// Sends `data` to rank `to`.
    fn send(&self, to: usize, data: &[f64]) -> Result<()>;
    /// Receives exactly `data.len()` values from rank `from`.
    fn receive(&self, from: usize, data: &mut [f64]) -> Result<()>;
    /// Sends `data` to rank `to`.
    fn send_f32(&self, to: usize, data: &[f32]) -> Result<()>;
    /// Receives exactly `data.len()` values from rank `from`.
    fn receive_f32(&self, from: usize, data: &mut [f32]) -> Result<()>;
    /// Rank `root`'s `data` into every rank's `data` (same length everywhere).
    fn broadcast_f32(&self, root: usize, data: &mut [f32]) -> Result<()>;
    /// Rank `root`'s bytes into every rank's `data` (resized to the root's length).
    fn broadcast_bytes(&self, root: usize, data: &mut Vec<u8>) -> Result<()>;
    /// Every rank's `value`, in rank order.
    fn all_gather(&self, value: u64) -> Result<Vec<u64>>;
    /// Every rank's `mine` (any length, each rank its own), in rank order. By default each
    /// rank broadcasts its values in turn (`size()` broadcasts); a transport with an
    /// all-gather of its own (MPI's `Allgatherv`) does it in one collective.
    fn all_gather_f64(&self, mine: &[f64]) -> Result<Vec<Vec<f64>>> {
        let mut all = Vec::with_capacity(self.size());
        for root in 0..self.size() {
            let mut bytes = Vec::new();
            if root == self.rank() {
                bytes = mine.iter().flat_map(|v| v.to_le_bytes()).collect();
            }
            self.broadcast_bytes(root, &mut bytes)?;
            if !bytes.len().is_multiple_of(8) {
                return Err(crate::Error::Distributed(format!(
                    "rank {root} sent {} bytes, not whole f64s",
                    bytes.len()
                )));
            }
            all.push(bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect());
        }
        Ok(all)
    }
}

/// The shards of `total` that rank `rank` of `size` runs: contiguous, rank 0's never empty.
pub(crate) fn shards_of(rank: usize, size: usize, total: usize) -> std::ops::Range<usize> {
    (rank * total).div_ceil(size)..((rank + 1) * total).div_ceil(size)
}

#[cfg(test)]
mod tests {
    use super::shards_of;

    #[test]
    fn shards_split_contiguously_and_completely() {
        for total in 1..=9 {
            for size in 1..=5 {
                let ranges: Vec<_> = (0..size).map(|r| shards_of(r, size, total)).collect();
                assert!(!ranges[0].is_empty());
                assert_eq!(ranges[0].start, 0);
                assert_eq!(ranges[size - 1].end, total);
                assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
            }
        }
    }
}

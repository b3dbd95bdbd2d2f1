//! [`MpiCollective`]: the ranks of an MPI communicator (the `mpi` feature; the `mpi` crate
//! over the system's MPI, e.g. Debian's Open MPI).

use super::Collective;
use crate::error::Result;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

/// The ranks of an MPI communicator. MPI's default error handler ends the job on a
/// transport error, so these calls do not return one.
pub struct MpiCollective {
    comm: SimpleCommunicator,
}

impl MpiCollective {
    /// The ranks of `comm` (usually `universe.world()` after `mpi::initialize()`).
    pub fn new(comm: SimpleCommunicator) -> MpiCollective {
        MpiCollective { comm }
    }

    /// The communicator.
    pub fn communicator(&self) -> &SimpleCommunicator {
        &self.comm
    }

    /// Ends every rank of the job with `code` (`MPI_Abort`): for an error on one rank
    /// outside a collective, where the others would otherwise wait for it.
    pub fn abort(&self, code: i32) -> ! {
        self.comm.abort(code)
    }

    fn at(&self, rank: usize) -> mpi::topology::Process<'_> {
        self.comm.process_at_rank(rank as i32)
    }
}

impl Collective for MpiCollective {
    fn rank(&self) -> usize {
        self.comm.rank() as usize
    }
    fn size(&self) -> usize {
        self.comm.size() as usize
    }
    fn send(&self, to: usize, data: &[f64]) -> Result<()> {
        self.at(to).send(data);
        Ok(())
    }
    fn receive(&self, from: usize, data: &mut [f64]) -> Result<()> {
        self.at(from).receive_into(data);
        Ok(())
    }
    fn send_f32(&self, to: usize, data: &[f32]) -> Result<()> {
        self.at(to).send(data);
        Ok(())
    }
    fn receive_f32(&self, from: usize, data: &mut [f32]) -> Result<()> {
        self.at(from).receive_into(data);
        Ok(())
    }
    fn broadcast_f32(&self, root: usize, data: &mut [f32]) -> Result<()> {
        self.at(root).broadcast_into(data);
        Ok(())
    }
    fn broadcast_bytes(&self, root: usize, data: &mut Vec<u8>) -> Result<()> {
        let mut len = data.len() as u64;
        self.at(root).broadcast_into(&mut len);
        data.resize(len as usize, 0);
        self.at(root).broadcast_into(&mut data[..]);
        Ok(())
    }
    fn all_gather(&self, value: u64) -> Result<Vec<u64>> {
        let mut all = vec![0u64; self.size()];
        self.comm.all_gather_into(&value, &mut all[..]);
        Ok(all)
    }
}

//! [`MpiCollective`]: the ranks of an MPI communicator (the `mpi` feature; the `mpi` crate
//! over the system's MPI, e.g. Debian's Open MPI).

use super::Collective;
use crate::error::{Error, Result};
use mpi::datatype::PartitionMut;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Count;

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
    /// Two collectives: the lengths (`Allgather`), then the values (`Allgatherv`).
    fn all_gather_f64(&self, mine: &[f64]) -> Result<Vec<Vec<f64>>> {
        let lens = self.all_gather(mine.len() as u64)?;
        // MPI counts and displacements are C ints.
        let too_many = || {
            Error::Distributed(format!("{} values to all-gather: MPI counts them in a C int", lens.iter().sum::<u64>()))
        };
        let counts: Vec<Count> =
            lens.iter().map(|&n| Count::try_from(n)).collect::<std::result::Result<_, _>>().map_err(|_| too_many())?;
        let displs: Vec<Count> = counts
            .iter()
            .scan(0 as Count, |at, &n| {
                let here = *at;
                *at = at.checked_add(n)?;
                Some(here)
            })
            .collect();
        if displs.len() != counts.len() {
            return Err(too_many());
        }
        let mut all = vec![0f64; lens.iter().sum::<u64>() as usize];
        self.comm.all_gather_varcount_into(mine, &mut PartitionMut::new(&mut all[..], &counts[..], &displs[..]));
        let mut rest = &all[..];
        Ok(lens
            .iter()
            .map(|&n| {
                let (one, after) = rest.split_at(n as usize);
                rest = after;
                one.to_vec()
            })
            .collect())
    }
}

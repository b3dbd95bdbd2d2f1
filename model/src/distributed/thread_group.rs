//! [`ThreadGroup`]: ranks that are threads of one process, exchanging messages over
//! channels. For tests of the data-parallel protocol without MPI, and for trying a rank
//! count on one machine.

use super::Collective;
use crate::error::{Error, Result};
use std::sync::mpsc::{channel, Receiver, Sender};

enum Message {
    F64(Vec<f64>),
    F32(Vec<f32>),
    Bytes(Vec<u8>),
}

/// One rank of a group of threads: `ThreadGroup::new(n)` makes the `n` ranks; move each
/// into its own thread. A rank whose peer has gone gets an error, never a hang.
pub struct ThreadGroup {
    rank: usize,
    to: Vec<Sender<Message>>,
    from: Vec<Receiver<Message>>,
}

impl ThreadGroup {
    /// The ranks `0..size` of a new group.
    pub fn new(size: usize) -> Vec<ThreadGroup> {
        // links[i][j]: from rank i to rank j.
        let mut senders: Vec<Vec<Option<Sender<Message>>>> =
            (0..size).map(|_| (0..size).map(|_| None).collect()).collect();
        let mut receivers: Vec<Vec<Option<Receiver<Message>>>> =
            (0..size).map(|_| (0..size).map(|_| None).collect()).collect();
        for (i, row) in senders.iter_mut().enumerate() {
            for (j, slot) in row.iter_mut().enumerate() {
                let (s, r) = channel();
                *slot = Some(s);
                receivers[j][i] = Some(r);
            }
        }
        senders
            .into_iter()
            .zip(receivers)
            .enumerate()
            .map(|(rank, (to, from))| ThreadGroup {
                rank,
                to: to.into_iter().map(|s| s.expect("made")).collect(),
                from: from.into_iter().map(|r| r.expect("made")).collect(),
            })
            .collect()
    }

    fn put(&self, to: usize, m: Message) -> Result<()> {
        let link = self.to.get(to).ok_or_else(|| Error::Distributed(format!("no rank {to}")))?;
        link.send(m).map_err(|_| Error::Distributed(format!("rank {to} has stopped")))
    }

    fn take(&self, from: usize) -> Result<Message> {
        let link = self.from.get(from).ok_or_else(|| Error::Distributed(format!("no rank {from}")))?;
        link.recv().map_err(|_| Error::Distributed(format!("rank {from} has stopped")))
    }
}

fn mismatch(from: usize) -> Error {
    Error::Distributed(format!("rank {from} sent a message of another kind or length"))
}

impl Collective for ThreadGroup {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.to.len()
    }
    fn send(&self, to: usize, data: &[f64]) -> Result<()> {
        self.put(to, Message::F64(data.to_vec()))
    }
    fn receive(&self, from: usize, data: &mut [f64]) -> Result<()> {
        match self.take(from)? {
            Message::F64(v) if v.len() == data.len() => {
                data.copy_from_slice(&v);
                Ok(())
            }
            _ => Err(mismatch(from)),
        }
    }
    fn send_f32(&self, to: usize, data: &[f32]) -> Result<()> {
        self.put(to, Message::F32(data.to_vec()))
    }
    fn receive_f32(&self, from: usize, data: &mut [f32]) -> Result<()> {
        match self.take(from)? {
            Message::F32(v) if v.len() == data.len() => {
                data.copy_from_slice(&v);
                Ok(())
            }
            _ => Err(mismatch(from)),
        }
    }
    fn broadcast_f32(&self, root: usize, data: &mut [f32]) -> Result<()> {
        if self.rank == root {
            (0..self.size()).filter(|&r| r != root).try_for_each(|r| self.send_f32(r, data))
        } else {
            self.receive_f32(root, data)
        }
    }
    fn broadcast_bytes(&self, root: usize, data: &mut Vec<u8>) -> Result<()> {
        if self.rank == root {
            (0..self.size()).filter(|&r| r != root).try_for_each(|r| self.put(r, Message::Bytes(data.clone())))
        } else {
            match self.take(root)? {
                Message::Bytes(v) => {
                    *data = v;
                    Ok(())
                }
                _ => Err(mismatch(root)),
            }
        }
    }
    fn all_gather(&self, value: u64) -> Result<Vec<u64>> {
        for r in (0..self.size()).filter(|&r| r != self.rank) {
            self.put(r, Message::F64(vec![f64::from_bits(value)]))?;
        }
        (0..self.size())
            .map(|r| {
                if r == self.rank {
                    return Ok(value);
                }
                match self.take(r)? {
                    Message::F64(v) if v.len() == 1 => Ok(v[0].to_bits()),
                    _ => Err(mismatch(r)),
                }
            })
            .collect()
    }
}

//! A flat f32 buffer aligned to 64 bytes without `unsafe`: the parameter store's arenas.

use crate::error::{Error, Result};

/// Floats per 64 bytes: every tensor starts on this boundary of its arena.
pub(crate) const ALIGN: usize = 16;

/// A flat f32 buffer whose element 0 sits on a 64-byte boundary (found with safe
/// `align_offset` inside a slightly larger `Vec`, re-found after a clone).
#[derive(Debug, Default)]
pub struct Arena {
    buf: Vec<f32>,
    off: usize,
    len: usize,
}

impl Arena {
    /// `len` zeros; an error (not an abort) when they cannot be allocated.
    pub fn zeros(len: usize) -> Result<Self> {
        let total = len.checked_add(ALIGN).ok_or_else(|| Error::Config(format!("{len} parameters overflow")))?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(total).map_err(|e| Error::Config(format!("cannot allocate {len} parameters: {e}")))?;
        buf.resize(total, 0.0);
        let off = buf.as_ptr().align_offset(64).min(ALIGN);
        Ok(Arena { buf, off, len })
    }
    /// The elements.
    pub fn as_slice(&self) -> &[f32] {
        &self.buf[self.off..self.off + self.len]
    }
    /// The elements, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.buf[self.off..self.off + self.len]
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Clone for Arena {
    fn clone(&self) -> Self {
        let mut a = Arena::zeros(self.len).expect("an arena of a size that exists once can be allocated again");
        a.as_mut_slice().copy_from_slice(self.as_slice());
        a
    }
}

//! A flat f32 buffer aligned to 64 bytes without `unsafe`: the parameter store's arenas,
//! and the activation and gradient buffers a [`crate::Shard`] runs in.
//!
//! Why 64 bytes: an AVX-512 load or store of 16 floats that straddles two cache lines
//! costs two. A `Vec<f32>` of a few hundred KiB comes from `mmap` 16 bytes past a page
//! boundary, so every such access in it straddles; measured on the suite's dense head
//! (16 samples x 5408 inputs, one thread, Intel AVX-512, a throwaway probe over the public
//! kernels): forward 19.4 → 12.4 µs, backward-data 14.1 → 11.5 µs once its buffers start
//! on a line. (The suite's training steps moved within their noise when the shards'
//! buffers became aligned: what alignment buys there depends on where the allocator put
//! them before.)

use crate::error::{Error, Result};
use std::ops::{Deref, DerefMut};

/// Floats per 64 bytes: every tensor starts on this boundary of its arena.
pub(crate) const ALIGN: usize = 16;

/// A flat f32 buffer whose element 0 sits on a 64-byte boundary (found with safe
/// `align_offset` inside a slightly larger `Vec`, re-found after a clone or a growth).
/// Reads and writes as a slice.
#[derive(Debug, Default)]
pub struct Arena {
    buf: Vec<f32>,
    off: usize,
    len: usize,
}

impl Arena {
    /// `len` zeros; an error (not an abort) when they cannot be allocated (the message
    /// counts floats: an arena holds parameters, optimizer slots or activations).
    pub fn zeros(len: usize) -> Result<Self> {
        let total = len.checked_add(ALIGN).ok_or_else(|| Error::Config(format!("{len} floats overflow a buffer")))?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(total).map_err(|e| Error::Config(format!("cannot allocate {len} floats: {e}")))?;
        buf.resize(total, 0.0);
        let off = buf.as_ptr().align_offset(64).min(ALIGN);
        Ok(Arena { buf, off, len })
    }
    /// A copy of `values`; an error (not an abort) when they cannot be allocated.
    pub fn from_values(values: &[f32]) -> Result<Self> {
        let mut a = Arena::zeros(values.len())?;
        a.as_mut_slice().copy_from_slice(values);
        Ok(a)
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
    /// Makes the buffer `len` floats long, as `Vec::resize(len, 0.0)`: the first
    /// `min(len, old length)` keep their values, the rest are zeros. Reallocates (and
    /// copies) only past the largest length it has held. Panics, as `Vec` does, where the
    /// memory cannot be had (the model's buffers are sized from shapes it has checked).
    pub(crate) fn resize(&mut self, len: usize) {
        if self.off + len > self.buf.len() {
            let mut grown = Arena::zeros(len).expect("a buffer of the model's size can be allocated");
            let keep = self.len.min(len);
            grown.as_mut_slice()[..keep].copy_from_slice(&self.as_slice()[..keep]);
            *self = grown;
            return;
        }
        if len > self.len {
            self.buf[self.off + self.len..self.off + len].fill(0.0);
        }
        self.len = len;
    }
}

impl Deref for Arena {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        self.as_slice()
    }
}

impl DerefMut for Arena {
    fn deref_mut(&mut self) -> &mut [f32] {
        self.as_mut_slice()
    }
}

impl Clone for Arena {
    fn clone(&self) -> Self {
        Arena::from_values(self.as_slice()).expect("an arena of a size that exists once can be allocated again")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_keeps_values_zeroes_the_rest_and_stays_aligned() {
        let mut a = Arena::default();
        assert!(a.is_empty());
        a.resize(5);
        a.copy_from_slice(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        a.resize(3);
        assert_eq!(&a[..], &[1.0, 2.0, 3.0]);
        // Growing within the allocation zeroes what comes back into view.
        a.resize(5);
        assert_eq!(&a[..], &[1.0, 2.0, 3.0, 0.0, 0.0]);
        // Growing past it reallocates and keeps the values.
        a.resize(100_000);
        assert_eq!(&a[..6], &[1.0, 2.0, 3.0, 0.0, 0.0, 0.0]);
        assert!(a[5..].iter().all(|&v| v == 0.0));
        assert_eq!(a.as_ptr().align_offset(64), 0);
        let b = a.clone();
        assert_eq!(b.as_ptr().align_offset(64), 0);
        assert_eq!(&b[..], &a[..]);
    }
}

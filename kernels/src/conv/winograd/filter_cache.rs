//! Transformed filters kept per thread while their weights stay the same.
//!
//! A network runs each convolution once per part of its batch (8 samples at a time), with
//! the same weights for every part of a step, and every Winograd pass transformed its
//! filter again: 1.5% of the residual network's step, ~6% of the keras.io convnet's (its
//! 32 -> 64 filter, transposed per tap for backward-data, then transformed). A caller that
//! names its weights' version ([`crate::Ctx::weights_version`]) gets the transform made by
//! the first call of a step on this thread, found by the weights' address, the version, the
//! form the pass reads and the shape.

use crate::scratch::{aligned_window, with_scratch, Slot};
use std::cell::RefCell;
use std::sync::Arc;

/// The filter as a pass reads it before the transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// The 3x3 HWIO filter as given (forward).
    Forward,
    /// Rotated 180° with its channels swapped: the transposed problem's filter
    /// (backward-data by the forward of the transposed problem).
    Flipped,
    /// Channels swapped per tap, not rotated (the adjoint backward-data).
    Transposed,
}

/// What a transform was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Key {
    /// The filter's address and length.
    pub place: (usize, usize),
    /// The caller's version of its values.
    pub version: u64,
    pub form: Form,
    /// Winograd's `M` and the transformed filter's `(cin, cout)`.
    pub shape: (usize, usize, usize),
}

impl Key {
    /// Whether `other` is a transform of the same filter place, form and shape (any version).
    fn same_filter(&self, other: &Key) -> bool {
        (self.place, self.form, self.shape) == (other.place, other.form, other.shape)
    }
}

/// A transform and where its 64-byte aligned window starts in its buffer.
struct Entry {
    key: Key,
    data: Arc<(Vec<f32>, usize)>,
    last_use: u64,
}

/// Transforms a thread keeps at most (the residual network has 10: five 3x3 convolutions,
/// forward and backward-data), and floats in all (32 MiB: a 256 -> 256 F(4x4) transform is
/// 9.4 MB; the residual network's ten are 2.4 MB); the least recently used go first, and a
/// transform over the whole budget is made in the thread's scratch, as without a version.
const ENTRIES: usize = 16;
const FLOATS: usize = 8 << 20;

thread_local! {
    static CACHE: RefCell<(Vec<Entry>, u64)> = const { RefCell::new((Vec::new(), 0)) };
}

/// Runs `f` on the transformed filter of `key` (`len` floats, 64-byte aligned): this
/// thread's kept one, or one `make` writes (every float of it) and that is kept, replacing
/// any older version of the same filter.
///
/// The cache is not borrowed while `make` or `f` run: both may fork, and a task this thread
/// steals meanwhile may use the cache.
pub(super) fn with_transformed<R>(
    key: Key,
    len: usize,
    make: impl FnOnce(&mut [f32]),
    f: impl FnOnce(&[f32]) -> R,
) -> R {
    if len > FLOATS {
        return with_scratch(Slot::Filter, len, |u| {
            make(u);
            f(u)
        });
    }
    let hit = CACHE.with(|c| {
        let (entries, clock) = &mut *c.borrow_mut();
        *clock += 1;
        let e = entries.iter_mut().find(|e| e.key == key)?;
        e.last_use = *clock;
        Some(Arc::clone(&e.data))
    });
    if let Some(data) = hit {
        let (v, off) = &*data;
        return f(&v[*off..*off + len]);
    }
    // The buffer of the transform this one replaces (the same filter's older version), when
    // nothing else holds it: a fresh one per filter and step was allocated, zeroed and
    // faulted in anew (0.3% of the residual network's step in `memset` alone).
    let mut v = CACHE
        .with(|c| {
            let (entries, _) = &mut *c.borrow_mut();
            let i = entries.iter().position(|e| e.key.same_filter(&key))?;
            Arc::try_unwrap(entries.swap_remove(i).data).ok()
        })
        .map_or_else(Vec::new, |(v, _)| v);
    let window = aligned_window(&mut v, len);
    make(window);
    let off = window.as_ptr() as usize - v.as_ptr() as usize;
    let data = Arc::new((v, off / std::mem::size_of::<f32>()));
    CACHE.with(|c| {
        let (entries, clock) = &mut *c.borrow_mut();
        entries.retain(|e| !e.key.same_filter(&key));
        let held = |entries: &[Entry]| entries.iter().map(|e| e.data.0.len()).sum::<usize>();
        while !entries.is_empty() && (entries.len() >= ENTRIES || held(entries) + len > FLOATS) {
            if let Some(oldest) = entries.iter().enumerate().min_by_key(|(_, e)| e.last_use).map(|(i, _)| i) {
                entries.swap_remove(oldest);
            }
        }
        entries.push(Entry { key, data: Arc::clone(&data), last_use: *clock });
    });
    let (v, off) = &*data;
    f(&v[*off..*off + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(version: u64) -> Key {
        Key { place: (0x1000, 9), version, form: Form::Forward, shape: (4, 1, 1) }
    }

    #[test]
    fn a_kept_transform_is_reused_until_the_version_changes() {
        let made = std::cell::Cell::new(0);
        let make = |v: f32| {
            let made = &made;
            move |u: &mut [f32]| {
                made.set(made.get() + 1);
                u.fill(v);
            }
        };
        let first = with_transformed(key(7), 36, make(1.0), |u| u.to_vec());
        let again = with_transformed(key(7), 36, make(2.0), |u| u.to_vec());
        assert_eq!((first, again, made.get()), (vec![1.0; 36], vec![1.0; 36], 1));
        let held = with_transformed(key(7), 36, make(0.0), |u| u.as_ptr() as usize);
        assert_eq!(held % 64, 0);
        // Made again, in the buffer of the version it replaces (nothing else held it): the
        // maker finds the older transform there (a new buffer would hold zeros).
        let found = std::cell::Cell::new(0.0);
        let remake = |u: &mut [f32]| {
            found.set(u[0]);
            make(3.0)(u)
        };
        let newer = with_transformed(key(8), 36, remake, |u| (u.to_vec(), u.as_ptr() as usize));
        assert_eq!((newer, found.get(), made.get()), ((vec![3.0; 36], held), 1.0, 2));
        // The older version was replaced, not kept beside the newer one.
        let older = with_transformed(key(7), 36, make(4.0), |u| u[0]);
        assert_eq!((older, made.get()), (4.0, 3));
        // While a caller still reads the version being replaced (a pass inside a pass), the
        // newer one gets a buffer of its own, and the caller's stays as it was.
        let (inner, outer) = with_transformed(key(7), 36, make(0.0), |outer| {
            (with_transformed(key(9), 36, make(6.0), |u| (u.to_vec(), u.as_ptr() as usize)), outer.to_vec())
        });
        assert_eq!((inner.0, outer, made.get()), (vec![6.0; 36], vec![4.0; 36], 4));
        assert_ne!(inner.1, held);
        let other_form = Key { form: Form::Flipped, ..key(7) };
        assert_eq!(with_transformed(other_form, 36, make(5.0), |u| u[0]), 5.0);
        // Over the budget: made each time (in scratch), never kept.
        let big = Key { place: (0x2000, 9), ..key(9) };
        let made_before = made.get();
        with_transformed(big, FLOATS + 1, make(6.0), |_| ());
        with_transformed(big, FLOATS + 1, make(6.0), |_| ());
        assert_eq!(made.get(), made_before + 2);
    }
}

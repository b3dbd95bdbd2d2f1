//! Reusable per-thread scratch buffers (packing panels, im2col columns, Winograd tiles), so
//! kernels allocate nothing in steady state. A buffer is taken out of its thread-local slot
//! for the duration of a use and put back after, so a nested use on the same thread (rayon
//! work-stealing can run another kernel call while one waits) just gets a fresh buffer
//! instead of a borrow panic.

use std::cell::Cell;

/// Which per-thread buffer to use; uses that can be live at once need different slots.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Slot {
    /// Packed A block (GEMM).
    PackA,
    /// Packed B block (GEMM).
    PackB,
    /// Lowered input (im2col) or transformed tiles (Winograd).
    Lowered,
    /// Padded activations for convolution algorithms.
    Aux,
    /// A transformed filter (Winograd).
    Filter,
    /// Per-position products (Winograd).
    Product,
    /// The rotated, channel-swapped filter of a backward-data pass.
    Flipped,
    /// A part's gradient before it is added to the running sum (accumulating passes).
    Partial,
    /// Per-group sums of a Winograd backward-filter pass.
    GroupSums,
    /// A pooled gradient unpooled for an algorithm that reads the dense one, or masked by
    /// its ReLU for the bias gradient.
    Unpooled,
    /// Per-channel constants a pass folds from its arguments (batch norm's input gradient).
    Constants,
}

thread_local! {
    static SLOTS: [Cell<Vec<f32>>; 11] = const { [const { Cell::new(Vec::new()) }; 11] };
}

/// Floats of slack so that a 64-byte aligned window of any length fits.
const ALIGN_SLACK: usize = 16;

/// The 64-byte aligned window of `len` floats inside `v`, growing `v` if needed.
/// Contents are unspecified (callers overwrite what they read).
pub(crate) fn aligned_window(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    // Callers size scratch from validated descriptors; a length this close to usize::MAX
    // would be a bug there, and must not wrap into a short buffer.
    let total = len.checked_add(ALIGN_SLACK).expect("scratch length overflows usize");
    if v.len() < total {
        v.resize(total, 0.0);
    }
    let off = v.as_ptr().align_offset(64).min(ALIGN_SLACK);
    &mut v[off..off + len]
}

/// Runs `f` on this thread's 64-byte aligned scratch buffer `slot` of `len` floats.
pub(crate) fn with_scratch<R>(slot: Slot, len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut v = SLOTS.with(|s| s[slot as usize].take());
    let r = f(aligned_window(&mut v, len));
    SLOTS.with(|s| s[slot as usize].set(v));
    r
}

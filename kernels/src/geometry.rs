//! Window geometry shared by convolution and pooling: output size and padding per axis.

use crate::error::{Error, Result};

/// How the input is padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// No padding; the window must fit inside the input.
    Valid,
    /// TensorFlow's `SAME`: output `ceil(H / stride)`, total padding
    /// `max((out - 1) * stride + (K - 1) * dilation + 1 - H, 0)`, the odd pixel at the
    /// bottom/right.
    Same,
    /// Explicit per-side padding.
    Explicit {
        /// Rows above.
        top: usize,
        /// Rows below.
        bottom: usize,
        /// Columns on the left.
        left: usize,
        /// Columns on the right.
        right: usize,
    },
}

/// Output length, leading padding and padded input length along one axis.
pub(crate) fn axis(
    name: &str,
    len: usize,
    k: usize,
    s: usize,
    d: usize,
    pad: Padding,
    vertical: bool,
) -> Result<(usize, usize, usize)> {
    let span =
        (k - 1).checked_mul(d).and_then(|x| x.checked_add(1)).ok_or(Error::SizeOverflow { name: "window geometry" })?;
    let (before, total) = match pad {
        Padding::Valid => (0, 0),
        Padding::Same => {
            let out = len.div_ceil(s);
            let total = ((out - 1) * s + span).saturating_sub(len);
            (total / 2, total)
        }
        Padding::Explicit { top, bottom, left, right } => {
            let (a, b) = if vertical { (top, bottom) } else { (left, right) };
            (a, a.checked_add(b).ok_or(Error::SizeOverflow { name: "explicit padding" })?)
        }
    };
    let padded = len.checked_add(total).ok_or(Error::SizeOverflow { name: "padded extent" })?;
    if padded < span {
        return Err(Error::InvalidArgument(format!(
            "{name}: dilated filter extent {span} is larger than the padded input extent {padded}"
        )));
    }
    Ok(((padded - span) / s + 1, before, padded))
}

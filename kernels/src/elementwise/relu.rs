//! ReLU in place, forward and backward.

use super::check_same;
use crate::error::Result;

/// `x = max(x, 0)` in place.
pub fn relu_forward(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// `dx = dy` where the forward output `y > 0`, else 0 (in place on `dy`).
pub fn relu_backward(y: &[f32], dy: &mut [f32]) -> Result<()> {
    check_same("relu output length vs gradient length", y.len(), dy.len())?;
    dy.iter_mut().zip(y).for_each(|(d, &v)| *d = if v > 0.0 { *d } else { 0.0 });
    Ok(())
}

//! Row-wise softmax, and softmax with sparse categorical cross-entropy.

use super::{check_rows, check_same};
use crate::error::{Error, Result};

/// Row-wise softmax in place, numerically stable (the row maximum is subtracted first).
pub fn softmax(x: &mut [f32], classes: usize) -> Result<()> {
    check_rows("logits length vs a multiple of classes", x.len(), classes)?;
    for row in x.chunks_exact_mut(classes) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        row.iter_mut().for_each(|v| {
            *v = (*v - max).exp();
            sum += *v;
        });
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|v| *v *= inv);
    }
    Ok(())
}

/// Softmax + sparse categorical cross-entropy over a batch of logits `[rows, classes]`.
/// Returns the mean loss and writes `dlogits = (softmax - onehot(label)) / rows`, the
/// gradient of that mean. Labels must be `< classes`.
pub fn softmax_cross_entropy(logits: &[f32], labels: &[u32], classes: usize, dlogits: &mut [f32]) -> Result<f32> {
    let rows = check_rows("logits length vs a multiple of classes", logits.len(), classes)?;
    let scale = 1.0 / rows.max(1) as f32;
    let sum = softmax_cross_entropy_sum(logits, labels, classes, scale, dlogits)?;
    Ok((sum / rows.max(1) as f64) as f32)
}

/// [`softmax_cross_entropy`] for part of a batch: returns the *sum* of the rows' losses
/// and writes `dlogits = (softmax - onehot(label)) * grad_scale` (`1 / batch` for the
/// gradient of the whole batch's mean).
pub fn softmax_cross_entropy_sum(
    logits: &[f32],
    labels: &[u32],
    classes: usize,
    grad_scale: f32,
    dlogits: &mut [f32],
) -> Result<f64> {
    let rows = check_rows("logits length vs a multiple of classes", logits.len(), classes)?;
    check_same("label count vs logit rows", rows, labels.len())?;
    check_same("gradient length vs logits length", logits.len(), dlogits.len())?;
    if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l as usize >= classes) {
        return Err(Error::InvalidArgument(format!("label {l} at row {i} is not below the class count {classes}")));
    }
    dlogits.copy_from_slice(logits);
    softmax(dlogits, classes)?;
    let scale = grad_scale;
    let mut loss = 0.0f64;
    for (row, (&l, lg)) in dlogits.chunks_exact_mut(classes).zip(labels.iter().zip(logits.chunks_exact(classes))) {
        // log softmax computed from the logits (log-sum-exp), not from a rounded probability.
        let max = lg.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = max + lg.iter().map(|v| (v - max).exp()).sum::<f32>().ln();
        loss += f64::from(lse - lg[l as usize]);
        row[l as usize] -= 1.0;
        row.iter_mut().for_each(|v| *v *= scale);
    }
    Ok(loss)
}

//! Keras's `Concatenate(axis=-1)`: inputs of the same shape but for the last axis, joined
//! along it (the channels of NHWC images, the features of vectors). The backward pass
//! hands each input its slice of `dy`.

use super::{Backward, Forward, Layer};
use crate::error::{Error, Result};
use crate::params::ParamBuilder;
use crate::rng::Rng;

/// Keras's `Concatenate()` (along the last axis).
#[derive(Debug, Clone, Default)]
pub struct Concatenate {
    name: String,
    /// Last-axis width of each input, and their sum.
    widths: Vec<usize>,
    total: usize,
}

impl Concatenate {
    /// A concatenation along the last axis (inputs given when it is applied).
    pub fn new() -> Self {
        Self::default()
    }
}

impl Layer for Concatenate {
    super::layer_plumbing!(name);
    fn class_name(&self) -> &'static str {
        "Concatenate"
    }
    fn build(&mut self, inputs: &[&[usize]], _params: &mut ParamBuilder, _rng: &mut Rng) -> Result<Vec<usize>> {
        let [first, rest @ ..] = inputs else {
            return Err(Error::Config(format!("layer {}: Concatenate needs at least two inputs", self.name)));
        };
        let Some((&last, lead)) = first.split_last() else {
            return Err(Error::Config(format!("layer {}: Concatenate needs inputs of rank 1 or more", self.name)));
        };
        if rest.is_empty() {
            return Err(Error::Config(format!("layer {}: Concatenate needs at least two inputs", self.name)));
        }
        self.widths = vec![last];
        for s in rest {
            match s.split_last() {
                Some((&w, l)) if l == lead => self.widths.push(w),
                _ => {
                    return Err(Error::LayerShape {
                        layer: self.name.clone(),
                        input: s.to_vec(),
                        what: format!("Concatenate's inputs must match but for the last axis; the first is {first:?}"),
                    })
                }
            }
        }
        self.total = self.widths.iter().sum();
        Ok(lead.iter().copied().chain([self.total]).collect())
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let rows = f.y.len() / self.total.max(1);
        for r in 0..rows {
            let mut at = r * self.total;
            for (x, &w) in f.x.iter().zip(&self.widths) {
                f.y[at..at + w].copy_from_slice(&x[r * w..(r + 1) * w]);
                at += w;
            }
        }
        Ok(())
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        let rows = b.dy.len() / self.total.max(1);
        let mut offset = 0;
        for (dx, &w) in b.dx.iter_mut().zip(&self.widths) {
            if let Some(dx) = dx {
                for r in 0..rows {
                    let at = r * self.total + offset;
                    dx[r * w..(r + 1) * w].copy_from_slice(&b.dy[at..at + w]);
                }
            }
            offset += w;
        }
        Ok(())
    }
}

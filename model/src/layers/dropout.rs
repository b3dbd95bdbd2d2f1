//! Dropout (Keras's `Dropout(rate)`): in training, each value is zeroed with probability
//! `rate` and the survivors scaled by `1 / (1 - rate)`; the identity in inference.
//!
//! Element `i` of sample `s` is kept when a counter-based hash of (the step's seed, the
//! layer's name, `s`, `i`) clears the rate, so the mask depends neither on how the batch is
//! split into parts, shards or ranks, nor on the thread count; and with no sequential
//! generator state the mask loop vectorises (`ember_kernels::dropout`: 32-bit
//! multiply-xorshift hashing on the CPU's vector ISA).

use super::{copy, single_input, Backward, Forward, Layer};
use crate::error::{Error, Result};
use crate::params::ParamBuilder;
use crate::rng::{mix, Rng};

/// Keras's `Dropout`.
#[derive(Debug, Clone)]
pub struct Dropout {
    name: String,
    rate: f32,
}

impl Dropout {
    /// Drops each value with probability `rate` in `[0, 1)`.
    pub fn new(rate: f32) -> Self {
        Dropout { name: String::new(), rate }
    }
    fn active(&self, training: bool) -> bool {
        training && self.rate > 0.0
    }
}

impl Layer for Dropout {
    super::layer_plumbing!(name);
    fn class_name(&self) -> &'static str {
        "Dropout"
    }
    fn build(&mut self, inputs: &[&[usize]], _params: &mut ParamBuilder, _rng: &mut Rng) -> Result<Vec<usize>> {
        let input = single_input(&self.name, inputs)?;
        if !(0.0..1.0).contains(&self.rate) {
            return Err(Error::Config(format!("{}: dropout rate {} is not in [0, 1)", self.name, self.rate)));
        }
        Ok(input.to_vec())
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let x = f.x[0];
        if !self.active(f.mode.training) {
            copy(x, f.y);
            return Ok(());
        }
        let scale = 1.0 / (1.0 - self.rate);
        let per_sample = x.len() / f.n.max(1);
        let layer_seed = mix(
            f.mode.seed,
            self.name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)),
        );
        f.ws.kept.resize(x.len(), 0.0);
        // Dropped when the hash's top 24 bits, as a fraction of 2^24, fall below the rate.
        let threshold = (f64::from(self.rate) * f64::from(1u32 << 24)).ceil() as u32;
        for (s, mask) in f.ws.kept.chunks_mut(per_sample.max(1)).enumerate() {
            let key = mix(layer_seed, (f.mode.first_sample + s) as u64);
            ember_kernels::dropout::dropout_mask(&ember_kernels::Ctx::new(), key, threshold, scale, mask)?;
        }
        f.y.iter_mut().zip(x).zip(&f.ws.kept).for_each(|((y, x), m)| *y = x * m);
        Ok(())
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        if let Some(dx) = b.dx[0].as_deref_mut() {
            if self.active(b.mode.training) {
                dx.iter_mut().zip(b.dy.iter()).zip(&b.ws.kept).for_each(|((d, g), m)| *d = g * m);
            } else {
                copy(b.dy, dx);
            }
        }
        Ok(())
    }
}

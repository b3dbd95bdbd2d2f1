//! The dense-layer descriptor.

use crate::error::{Error, Result};

/// Shape of a dense layer's product: `n` samples of `inputs` values, `outputs` outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linear {
    pub(crate) n: usize,
    pub(crate) inputs: usize,
    pub(crate) outputs: usize,
}

impl Linear {
    /// Validates the shape (`inputs`, `outputs` at least 1; element counts fit in usize).
    pub fn new(n: usize, inputs: usize, outputs: usize) -> Result<Self> {
        if inputs == 0 || outputs == 0 {
            return Err(Error::InvalidArgument(format!(
                "a dense layer needs at least one input and one output, got {inputs} x {outputs}"
            )));
        }
        for (a, b) in [(n, inputs), (n, outputs), (inputs, outputs)] {
            a.checked_mul(b).ok_or(Error::SizeOverflow { name: "Linear" })?;
        }
        Ok(Linear { n, inputs, outputs })
    }
    /// Samples.
    pub fn n(&self) -> usize {
        self.n
    }
    /// Inputs per sample.
    pub fn inputs(&self) -> usize {
        self.inputs
    }
    /// Outputs per sample.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// Input, weight and output lengths match this descriptor.
    pub(crate) fn check(&self, x: usize, w: usize, y: usize) -> Result<()> {
        let same = |what, expected, got| {
            if expected == got {
                Ok(())
            } else {
                Err(Error::ShapeMismatch { what, expected, got })
            }
        };
        same("input length vs n*inputs", self.n * self.inputs, x)?;
        same("weight length vs outputs*inputs", self.outputs * self.inputs, w)?;
        same("output length vs n*outputs", self.n * self.outputs, y)
    }

    /// A bias (or bias gradient, `what`) of `len` floats matches the outputs.
    pub(crate) fn check_bias(&self, what: &'static str, len: usize) -> Result<()> {
        if len == self.outputs {
            Ok(())
        } else {
            Err(Error::ShapeMismatch { what, expected: self.outputs, got: len })
        }
    }
}

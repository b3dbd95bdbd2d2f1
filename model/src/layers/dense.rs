//! Fully connected layer (Keras's `Dense`): `y = act(x · W + b)`, `x` `[n, in]`, kernel
//! `W` `[in, out]` in Keras's layout, stored transposed (`[out, in]`) for the dense-layer
//! kernels of `ember_kernels::linear`, which vectorise along the inputs.

use super::{declare_bias, glorot_uniform, single_input, Activation, Backward, Flops, Forward, Layer};
use crate::error::{Error, Result};
use crate::params::{grads_of, Layout, ParamBuilder, ParamId, ParamKind};
use crate::rng::Rng;
use ember_kernels::linear::{linear_backward_data, linear_backward_weights, linear_forward, Linear};
use ember_kernels::Ctx;

/// Keras's `Dense(units, activation, use_bias)`.
#[derive(Debug, Clone)]
pub struct Dense {
    name: String,
    units: usize,
    act: Activation,
    use_bias: bool,
    input_shape: Option<Vec<usize>>,
    inputs: usize,
    /// Kernel (stored `[out, in]`), then bias if any.
    params: Vec<ParamId>,
}

impl Dense {
    /// `units` outputs, no activation, with bias.
    pub fn new(units: usize) -> Self {
        Dense {
            name: String::new(),
            units,
            act: Activation::Linear,
            use_bias: true,
            input_shape: None,
            inputs: 0,
            params: Vec::new(),
        }
    }
    /// The activation (linear, ReLU, softmax).
    pub fn activation(mut self, a: Activation) -> Self {
        self.act = a;
        self
    }
    /// Whether to add a bias (default true).
    pub fn use_bias(mut self, b: bool) -> Self {
        self.use_bias = b;
        self
    }
    /// The per-sample input shape `[features]` (needed on the first layer).
    pub fn input_shape(mut self, features: usize) -> Self {
        self.input_shape = Some(vec![features]);
        self
    }
}

impl Layer for Dense {
    super::layer_plumbing!(name);
    fn class_name(&self) -> &'static str {
        "Dense"
    }
    fn declared_input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }
    fn build(&mut self, inputs: &[&[usize]], params: &mut ParamBuilder, rng: &mut Rng) -> Result<Vec<usize>> {
        let input = single_input(&self.name, inputs)?;
        let &[inputs] = input else {
            return Err(Error::LayerShape {
                layer: self.name.clone(),
                input: input.to_vec(),
                what: "Dense expects flat inputs [features]; add a Flatten layer before it".into(),
            });
        };
        if self.units == 0 || inputs == 0 {
            return Err(Error::LayerShape {
                layer: self.name.clone(),
                input: input.to_vec(),
                what: format!("units ({}) and input features must be at least 1", self.units),
            });
        }
        self.inputs = inputs;
        let len = inputs.checked_mul(self.units).ok_or_else(|| Error::LayerShape {
            layer: self.name.clone(),
            input: input.to_vec(),
            what: format!("{inputs} x {} weights overflow usize", self.units),
        })?;
        let kernel = glorot_uniform(rng, len, inputs, self.units)?;
        // Drawn in Keras's [in, out] order (the same weights for a seed), stored [out, in].
        let mut stored = vec![0.0; len];
        for (k, &x) in kernel.iter().enumerate() {
            stored[(k % self.units) * inputs + k / self.units] = x;
        }
        let name = format!("{}/kernel", self.name);
        let shape = vec![inputs, self.units];
        self.params = vec![params.declare(name, shape, ParamKind::Trainable, Layout::Transposed, stored)?];
        if self.use_bias {
            self.params.push(declare_bias(params, &self.name, self.units)?);
        }
        Ok(vec![self.units])
    }
    fn params(&self) -> &[ParamId] {
        &self.params
    }
    fn activation(&self) -> Activation {
        self.act
    }
    fn flops(&self, n: usize) -> Flops {
        let all = 2 * (n * self.inputs * self.units) as u64;
        Flops { forward: all, backward_data: all, backward_weights: all }
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let l = Linear::new(f.n, self.inputs, self.units)?;
        let bias = self.params.get(1).map(|&b| f.weights.get(b));
        linear_forward(&Ctx::new(), &l, f.x[0], f.weights.get(self.params[0]), bias, f.y)?;
        if !f.mode.logits {
            self.act.apply(f.y, self.units, &mut f.ws.kept)?;
        }
        Ok(())
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        if !b.mode.logits {
            self.act.backward(&b.ws.kept, b.y, b.dy, self.units)?;
        }
        let l = Linear::new(b.n, self.inputs, self.units)?;
        if b.weight_grads {
            let (dk, db) = grads_of(b.weights.table(), b.grads, self.params[0], self.params.get(1).copied());
            linear_backward_weights(&Ctx::new(), &l, b.x[0], b.dy, dk, db, b.accumulate)?;
        }
        if let Some(dx) = b.dx[0].as_deref_mut() {
            linear_backward_data(&Ctx::new(), &l, b.dy, b.weights.get(self.params[0]), dx)?;
        }
        Ok(())
    }
}

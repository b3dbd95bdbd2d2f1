//! Fully connected layer (Keras's `Dense`): `y = act(x · W + b)`, `x` `[n, in]`, kernel
//! `W` `[in, out]` in Keras's layout, stored transposed (`[out, in]`) for the dense-layer
//! kernels of `ember_kernels::linear`, which vectorise along the inputs.

use super::{glorot_uniform, Activation, Ctx, Layer, Param};
use crate::error::{Error, Result};
use crate::rng::Rng;
use ember_kernels::linear::{linear_backward_data, linear_backward_weights, linear_forward, Linear};

/// Keras's `Dense(units, activation, use_bias)`.
#[derive(Debug, Clone)]
pub struct Dense {
    name: String,
    units: usize,
    act: Activation,
    use_bias: bool,
    logits: bool,
    input_shape: Option<Vec<usize>>,
    inputs: usize,
    params: Vec<Param>,
}

impl Dense {
    /// `units` outputs, no activation, with bias.
    pub fn new(units: usize) -> Self {
        Dense {
            name: String::new(),
            units,
            act: Activation::Linear,
            use_bias: true,
            logits: false,
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
    fn build(&mut self, input: &[usize], rng: &mut Rng) -> Result<Vec<usize>> {
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
        let mut k = Param::new("kernel", vec![inputs, self.units], vec![0.0; kernel.len()]);
        k.transposed = true;
        k.set_from_keras(&kernel)?;
        self.params = vec![k];
        if self.use_bias {
            self.params.push(Param::new("bias", vec![self.units], vec![0.0; self.units]));
        }
        Ok(vec![self.units])
    }
    fn params(&self) -> &[Param] {
        &self.params
    }
    fn params_mut(&mut self) -> &mut [Param] {
        &mut self.params
    }
    fn activation(&self) -> Activation {
        self.act
    }
    fn emit_logits(&mut self, logits: bool) -> bool {
        self.logits = logits && self.act == Activation::Softmax;
        self.logits
    }
    fn forward(&mut self, x: &[f32], y: &mut [f32], n: usize, _ctx: &mut Ctx) -> Result<()> {
        let l = Linear::new(n, self.inputs, self.units)?;
        let bias = self.use_bias.then(|| &self.params[1].value[..]);
        linear_forward(&l, x, &self.params[0].value, bias, y)?;
        if !(self.logits && self.act == Activation::Softmax) {
            self.act.apply(y, self.units)?;
        }
        Ok(())
    }
    fn backward(
        &mut self,
        x: &[f32],
        y: &[f32],
        dy: &mut [f32],
        dx: Option<&mut [f32]>,
        n: usize,
        accumulate: bool,
    ) -> Result<()> {
        if !self.logits {
            self.act.backward(y, dy, self.units)?;
        }
        let l = Linear::new(n, self.inputs, self.units)?;
        let (k, rest) = self.params.split_at_mut(1);
        linear_backward_weights(&l, x, dy, &mut k[0].grad, rest.first_mut().map(|b| &mut b.grad[..]), accumulate)?;
        if let Some(dx) = dx {
            linear_backward_data(&l, dy, &k[0].value, dx)?;
        }
        Ok(())
    }
}

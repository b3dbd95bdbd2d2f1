//! Keras's `DepthwiseConv2D` and `SeparableConv2D`: a convolution of each input channel with
//! its own `depth_multiplier` filters (`[kh, kw, c, m]`; Keras 3 names it `kernel` in the
//! first layer, `depthwise_kernel` in the second), and for the
//! separable form a 1x1 convolution to `filters` channels after it (`pointwise_kernel`
//! `[1, 1, c m, filters]`), each with Keras's weight names and glorot-uniform
//! initialisation. The depthwise passes are `ember_kernels::conv::depthwise_*`; the
//! pointwise one is an ordinary convolution.

use super::{
    declare_bias, glorot_uniform, image_shape, padding_of, single_input, Activation, Backward, Flops, Forward,
    IntoPadding, Layer,
};
use crate::error::{Error, Result};
use crate::params::{grads_of, Layout, ParamBuilder, ParamId, ParamKind};
use crate::rng::Rng;
use ember_kernels::conv::{self, Conv2d, Depthwise2d, Padding};
use ember_kernels::Ctx;

/// The depthwise part both layers share: its configuration and its built shape.
#[derive(Debug, Clone)]
struct Depthwise {
    kernel: (usize, usize),
    strides: (usize, usize),
    dilation: (usize, usize),
    padding: std::result::Result<Padding, String>,
    multiplier: usize,
    /// Per-sample input `[h, w, c]`, set by `build`.
    input: [usize; 3],
}

impl Depthwise {
    fn new(kernel: (usize, usize)) -> Self {
        Depthwise {
            kernel,
            strides: (1, 1),
            dilation: (1, 1),
            padding: Ok(Padding::Valid),
            multiplier: 1,
            input: [0; 3],
        }
    }
    fn desc(&self, layer: &str, n: usize) -> Result<Depthwise2d> {
        let [h, w, c] = self.input;
        let pad = padding_of(layer, &self.padding)?;
        Ok(Depthwise2d::new([n, h, w, c], self.kernel, self.multiplier, self.strides, self.dilation, pad)?)
    }
    /// Checks the input, declares `layer/weight` (Keras 3 names it `kernel` in
    /// `DepthwiseConv2D`, `depthwise_kernel` in `SeparableConv2D`); returns the id and the
    /// output shape `[ho, wo, c m]`.
    fn build(
        &mut self,
        (layer, weight): (&str, &str),
        input: &[usize],
        params: &mut ParamBuilder,
        rng: &mut Rng,
    ) -> Result<(ParamId, [usize; 3])> {
        self.input = image_shape(layer, input)?;
        let d = self.desc(layer, 1).map_err(|e| match e {
            Error::Kernel(k) => Error::LayerShape { layer: layer.into(), input: input.to_vec(), what: k.to_string() },
            e => e,
        })?;
        let [kh, kw, c, m] = d.filter_shape();
        // Keras's fans for a 4-D kernel: receptive field kh kw, fan_in kh kw c, fan_out kh kw m.
        let kernel = glorot_uniform(rng, kh * kw * c * m, kh * kw * c, kh * kw * m)?;
        let id = params.declare(
            format!("{layer}/{weight}"),
            vec![kh, kw, c, m],
            ParamKind::Trainable,
            Layout::Keras,
            kernel,
        )?;
        let [_, ho, wo, co] = d.output_shape();
        Ok((id, [ho, wo, co]))
    }
}

macro_rules! depthwise_setters {
    () => {
        /// Strides `(vertical, horizontal)`.
        pub fn strides(mut self, s: (usize, usize)) -> Self {
            self.dw.strides = s;
            self
        }
        /// Keras's `dilation_rate` (default `(1, 1)`).
        pub fn dilation_rate(mut self, d: (usize, usize)) -> Self {
            self.dw.dilation = d;
            self
        }
        /// `"valid"` (default) or `"same"` (TensorFlow's).
        pub fn padding(mut self, p: impl IntoPadding) -> Self {
            self.dw.padding = p.into_padding();
            self
        }
        /// Keras's `depth_multiplier`: filters per input channel (default 1).
        pub fn depth_multiplier(mut self, m: usize) -> Self {
            self.dw.multiplier = m;
            self
        }
        /// The activation (default linear; not softmax).
        pub fn activation(mut self, a: Activation) -> Self {
            self.act = a;
            self
        }
        /// Whether to add a bias (default true).
        pub fn use_bias(mut self, b: bool) -> Self {
            self.use_bias = b;
            self
        }
        /// The per-sample input shape `[h, w, c]` (needed on the first layer).
        pub fn input_shape(mut self, s: [usize; 3]) -> Self {
            self.input_shape = Some(s.to_vec());
            self
        }
    };
}

fn no_softmax(layer: &str, act: Activation) -> Result<()> {
    if act == Activation::Softmax {
        return Err(Error::Config(format!("{layer}: a convolution's activation cannot be softmax")));
    }
    Ok(())
}

/// Keras's `DepthwiseConv2D(kernel_size, strides, padding, depth_multiplier,
/// dilation_rate, activation, use_bias)`: weights `kernel` `[kh, kw, c, m]` (Keras 3's name)
/// and `bias` `[c m]`; output `[ho, wo, c m]`.
#[derive(Debug, Clone)]
pub struct DepthwiseConv2D {
    name: String,
    dw: Depthwise,
    act: Activation,
    use_bias: bool,
    input_shape: Option<Vec<usize>>,
    /// Depthwise kernel, then bias if any.
    params: Vec<ParamId>,
}

impl DepthwiseConv2D {
    /// A `kernel_size` window; stride 1, VALID padding, multiplier 1, no activation, bias.
    pub fn new(kernel_size: (usize, usize)) -> Self {
        DepthwiseConv2D {
            name: String::new(),
            dw: Depthwise::new(kernel_size),
            act: Activation::Linear,
            use_bias: true,
            input_shape: None,
            params: Vec::new(),
        }
    }
    depthwise_setters!();
}

impl Layer for DepthwiseConv2D {
    super::layer_plumbing!(name);
    fn class_name(&self) -> &'static str {
        "DepthwiseConv2D"
    }
    fn declared_input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }
    fn build(&mut self, inputs: &[&[usize]], params: &mut ParamBuilder, rng: &mut Rng) -> Result<Vec<usize>> {
        let input = single_input(&self.name, inputs)?;
        no_softmax(&self.name, self.act)?;
        let (kernel, out) = self.dw.build((&self.name, "kernel"), input, params, rng)?;
        self.params = vec![kernel];
        if self.use_bias {
            self.params.push(declare_bias(params, &self.name, out[2])?);
        }
        Ok(out.to_vec())
    }
    fn params(&self) -> &[ParamId] {
        &self.params
    }
    fn activation(&self) -> Activation {
        self.act
    }
    fn flops(&self, n: usize) -> Flops {
        let Ok(d) = self.dw.desc(&self.name, n) else { return Flops::default() };
        Flops { forward: d.flops(), backward_data: d.flops(), backward_weights: d.flops() }
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let d = self.dw.desc(&self.name, f.n)?;
        let bias = self.params.get(1).map(|&b| f.weights.get(b));
        conv::depthwise_forward(&Ctx::new(), &d, f.x[0], f.weights.get(self.params[0]), bias, f.y)?;
        self.act.apply(f.y, d.out_channels(), &mut f.ws.kept)
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        let d = self.dw.desc(&self.name, b.n)?;
        self.act.backward(&b.ws.kept, b.y, b.dy, d.out_channels())?;
        let ctx = Ctx::new();
        if b.weight_grads {
            let (dk, db) = grads_of(b.weights.table(), b.grads, self.params[0], self.params.get(1).copied());
            conv::depthwise_backward_filter(&ctx, &d, b.x[0], b.dy, dk, db, b.accumulate)?;
        }
        if let Some(dx) = b.dx[0].as_deref_mut() {
            conv::depthwise_backward_data(&ctx, &d, b.dy, b.weights.get(self.params[0]), dx)?;
        }
        Ok(())
    }
}

/// Keras's `SeparableConv2D(filters, kernel_size, strides, padding, depth_multiplier,
/// dilation_rate, activation, use_bias)`: a depthwise convolution (no bias) then a 1x1
/// convolution to `filters` channels with the bias; weights `depthwise_kernel`
/// `[kh, kw, c, m]`, `pointwise_kernel` `[1, 1, c m, filters]`, `bias` `[filters]`.
#[derive(Debug, Clone)]
pub struct SeparableConv2D {
    name: String,
    filters: usize,
    dw: Depthwise,
    act: Activation,
    use_bias: bool,
    input_shape: Option<Vec<usize>>,
    /// `[ho, wo, c m]` between the two convolutions.
    mid: [usize; 3],
    /// Depthwise kernel, pointwise kernel, then bias if any.
    params: Vec<ParamId>,
}

impl SeparableConv2D {
    /// `filters` output channels after a `kernel_size` depthwise window; stride 1, VALID
    /// padding, multiplier 1, no activation, bias.
    pub fn new(filters: usize, kernel_size: (usize, usize)) -> Self {
        SeparableConv2D {
            name: String::new(),
            filters,
            dw: Depthwise::new(kernel_size),
            act: Activation::Linear,
            use_bias: true,
            input_shape: None,
            mid: [0; 3],
            params: Vec::new(),
        }
    }
    depthwise_setters!();

    fn pointwise(&self, n: usize) -> Result<Conv2d> {
        let [h, w, c] = self.mid;
        Ok(Conv2d::new([n, h, w, c], [1, 1, c, self.filters], (1, 1), (1, 1), Padding::Valid)?)
    }
}

impl Layer for SeparableConv2D {
    super::layer_plumbing!(name);
    fn class_name(&self) -> &'static str {
        "SeparableConv2D"
    }
    fn declared_input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }
    fn build(&mut self, inputs: &[&[usize]], params: &mut ParamBuilder, rng: &mut Rng) -> Result<Vec<usize>> {
        let input = single_input(&self.name, inputs)?;
        no_softmax(&self.name, self.act)?;
        if self.filters == 0 {
            return Err(Error::Config(format!("{}: filters must be at least 1", self.name)));
        }
        let (kernel, mid) = self.dw.build((&self.name, "depthwise_kernel"), input, params, rng)?;
        self.mid = mid;
        let cm = mid[2];
        let pointwise = glorot_uniform(rng, cm * self.filters, cm, self.filters)?;
        let pw = params.declare(
            format!("{}/pointwise_kernel", self.name),
            vec![1, 1, cm, self.filters],
            ParamKind::Trainable,
            Layout::Keras,
            pointwise,
        )?;
        self.params = vec![kernel, pw];
        if self.use_bias {
            self.params.push(declare_bias(params, &self.name, self.filters)?);
        }
        Ok(vec![mid[0], mid[1], self.filters])
    }
    fn params(&self) -> &[ParamId] {
        &self.params
    }
    fn activation(&self) -> Activation {
        self.act
    }
    fn flops(&self, n: usize) -> Flops {
        let (Ok(d), Ok(p)) = (self.dw.desc(&self.name, n), self.pointwise(n)) else { return Flops::default() };
        let all = d.flops() + p.flops();
        Flops { forward: all, backward_data: all, backward_weights: all }
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let (d, p) = (self.dw.desc(&self.name, f.n)?, self.pointwise(f.n)?);
        let ctx = Ctx::new();
        // The depthwise output is kept for the pointwise kernel's gradient.
        let mid = &mut f.ws.scratch;
        mid.resize(d.output_shape().iter().product(), 0.0);
        conv::depthwise_forward(&ctx, &d, f.x[0], f.weights.get(self.params[0]), None, mid)?;
        let bias = self.params.get(2).map(|&b| f.weights.get(b));
        conv::conv2d_forward(&ctx, &p, mid, f.weights.get(self.params[1]), bias, false, f.y)?;
        self.act.apply(f.y, self.filters, &mut f.ws.kept)
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        let (d, p) = (self.dw.desc(&self.name, b.n)?, self.pointwise(b.n)?);
        self.act.backward(&b.ws.kept, b.y, b.dy, self.filters)?;
        let ctx = Ctx::new();
        let table = b.weights.table();
        let mid = &b.ws.scratch;
        if b.weight_grads {
            let (dpw, db) = grads_of(table, b.grads, self.params[1], self.params.get(2).copied());
            conv::conv2d_backward_filter(&ctx, &p, mid, b.dy, dpw, db, b.accumulate)?;
        }
        // The gradient of the depthwise output, then the depthwise passes.
        let dmid = &mut b.ws.inner_grad;
        dmid.resize(mid.len(), 0.0);
        conv::conv2d_backward_data(&ctx, &p, b.dy, b.weights.get(self.params[1]), dmid, false)?;
        let dmid = &b.ws.inner_grad;
        if b.weight_grads {
            let (ddw, _) = grads_of(table, b.grads, self.params[0], None);
            conv::depthwise_backward_filter(&ctx, &d, b.x[0], dmid, ddw, None, b.accumulate)?;
        }
        if let Some(dx) = b.dx[0].as_deref_mut() {
            conv::depthwise_backward_data(&ctx, &d, dmid, b.weights.get(self.params[0]), dx)?;
        }
        Ok(())
    }
}

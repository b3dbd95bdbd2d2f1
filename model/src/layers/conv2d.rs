//! 2-D convolution (Keras's `Conv2D`): NHWC input, HWIO kernel, optional bias and ReLU,
//! any algorithm of `ember_kernels::conv`. The fused conv+ReLU+max-pool step that runs
//! this layer with the pooling after it is a fusion rule's op (`graph::fusion`).

use super::{
    declare_bias, glorot_uniform, image_shape, padding_of, shape_err, single_input, Activation, Backward, Flops,
    Forward, Fusion, IntoPadding, Layer, LayerTraits,
};
use crate::error::{Error, Result};
use crate::params::{grads_of, Layout, ParamBuilder, ParamId, ParamKind, Weights};
use crate::rng::Rng;
use ember_kernels::conv::{self, Conv2d, ConvAlgo, ConvReluPool, Padding};
use ember_kernels::Ctx;

/// Keras's `Conv2D(filters, kernel_size, strides, padding, dilation_rate, activation,
/// use_bias)`.
#[derive(Debug, Clone)]
pub struct Conv2D {
    name: String,
    filters: usize,
    kernel: (usize, usize),
    strides: (usize, usize),
    dilation: (usize, usize),
    padding: std::result::Result<Padding, String>,
    act: Activation,
    use_bias: bool,
    algo: ConvAlgo,
    fusion: Fusion,
    input_shape: Option<Vec<usize>>,
    /// Per-sample input `[h, w, cin]`, set by `build`.
    input: [usize; 3],
    /// Kernel, then bias if any.
    params: Vec<ParamId>,
}

impl Conv2D {
    /// `filters` output channels, a `kernel_size` window; stride 1, VALID padding, no
    /// activation, with bias, algorithm `Auto` until changed.
    pub fn new(filters: usize, kernel_size: (usize, usize)) -> Self {
        Conv2D {
            name: String::new(),
            filters,
            kernel: kernel_size,
            strides: (1, 1),
            dilation: (1, 1),
            padding: Ok(Padding::Valid),
            act: Activation::Linear,
            use_bias: true,
            algo: ConvAlgo::Auto,
            fusion: Fusion::Auto,
            input_shape: None,
            input: [0; 3],
            params: Vec::new(),
        }
    }
    /// Strides `(vertical, horizontal)`.
    pub fn strides(mut self, s: (usize, usize)) -> Self {
        self.strides = s;
        self
    }
    /// Keras's `dilation_rate` `(vertical, horizontal)`: the filter taps `d` pixels apart
    /// (default `(1, 1)`).
    pub fn dilation_rate(mut self, d: (usize, usize)) -> Self {
        self.dilation = d;
        self
    }
    /// `"valid"` / `Padding::Valid` (default) or `"same"` / `Padding::Same` (TensorFlow's).
    pub fn padding(mut self, p: impl IntoPadding) -> Self {
        self.padding = p.into_padding();
        self
    }
    /// The activation (linear or ReLU).
    pub fn activation(mut self, a: Activation) -> Self {
        self.act = a;
        self
    }
    /// Whether to add a bias (default true).
    pub fn use_bias(mut self, b: bool) -> Self {
        self.use_bias = b;
        self
    }
    /// The convolution algorithm passed to the kernels (default `Auto`).
    pub fn algorithm(mut self, a: ConvAlgo) -> Self {
        self.algo = a;
        self
    }
    /// The per-sample input shape `[h, w, c]` (needed on the first layer).
    pub fn input_shape(mut self, s: [usize; 3]) -> Self {
        self.input_shape = Some(s.to_vec());
        self
    }
    /// Whether this convolution and a 2x2 max pooling after it run as one fused kernel:
    /// `Fusion::Auto` (default) lets the planner decide, `On` / `Off` force it.
    pub fn fusion(mut self, f: Fusion) -> Self {
        self.fusion = f;
        self
    }
    /// The fusion setting.
    pub(crate) fn fusion_setting(&self) -> Fusion {
        self.fusion
    }
    /// Sets the algorithm after construction.
    pub fn set_algorithm(&mut self, a: ConvAlgo) {
        self.algo = a;
    }

    /// The kernels' descriptor for a batch of `n`.
    pub(crate) fn desc(&self, n: usize) -> Result<Conv2d> {
        let [h, w, c] = self.input;
        let k = [self.kernel.0, self.kernel.1, c, self.filters];
        Ok(Conv2d::new([n, h, w, c], k, self.strides, self.dilation, padding_of(&self.name, &self.padding)?)?)
    }
    /// The kernels' context (the default ISA, this layer's algorithm).
    pub(crate) fn ctx(&self) -> Ctx {
        Ctx::new().with_algo(self.algo)
    }
    /// [`Conv2D::ctx`] for passes that read this layer's kernel from `w`: with the values'
    /// version, so that a Winograd pass transforms the kernel once per thread and step
    /// instead of once per part.
    pub(crate) fn ctx_reading(&self, w: &Weights<'_>) -> Ctx {
        self.ctx().with_weights_version(w.version())
    }
    /// The kernel's id.
    pub(crate) fn kernel_id(&self) -> ParamId {
        self.params[0]
    }
    /// The bias's id, if the layer has one.
    pub(crate) fn bias_id(&self) -> Option<ParamId> {
        self.params.get(1).copied()
    }
    /// The bias values, if any.
    pub(crate) fn bias<'w>(&self, w: &Weights<'w>) -> Option<&'w [f32]> {
        self.bias_id().map(|b| w.get(b))
    }

    /// Whether this layer and a following 2x2/2 VALID max pooling can run as the fused
    /// kernel (ReLU activation, output at least 2x2).
    pub(crate) fn fusable(&self) -> bool {
        self.act == Activation::Relu && self.desc(1).and_then(|c| Ok(ConvReluPool::new(c)?)).is_ok()
    }
}

impl Layer for Conv2D {
    super::layer_plumbing!(name);
    fn class_name(&self) -> &'static str {
        "Conv2D"
    }
    fn declared_input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }
    fn build(&mut self, inputs: &[&[usize]], params: &mut ParamBuilder, rng: &mut Rng) -> Result<Vec<usize>> {
        let input = single_input(&self.name, inputs)?;
        let [h, w, c] = image_shape(&self.name, input)?;
        if self.act == Activation::Softmax {
            return Err(Error::Config(format!("{}: Conv2D supports linear or relu activation", self.name)));
        }
        if self.filters == 0 {
            return Err(Error::Config(format!("{}: filters must be at least 1", self.name)));
        }
        self.input = [h, w, c];
        let d = self.desc(1).map_err(|e| match e {
            Error::Kernel(k) => shape_err(&self.name, input)(k),
            e => e,
        })?;
        let (kh, kw) = self.kernel;
        let taps = kh * kw;
        // Conv2d::new checked kh * kw * c * filters.
        let kernel = glorot_uniform(rng, taps * c * self.filters, taps * c, taps * self.filters)?;
        let shape = vec![kh, kw, c, self.filters];
        self.params = vec![params.declare(
            format!("{}/kernel", self.name),
            shape,
            ParamKind::Trainable,
            Layout::Keras,
            kernel,
        )?];
        if self.use_bias {
            self.params.push(declare_bias(params, &self.name, self.filters)?);
        }
        Ok(vec![d.ho(), d.wo(), self.filters])
    }
    fn params(&self) -> &[ParamId] {
        &self.params
    }
    fn traits(&self) -> LayerTraits {
        // `conv2d_backward_data` adds to dx in place (Winograd in its epilogue).
        LayerTraits { adds_input_gradient: true, ..LayerTraits::default() }
    }
    fn activation(&self) -> Activation {
        self.act
    }
    fn flops(&self, n: usize) -> Flops {
        let Ok(c) = self.desc(1) else { return Flops::default() };
        let per_sample = 2 * (c.ho() * c.wo() * self.filters * self.kernel.0 * self.kernel.1 * self.input[2]) as u64;
        let all = per_sample * n as u64;
        Flops { forward: all, backward_data: all, backward_weights: all }
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let c = self.desc(f.n)?;
        let relu = self.act == Activation::Relu;
        let w = f.weights.get(self.kernel_id());
        conv::conv2d_forward(&self.ctx_reading(&f.weights), &c, f.x[0], w, self.bias(&f.weights), relu, f.y)?;
        if self.act.needs_input() {
            self.act.apply(f.y, self.filters, &mut f.ws.kept)?;
        }
        Ok(())
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        let c = self.desc(b.n)?;
        self.act.backward(&b.ws.kept, b.y, b.dy, self.filters)?;
        let ctx = self.ctx();
        if b.weight_grads {
            let (dk, db) = grads_of(b.weights.table(), b.grads, self.kernel_id(), self.bias_id());
            conv::conv2d_backward_filter(&ctx, &c, b.x[0], b.dy, dk, db, b.accumulate)?;
        }
        if let Some(dx) = b.dx[0].as_deref_mut() {
            let add = b.add_to_dx.first().copied().unwrap_or(false);
            let ctx = self.ctx_reading(&b.weights);
            conv::conv2d_backward_data(&ctx, &c, b.dy, b.weights.get(self.kernel_id()), dx, add)?;
        }
        Ok(())
    }
}

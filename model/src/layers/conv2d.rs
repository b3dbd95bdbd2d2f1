//! 2-D convolution (Keras's `Conv2D`): NHWC input, HWIO kernel, optional bias and ReLU,
//! any algorithm of `ember_kernels::conv`. When a 2x2 max pooling follows a ReLU
//! convolution, the model runs both as the fused kernel (`fused_*` below).

use super::{glorot_uniform, image_shape, shape_err, Activation, Ctx, Layer, Param};
use crate::error::{Error, Result};
use crate::rng::Rng;
use ember_kernels::conv::{self, Conv2d, ConvAlgo, ConvOptions, ConvReluPool, Padding};

/// Keras's `Conv2D(filters, kernel_size, strides, padding, activation, use_bias)`.
#[derive(Debug, Clone)]
pub struct Conv2D {
    name: String,
    filters: usize,
    kernel: (usize, usize),
    strides: (usize, usize),
    padding: Padding,
    act: Activation,
    use_bias: bool,
    algo: ConvAlgo,
    input_shape: Option<Vec<usize>>,
    /// Per-sample input `[h, w, cin]`, set by `build`.
    input: [usize; 3],
    params: Vec<Param>,
    /// Argmax of the fused pooling, `[n, ho/2, wo/2, filters]`.
    argmax: Vec<u32>,
    /// Dense gradient of the convolution output, for the input gradient of a fused step.
    dconv: Vec<f32>,
    /// Kernel and bias gradients of one part of a batch (unfused, accumulating).
    part: Vec<f32>,
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
            padding: Padding::Valid,
            act: Activation::Linear,
            use_bias: true,
            algo: ConvAlgo::Auto,
            input_shape: None,
            input: [0; 3],
            params: Vec::new(),
            argmax: Vec::new(),
            dconv: Vec::new(),
            part: Vec::new(),
        }
    }
    /// Strides `(vertical, horizontal)`.
    pub fn strides(mut self, s: (usize, usize)) -> Self {
        self.strides = s;
        self
    }
    /// `Padding::Valid` or `Padding::Same` (TensorFlow's).
    pub fn padding(mut self, p: Padding) -> Self {
        self.padding = p;
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
    /// Sets the algorithm after construction.
    pub fn set_algorithm(&mut self, a: ConvAlgo) {
        self.algo = a;
    }

    fn desc(&self, n: usize) -> Result<Conv2d> {
        let [h, w, c] = self.input;
        let k = [self.kernel.0, self.kernel.1, c, self.filters];
        Ok(Conv2d::new([n, h, w, c], k, self.strides, (1, 1), self.padding)?)
    }
    fn opts(&self) -> ConvOptions {
        ConvOptions::with_algo(self.algo)
    }
    fn bias(&self) -> Option<&[f32]> {
        self.use_bias.then(|| &self.params[1].value[..])
    }

    /// Whether this layer and a following 2x2/2 VALID max pooling can run as the fused
    /// kernel (ReLU activation, output at least 2x2).
    pub(crate) fn fusable(&self) -> bool {
        self.act == Activation::Relu && self.desc(1).and_then(|c| Ok(ConvReluPool::new(c)?)).is_ok()
    }

    /// Fused forward: `y = maxpool2x2(relu(conv(x) + b))`, keeping the argmax.
    pub(crate) fn fused_forward(&mut self, x: &[f32], y: &mut [f32], n: usize) -> Result<()> {
        let cp = ConvReluPool::new(self.desc(n)?)?;
        self.argmax.resize(y.len(), 0);
        let mut argmax = std::mem::take(&mut self.argmax);
        let r = conv::conv_relu_maxpool_forward(&cp, x, &self.params[0].value, self.bias(), y, &mut argmax);
        self.argmax = argmax;
        Ok(r?)
    }

    /// Fused backward from the pooled gradient `dy`: kernel and bias gradients, and the
    /// input gradient if `dx` is given.
    pub(crate) fn fused_backward(
        &mut self,
        x: &[f32],
        y: &[f32],
        dy: &[f32],
        dx: Option<&mut [f32]>,
        n: usize,
        accumulate: bool,
    ) -> Result<()> {
        let cp = ConvReluPool::new(self.desc(n)?)?;
        let opts = self.opts();
        let (k, rest) = self.params.split_at_mut(1);
        let db = rest.first_mut().map(|b| &mut b.grad[..]);
        conv::conv_relu_maxpool_backward_filter(&cp, x, y, dy, &self.argmax, &mut k[0].grad, db, accumulate)?;
        if let Some(dx) = dx {
            let c = cp.conv();
            self.dconv.resize(c.output_shape().iter().product(), 0.0);
            conv::unpool_relu_grad(&cp, y, dy, &self.argmax, &mut self.dconv)?;
            conv::conv2d_backward_data(c, &self.dconv, &k[0].value, dx, &opts)?;
        }
        Ok(())
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
    fn build(&mut self, input: &[usize], rng: &mut Rng) -> Result<Vec<usize>> {
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
        self.params = vec![Param::new("kernel", vec![kh, kw, c, self.filters], kernel)];
        if self.use_bias {
            self.params.push(Param::new("bias", vec![self.filters], vec![0.0; self.filters]));
        }
        Ok(vec![d.ho(), d.wo(), self.filters])
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
    fn forward(&mut self, x: &[f32], y: &mut [f32], n: usize, _ctx: &mut Ctx) -> Result<()> {
        let c = self.desc(n)?;
        let relu = self.act == Activation::Relu;
        conv::conv2d_forward(&c, x, &self.params[0].value, self.bias(), relu, y, &self.opts())?;
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
        let c = self.desc(n)?;
        self.act.backward(y, dy, self.filters)?;
        let opts = self.opts();
        let (k, rest) = self.params.split_at_mut(1);
        let db = rest.first_mut().map(|b| &mut b.grad[..]);
        if accumulate {
            // The convolution kernels overwrite: compute this part aside, then add it.
            let (kl, bl) = (k[0].grad.len(), db.as_ref().map_or(0, |b| b.len()));
            self.part.resize(kl + bl, 0.0);
            let (pk, pb) = self.part.split_at_mut(kl);
            conv::conv2d_backward_filter(&c, x, dy, pk, db.is_some().then_some(pb), &opts)?;
            k[0].grad.iter_mut().zip(pk.iter()).for_each(|(g, p)| *g += p);
            if let Some(db) = db {
                db.iter_mut().zip(pb.iter()).for_each(|(g, p)| *g += p);
            }
        } else {
            conv::conv2d_backward_filter(&c, x, dy, &mut k[0].grad, db, &opts)?;
        }
        if let Some(dx) = dx {
            conv::conv2d_backward_data(&c, dy, &k[0].value, dx, &opts)?;
        }
        Ok(())
    }
}

//! Max and average pooling (Keras's `MaxPooling2D`, `AveragePooling2D`) on NHWC images.

use super::{image_shape, padding_of, shape_err, single_input, Backward, Forward, IntoPadding, Layer};
use crate::error::Result;
use crate::params::ParamBuilder;
use crate::rng::Rng;
use ember_kernels::conv::Padding;
use ember_kernels::pool::{self, Pool2d};
use ember_kernels::Ctx;

#[derive(Debug, Clone)]
struct Window {
    name: String,
    size: (usize, usize),
    strides: Option<(usize, usize)>,
    padding: std::result::Result<Padding, String>,
    input: [usize; 3],
}

impl Window {
    fn new(size: (usize, usize)) -> Self {
        Window { name: String::new(), size, strides: None, padding: Ok(Padding::Valid), input: [0; 3] }
    }
    fn desc(&self, n: usize) -> Result<Pool2d> {
        let [h, w, c] = self.input;
        let padding = padding_of(&self.name, &self.padding)?;
        Ok(Pool2d::new([n, h, w, c], self.size, self.strides.unwrap_or(self.size), padding)?)
    }
    fn build(&mut self, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        let input = single_input(&self.name, inputs)?;
        self.input = image_shape(&self.name, input)?;
        let [h, w, c] = self.input;
        let padding = padding_of(&self.name, &self.padding)?;
        let p = Pool2d::new([1, h, w, c], self.size, self.strides.unwrap_or(self.size), padding)
            .map_err(shape_err(&self.name, input))?;
        Ok(vec![p.ho(), p.wo(), c])
    }
}

macro_rules! window_builders {
    ($t:ident) => {
        impl $t {
            /// Strides `(vertical, horizontal)`; default: the pool size.
            pub fn strides(mut self, s: (usize, usize)) -> Self {
                self.win.strides = Some(s);
                self
            }
            /// `"valid"` / `Padding::Valid` (default) or `"same"` / `Padding::Same`.
            pub fn padding(mut self, p: impl IntoPadding) -> Self {
                self.win.padding = p.into_padding();
                self
            }
        }
    };
}

/// Keras's `MaxPooling2D(pool_size, strides, padding)`.
#[derive(Debug, Clone)]
pub struct MaxPooling2D {
    win: Window,
}

impl MaxPooling2D {
    /// A max pooling over `pool_size` windows, stride = pool size, VALID padding.
    pub fn new(pool_size: (usize, usize)) -> Self {
        MaxPooling2D { win: Window::new(pool_size) }
    }
    /// Whether this is the 2x2, stride 2, VALID pooling the fused kernel implements.
    pub(crate) fn is_fusable(&self) -> bool {
        self.win.size == (2, 2)
            && self.win.strides.unwrap_or((2, 2)) == (2, 2)
            && self.win.padding == Ok(Padding::Valid)
    }
}
window_builders!(MaxPooling2D);

/// Keras's `AveragePooling2D(pool_size, strides, padding)` (padded cells not counted).
#[derive(Debug, Clone)]
pub struct AveragePooling2D {
    win: Window,
}

impl AveragePooling2D {
    /// An average pooling over `pool_size` windows, stride = pool size, VALID padding.
    pub fn new(pool_size: (usize, usize)) -> Self {
        AveragePooling2D { win: Window::new(pool_size) }
    }
}
window_builders!(AveragePooling2D);

impl Layer for MaxPooling2D {
    super::layer_plumbing!(win.name);
    fn class_name(&self) -> &'static str {
        "MaxPooling2D"
    }
    fn build(&mut self, inputs: &[&[usize]], _params: &mut ParamBuilder, _rng: &mut Rng) -> Result<Vec<usize>> {
        self.win.build(inputs)
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let p = self.win.desc(f.n)?;
        f.ws.indices.resize(f.y.len(), 0);
        pool::max_pool_forward(&Ctx::new(), &p, f.x[0], f.y, &mut f.ws.indices)?;
        Ok(())
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        if let Some(dx) = b.dx[0].as_deref_mut() {
            pool::max_pool_backward(&Ctx::new(), &self.win.desc(b.n)?, b.dy, &b.ws.indices, dx)?;
        }
        Ok(())
    }
}

impl Layer for AveragePooling2D {
    super::layer_plumbing!(win.name);
    fn class_name(&self) -> &'static str {
        "AveragePooling2D"
    }
    fn build(&mut self, inputs: &[&[usize]], _params: &mut ParamBuilder, _rng: &mut Rng) -> Result<Vec<usize>> {
        self.win.build(inputs)
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        pool::avg_pool_forward(&self.win.desc(f.n)?, f.x[0], f.y)?;
        Ok(())
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        if let Some(dx) = b.dx[0].as_deref_mut() {
            pool::avg_pool_backward(&self.win.desc(b.n)?, b.dy, dx)?;
        }
        Ok(())
    }
}

//! Rule: `Conv2D(relu)` whose only consumer is a 2x2/2 VALID `MaxPooling2D` runs as one
//! kernel (`ember_kernels::conv::conv_relu_maxpool_*`, with the algorithm the layer's plain
//! forward would run: Winograd pools its output tiles, direct its output pixels): the
//! full-resolution activation is never stored, and backward starts from the pooled gradient.

use crate::error::Result;
use crate::graph::plan::{Op, Planned};
use crate::graph::Graph;
use crate::layers::{Backward, Conv2D, Forward, Fusion, MaxPooling2D};
use crate::params::grads_of;
use ember_kernels::conv::{self, ConvReluPool};
use std::sync::Arc;

/// The fused op for the convolution at node `i`, if the pattern holds and the layer's
/// [`Fusion`] setting (or, for `Auto`, `auto`: the model's fusion switch) allows it.
pub(crate) fn rule(g: &Graph, consumers: &[Vec<usize>], i: usize, auto: bool) -> Option<Planned> {
    let conv = g.layer(i)?.as_any().downcast_ref::<Conv2D>()?;
    let &[p] = &consumers[i][..] else { return None };
    let pool = g.layer(p)?.as_any().downcast_ref::<MaxPooling2D>()?;
    let wanted = match conv.fusion_setting() {
        Fusion::On => true,
        Fusion::Off => false,
        Fusion::Auto => auto,
    };
    if !(wanted && conv.fusable() && pool.is_fusable()) {
        return None;
    }
    let op = ConvReluPoolOp { conv: conv.clone(), pool: pool.name().to_string() };
    Some(Planned { op: Arc::new(op), inputs: g.nodes[i].inputs.clone(), covers: vec![i, p], has_params: true })
}

/// Input channels up to which the fused backward-filter kernel (per pooled pixel, row and
/// channel one FMA with the argmax cell's input) beats the convolution's own backward-filter
/// from the pooled gradient (`conv2d_backward_filter_pooled`: Winograd reads the pooled
/// gradient, direct unpools it first). Measured at 8 samples (then one part), one thread
/// (`layers` bench, `bwd_filter/{fused_pool,pooled}`, AVX-512, Zen 4): 1 channel
/// (seed_conv1) 20-23 vs 87 µs; 3 channels (cifar_conv1) 86-90 vs 188 µs; 32 channels
/// (convnet_conv2, cifar_conv2, Winograd) 468 vs 171 µs and 611 vs 173 µs. On AVX2 (Zen 3,
/// with the chunked kernel): 1 channel 51-76 vs 159 µs; 3 channels 152-213 vs 339 µs; 32
/// channels 409-434 vs 401-518 µs (convnet_conv2, a tie) and 586 vs 390 µs (cifar_conv2).
const FUSED_WGRAD_MAX_CIN: usize = 3;

/// `y = maxpool2x2(relu(conv(x) + b))`, keeping the argmax in the workspace. Backward
/// starts from the pooled gradient: the fused filter-gradient kernel for narrow inputs,
/// else the gradient unpooled once and the convolution's own passes.
struct ConvReluPoolOp {
    conv: Conv2D,
    pool: String,
}

use crate::layers::Layer as _;

impl Op for ConvReluPoolOp {
    fn describe(&self) -> String {
        format!("{} + {} (fused conv+bias+relu+maxpool)", self.conv.name(), self.pool)
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let cp = ConvReluPool::new(self.conv.desc(f.n)?)?;
        f.ws.indices.resize(f.y.len(), 0);
        let w = f.weights.get(self.conv.kernel_id());
        conv::conv_relu_maxpool_forward(
            &self.conv.ctx_reading(&f.weights),
            &cp,
            f.x[0],
            w,
            self.conv.bias(&f.weights),
            f.y,
            &mut f.ws.indices,
        )?;
        Ok(())
    }
    fn backward(&self, b: Backward<'_, '_>) -> Result<()> {
        let c = &self.conv;
        let cp = ConvReluPool::new(c.desc(b.n)?)?;
        let argmax = &b.ws.indices;
        let fused_wgrad = b.weight_grads && cp.conv().input_shape()[3] <= FUSED_WGRAD_MAX_CIN;
        if fused_wgrad {
            let (dk, db) = grads_of(b.weights.table(), b.grads, c.kernel_id(), c.bias_id());
            conv::conv_relu_maxpool_backward_filter(&c.ctx(), &cp, b.x[0], b.y, b.dy, argmax, dk, db, b.accumulate)?;
            if b.dx[0].is_none() {
                return Ok(());
            }
        }
        // The pooled passes read the pooled gradient as the dense one (Winograd builds its
        // tiles from it; the other algorithms unpool it first) and skip an odd last row or
        // column of the output, which no pooling window reads.
        if b.weight_grads && !fused_wgrad {
            let (dk, db) = grads_of(b.weights.table(), b.grads, c.kernel_id(), c.bias_id());
            conv::conv2d_backward_filter_pooled(&c.ctx(), &cp, b.x[0], b.y, b.dy, argmax, dk, db, b.accumulate)?;
        }
        if let Some(dx) = b.dx[0].as_deref_mut() {
            let w = b.weights.get(c.kernel_id());
            conv::conv2d_backward_data_pooled(&c.ctx_reading(&b.weights), &cp, b.y, b.dy, argmax, w, dx)?;
        }
        Ok(())
    }
}

//! Rule (inference plans only): a linear `Conv2D` whose only consumer is a
//! `BatchNormalization` (and, if that one's only consumer is a ReLU `Activation` layer, the
//! ReLU too) runs as one convolution with the normalization folded into its weights:
//! with `s = γ / √(σ² + ε)` and `t = β - μ s` from the moving statistics,
//! `W'[.., c] = W[.., c] s_c`, `b'_c = b_c s_c + t_c`, and the ReLU as the kernel's epilogue.
//! The folded weights are made from the store at every call (a few thousand multiplies), so
//! they follow the weights as training changes them. Training plans never fold: there the
//! batch's statistics, not the moving ones, normalize.

use crate::error::{Error, Result};
use crate::graph::plan::{Op, Planned};
use crate::graph::Graph;
use crate::layers::{Activation, Backward, BatchNormalization, Conv2D, Forward, Layer};
use ember_kernels::conv;
use std::sync::Arc;

/// The folded op for the convolution at node `i`, if the pattern holds.
pub(crate) fn rule(g: &Graph, consumers: &[Vec<usize>], i: usize) -> Option<Planned> {
    let conv = g.layer(i)?.as_any().downcast_ref::<Conv2D>()?;
    if conv.activation() != Activation::Linear {
        return None;
    }
    let &[b] = &consumers[i][..] else { return None };
    let bn = g.layer(b)?.as_any().downcast_ref::<BatchNormalization>()?;
    let relu = super::relu_consumer(g, consumers, b).map(|(a, _)| a);
    let mut covers = vec![i, b];
    covers.extend(relu);
    let names = covers.iter().filter_map(|&c| g.layer(c).map(|l| l.name().to_string())).collect();
    let op = ConvBnOp { conv: conv.clone(), bn: bn.clone(), relu: relu.is_some(), names };
    Some(Planned { op: Arc::new(op), inputs: g.nodes[i].inputs.clone(), covers, has_params: true })
}

/// The folded convolution's weights: `kernel` (HWIO: the output channel fastest) scaled by
/// `s` per output channel into `out_kernel`, `bias s + t` (a missing bias as 0) into
/// `out_bias`. Shared by this rule and [`crate::Model::fold_batch_norm`], so the two agree
/// to the bit.
pub(crate) fn fold(
    kernel: &[f32],
    bias: Option<&[f32]>,
    (s, t): (&[f32], &[f32]),
    out_kernel: &mut Vec<f32>,
    out_bias: &mut Vec<f32>,
) {
    let cout = s.len();
    out_kernel.clear();
    out_kernel.resize(kernel.len(), 0.0);
    // Row by row of `cout` into a buffer of its final length: plain loops the compiler
    // vectorises (this runs at every call; an `extend` over a `flat_map` pushed one weight
    // at a time and took ~5% of the residual network's inference).
    for (out, row) in out_kernel.chunks_exact_mut(cout.max(1)).zip(kernel.chunks_exact(cout.max(1))) {
        for ((o, &v), &s) in out.iter_mut().zip(row).zip(s) {
            *o = v * s;
        }
    }
    out_bias.clear();
    out_bias.extend((0..cout).map(|j| bias.map_or(0.0, |b| b[j]) * s[j] + t[j]));
}

/// `y = [relu](conv(x, W') + b')`, the folded weights in the workspace's scratch.
struct ConvBnOp {
    conv: Conv2D,
    bn: BatchNormalization,
    relu: bool,
    names: Vec<String>,
}

impl Op for ConvBnOp {
    fn describe(&self) -> String {
        format!("{} (batch normalization folded into the convolution, inference)", self.names.join(" + "))
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let c = self.conv.desc(f.n)?;
        let (s, t) = self.bn.inference_affine(&f.weights)?;
        let w = f.weights.get(self.conv.kernel_id());
        let b = self.conv.bias(&f.weights);
        // HWIO: the output channel is the fastest axis. Folded kernel and bias in the
        // workspace, so a call allocates only the (s, t) pair.
        let (folded, bias) = (&mut f.ws.scratch, &mut f.ws.kept);
        fold(w, b, (&s, &t), folded, bias);
        conv::conv2d_forward(&self.conv.ctx(), &c, f.x[0], folded, Some(bias), self.relu, f.y)?;
        Ok(())
    }
    fn backward(&self, _b: Backward<'_, '_>) -> Result<()> {
        Err(Error::Config(format!("{}: a folded batch normalization runs in inference only", self.names.join(" + "))))
    }
}

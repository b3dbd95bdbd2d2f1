//! Export for inference: batch normalization folded into the convolution before it, as
//! TensorFlow Lite's converter folds it. The folded model is an ordinary [`Model`] (save
//! its weights, predict, evaluate), with a `BatchNormalization` fewer for each fold and the
//! convolution then carrying a bias: with `s = γ / √(σ² + ε)` and `t = β - μ s` from the
//! moving statistics, `W'[.., c] = W[.., c] s_c` and `b'_c = b_c s_c + t_c` (the formula
//! `predict` folds with, so the two agree to the bit).

use crate::error::{Error, Result};
use crate::graph::fusion::conv_bn_fold::fold;
use crate::graph::Graph;
use crate::layers::{Activation, BatchNormalization, Conv2D, Layer};
use crate::model::Model;

impl Model {
    /// A copy of this model for inference in which every `BatchNormalization` whose input
    /// is a linear `Conv2D` it alone reads is folded into that convolution (which gains a
    /// bias if it had none); the other layers, their names and weights are copied as they
    /// are, layers with default names (`conv2d_3`) renamed as the BN-free model would name
    /// them. The copy is built and not compiled: `predict` works at once, `evaluate` after
    /// `compile`. Its weight file is the one that BN-free architecture loads.
    pub fn fold_batch_norm(&self) -> Result<Model> {
        if !self.graph.built {
            return Err(Error::Config("fold_batch_norm: build or train the model first".into()));
        }
        let g = &self.graph;
        let consumers = g.consumers();
        // folded_into[b] = the convolution node a batch normalization folds into.
        let mut folded_into = vec![None; g.nodes.len()];
        for (i, c) in consumers.iter().enumerate().skip(1) {
            let conv = g.layer(i).and_then(|l| l.as_any().downcast_ref::<Conv2D>());
            if let (Some(conv), &[b]) = (conv, &c[..]) {
                let bn = g.layer(b).and_then(|l| l.as_any().downcast_ref::<BatchNormalization>());
                if bn.is_some() && conv.activation() == Activation::Linear {
                    folded_into[b] = Some(i);
                }
            }
        }
        let mut out = Graph::with_input(Some(g.shape(0).to_vec()));
        let mut map = vec![0usize; g.nodes.len()];
        // (new conv node, old conv node, old BN node) per fold.
        let mut folds = Vec::new();
        for i in 1..g.nodes.len() {
            if let Some(c) = folded_into[i] {
                map[i] = map[c];
                folds.push((map[c], c, i));
                continue;
            }
            let layer = g.layer(i).ok_or_else(|| Error::Config(format!("node {i} has no layer")))?;
            let mut copy = match layer.as_any().downcast_ref::<Conv2D>() {
                Some(conv) if folded_into.contains(&Some(i)) => Box::new(conv.clone().use_bias(true)),
                _ => layer.clone_layer(),
            };
            // Default names are given again, as the BN-free model built from scratch gets
            // them (so its weight file matches); names a user chose stay.
            if is_default_name(copy.name(), copy.class_name()) {
                copy.set_name(String::new());
            }
            map[i] = out.push(copy, g.nodes[i].inputs.iter().map(|&j| map[j]).collect());
        }
        let mut m = Model::from_graph(out);
        m.functional = self.functional;
        m.seed(self.seed);
        m.pool.clone_from(&self.pool);
        m.fuse = self.fuse;
        m.build()?;
        // Every copied layer's tensors in order (a folded convolution's kernel is replaced
        // below, and its new bias written there).
        for i in (1..g.nodes.len()).filter(|&i| folded_into[i].is_none()) {
            let (old, new) = (g.layer(i), m.graph.layer(map[i]));
            let (Some(old), Some(new)) = (old, new) else { continue };
            for (&src, &dst) in old.params().iter().zip(new.params()) {
                let v = self.store.value(src).to_vec();
                m.store.value_mut(dst).copy_from_slice(&v);
            }
        }
        let weights = self.store.weights();
        for (new, conv, bn) in folds {
            let (conv, bn) = (
                g.layer(conv).and_then(|l| l.as_any().downcast_ref::<Conv2D>()),
                g.layer(bn).and_then(|l| l.as_any().downcast_ref::<BatchNormalization>()),
            );
            let (Some(conv), Some(bn)) = (conv, bn) else { continue };
            let (s, t) = bn.inference_affine(&weights)?;
            let (mut kernel, mut bias) = (Vec::new(), Vec::new());
            fold(weights.get(conv.kernel_id()), conv.bias(&weights), (&s, &t), &mut kernel, &mut bias);
            let target = m.graph.layer(new).and_then(|l| l.as_any().downcast_ref::<Conv2D>());
            let (k_id, b_id) = match target {
                Some(c) => (c.kernel_id(), c.bias_id()),
                None => return Err(Error::Config(format!("node {new} of the folded model is not a convolution"))),
            };
            m.store.value_mut(k_id).copy_from_slice(&kernel);
            let b_id = b_id.ok_or_else(|| Error::Config("a folded convolution has no bias".into()))?;
            m.store.value_mut(b_id).copy_from_slice(&bias);
        }
        Ok(m)
    }
}

/// Whether `name` is one the model gives a layer of `class` (`conv2d`, `conv2d_3`).
fn is_default_name(name: &str, class: &str) -> bool {
    let base = crate::graph::snake(class);
    name == base
        || name
            .strip_prefix(&base)
            .and_then(|r| r.strip_prefix('_'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

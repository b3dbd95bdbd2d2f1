//! Keras's `Sequential`: a builder that chains layers into a graph, each reading the one
//! before. Everything else (compile, fit, predict, weights) is the [`Model`]'s, reached
//! through `Deref`, as a Keras `Sequential` is a `Model`.

use crate::graph::Graph;
use crate::layers::Layer;
use crate::model::Model;
use std::ops::{Deref, DerefMut};

/// A stack of layers trained as one model.
pub struct Sequential {
    model: Model,
}

impl Default for Sequential {
    fn default() -> Self {
        Self::new()
    }
}

impl Sequential {
    /// An empty model, seed 0, all CPUs.
    pub fn new() -> Self {
        Sequential { model: Model::from_graph(Graph::with_input(None)) }
    }

    /// Sets the per-sample input shape (else the first layer's `input_shape`). Rebuilds the
    /// model at the next `compile`.
    pub fn input(&mut self, shape: &[usize]) -> &mut Self {
        self.model.graph.nodes[0].shape = Some(shape.to_vec());
        self.reset();
        self
    }

    /// Appends a layer reading the previous one's output, named as Keras names it
    /// (`conv2d`, `conv2d_1`, ...). Adding after `compile` requires compiling again (the
    /// weights are made anew).
    pub fn add(&mut self, layer: impl Layer) -> &mut Self {
        self.reset();
        let last = self.model.graph.output();
        self.model.graph.push(Box::new(layer), vec![last]);
        self
    }

    /// The model built so far.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model, by value.
    pub fn into_model(self) -> Model {
        self.model
    }

    fn reset(&mut self) {
        let m = &mut self.model;
        m.plan = None;
        m.train.compiled = None;
        m.graph.built = false;
        if m.graph.nodes.len() > 1 {
            m.graph.nodes[1..].iter_mut().for_each(|n| n.shape = None);
        }
    }
}

impl Deref for Sequential {
    type Target = Model;
    fn deref(&self) -> &Model {
        &self.model
    }
}

impl DerefMut for Sequential {
    fn deref_mut(&mut self) -> &mut Model {
        &mut self.model
    }
}

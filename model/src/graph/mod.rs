//! The graph: nodes of (layer, inputs), each producing one value, in topological order,
//! node 0 the model's input. Built once (shape inference, tensors declared in the
//! parameter store), then planned ([`plan`]: fusion rules, buffers by liveness) and run
//! ([`executor`]).
//!
//! Two ways build one: [`crate::Sequential`] chains layers, and the functional form
//! ([`Input`], [`Apply::apply`], [`crate::Model::new`]) builds any DAG, with fan-out (a value
//! that feeds several layers gets the sum of their gradients) and multi-input layers
//! ([`crate::layers::Add`]).

pub(crate) mod executor;
pub(crate) mod fusion;
pub(crate) mod liveness;
pub(crate) mod plan;
pub(crate) mod profile;
pub(crate) mod reduction;
pub(crate) mod segments;

use crate::error::{Error, Result};
use crate::layers::Layer;
use crate::params::{ParamBuilder, ParamStore};
use crate::rng::Rng;
use std::sync::{Arc, Mutex};

/// One node: a layer applied to earlier nodes' values, or the model's input.
pub(crate) struct GraphNode {
    /// `None` for the input.
    pub layer: Option<Arc<dyn Layer>>,
    /// The nodes whose values it reads, in the layer's input order.
    pub inputs: Vec<usize>,
    /// Per-sample output shape (the input's given shape; layers' after `build`).
    pub shape: Option<Vec<usize>>,
}

/// Nodes in topological order; node 0 is the input, the last node the output.
#[derive(Default)]
pub(crate) struct Graph {
    pub nodes: Vec<GraphNode>,
    pub built: bool,
}

impl Graph {
    /// A graph with just an input of (perhaps not yet known) per-sample `shape`.
    pub fn with_input(shape: Option<Vec<usize>>) -> Self {
        Graph { nodes: vec![GraphNode { layer: None, inputs: Vec::new(), shape }], built: false }
    }

    /// Appends `layer` reading `inputs`, named as Keras names it (`conv2d`, `conv2d_1`, ...).
    pub fn push(&mut self, mut layer: Box<dyn Layer>, inputs: Vec<usize>) -> usize {
        let class = layer.class_name();
        let count = self.nodes.iter().filter_map(|n| n.layer.as_ref()).filter(|l| l.class_name() == class).count();
        let base = snake(class);
        if layer.name().is_empty() {
            layer.set_name(if count == 0 { base } else { format!("{base}_{count}") });
        }
        self.nodes.push(GraphNode { layer: Some(Arc::from(layer)), inputs, shape: None });
        self.built = false;
        self.nodes.len() - 1
    }

    /// The output node.
    pub fn output(&self) -> usize {
        self.nodes.len() - 1
    }

    /// The layer of node `i` (not the input).
    pub fn layer(&self, i: usize) -> Option<&dyn Layer> {
        self.nodes[i].layer.as_deref()
    }

    /// The per-sample shape of node `i`'s value (after build).
    pub fn shape(&self, i: usize) -> &[usize] {
        self.nodes[i].shape.as_deref().unwrap_or(&[])
    }

    /// Per-sample length of node `i`'s value.
    pub fn len_of(&self, i: usize) -> usize {
        self.shape(i).iter().product()
    }

    /// For every node, the nodes that read its value (a node reading it twice counts twice).
    pub fn consumers(&self) -> Vec<Vec<usize>> {
        let mut c = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &j in &n.inputs {
                c[j].push(i);
            }
        }
        c
    }

    /// Builds every layer in order (shapes, tensors), drawing initial weights from `rng`.
    pub fn build(&mut self, rng: &mut Rng) -> Result<ParamStore> {
        if self.nodes.len() < 2 {
            return Err(Error::Config("the model has no layers".into()));
        }
        if self.nodes[0].shape.is_none() {
            let first = self.nodes.iter().position(|n| n.inputs.contains(&0));
            let declared =
                first.and_then(|i| self.layer(i)).and_then(|l| l.declared_input_shape().map(<[usize]>::to_vec));
            self.nodes[0].shape = Some(declared.ok_or_else(|| {
                Error::Config("the model's input shape is unknown: give the first layer an input_shape".into())
            })?);
        }
        let mut params = ParamBuilder::default();
        for i in 1..self.nodes.len() {
            let shapes: Vec<Vec<usize>> = self.nodes[i].inputs.iter().map(|&j| self.shape(j).to_vec()).collect();
            let refs: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
            let layer = self.nodes[i].layer.as_mut().and_then(Arc::get_mut).ok_or_else(|| {
                Error::Config(format!("node {i}: its layer is shared with a running plan and cannot be rebuilt"))
            })?;
            self.nodes[i].shape = Some(layer.build(&refs, &mut params, rng)?);
        }
        self.built = true;
        params.finish()
    }

    /// The node whose layer is named `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.layer.as_ref().is_some_and(|l| l.name() == name))
    }
}

/// `Conv2D` -> `conv2d`, `MaxPooling2D` -> `max_pooling2d` (Keras's default names).
pub(crate) fn snake(class: &str) -> String {
    let mut s = String::new();
    let chars: Vec<char> = class.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower = i > 0 && chars[i - 1].is_ascii_lowercase();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if i > 0 && (prev_lower || (next_lower && chars[i - 1].is_ascii_uppercase())) {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

/// A symbolic value of the functional form: the model's input, or a layer applied to
/// values (Keras's `KerasTensor`). Cheap to clone; a model takes the layers out of the
/// nodes it is made from, so a node belongs to one model.
#[derive(Clone)]
pub struct Node(Arc<NodeDef>);

struct NodeDef {
    layer: Mutex<Option<Box<dyn Layer>>>,
    inputs: Vec<Node>,
    /// The input's per-sample shape (input nodes only).
    shape: Option<Vec<usize>>,
}

/// Keras's `keras.Input(shape)`: the model's input, `shape` per sample.
#[derive(Debug, Clone, Copy)]
pub struct Input;

impl Input {
    /// An input of per-sample `shape` (`[h, w, c]` images, `[features]` vectors).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(shape: &[usize]) -> Node {
        Node(Arc::new(NodeDef { layer: Mutex::new(None), inputs: Vec::new(), shape: Some(shape.to_vec()) }))
    }
}

/// Applying a layer to symbolic values (Keras's `layer(x)`).
pub trait Apply: Layer + Sized {
    /// This layer applied to `x`.
    fn apply(self, x: &Node) -> Node {
        self.apply_to(&[x])
    }
    /// This layer applied to several values (`Add`).
    fn apply_to(self, xs: &[&Node]) -> Node {
        Node(Arc::new(NodeDef {
            layer: Mutex::new(Some(Box::new(self))),
            inputs: xs.iter().map(|&x| x.clone()).collect(),
            shape: None,
        }))
    }
}

impl<L: Layer> Apply for L {}

/// The graph from `input` to `output`: every node `output` depends on, in topological
/// order; their layers are taken out of the nodes.
pub(crate) fn from_nodes(input: &Node, output: &Node) -> Result<Graph> {
    if input.0.shape.is_none() {
        return Err(Error::Config("the model's input must be an Input node".into()));
    }
    let mut order: Vec<Node> = Vec::new();
    // Iterative post-order DFS (deep chains must not overflow the stack).
    let mut stack: Vec<(Node, bool)> = vec![(output.clone(), false)];
    while let Some((n, expanded)) = stack.pop() {
        if order.iter().any(|o| Arc::ptr_eq(&o.0, &n.0)) {
            continue;
        }
        if expanded {
            order.push(n);
            continue;
        }
        stack.push((n.clone(), true));
        for x in n.0.inputs.iter().rev() {
            stack.push((x.clone(), false));
        }
    }
    let index = |n: &Node| order.iter().position(|o| Arc::ptr_eq(&o.0, &n.0)).expect("every input was ordered");
    if order.first().is_none_or(|f| !Arc::ptr_eq(&f.0, &input.0)) || order[1..].iter().any(|n| n.0.shape.is_some()) {
        return Err(Error::Config("the output depends on an Input that is not the model's input, or not on it".into()));
    }
    let mut g = Graph::with_input(input.0.shape.clone());
    for n in &order[1..] {
        let layer = n.0.layer.lock().map_err(|_| Error::Config("a node's lock is poisoned".into()))?.take();
        let layer = layer.ok_or_else(|| Error::Config("a layer node already belongs to another model".into()))?;
        let inputs = n.0.inputs.iter().map(index).collect();
        g.push(layer, inputs);
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_names() {
        assert_eq!(snake("Conv2D"), "conv2d");
        assert_eq!(snake("MaxPooling2D"), "max_pooling2d");
        assert_eq!(snake("AveragePooling2D"), "average_pooling2d");
        assert_eq!(snake("Dense"), "dense");
    }
}

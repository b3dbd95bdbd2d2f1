//! `Model::summary` against the text Keras prints for the same models
//! (`fixtures/keras_summary.txt`, from `scripts/keras_summary_fixture.py`): a Sequential at
//! Keras's default line length and at 76, a residual block (branches: the "Connected to"
//! column, Keras's row order, wrapped and cut cells) and a functional chain, before and
//! after a training step (the optimizer's variables counted once it has run).

mod common;

use common::seed_model;
use ember_model::layers::{
    Activation, ActivationLayer, Add, BatchNormalization, Conv2D, Dense, Flatten, GlobalAveragePooling2D, MaxPooling2D,
};
use ember_model::losses::Loss;
use ember_model::optimizers::{Adam, CosineDecay, Optimizer, RmsProp, Sgd};
use ember_model::{Apply, Error, Input, Model, Node};

/// Keras's text for `case`.
fn keras(case: &str) -> String {
    let all = include_str!("fixtures/keras_summary.txt");
    let start = all.find(&format!("=== {case}\n")).expect("case in the fixture") + case.len() + 5;
    let len = all[start..].find("=== ").unwrap_or(all.len() - start);
    all[start..start + len].to_string()
}

fn built(mut m: Model) -> Model {
    m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[]).unwrap();
    m
}

/// The fixture's `branches`: a residual block whose main branch (conv-BN-ReLU-conv-BN) is
/// longer than its shortcut (a 1x1 conv-BN), so that Keras's row order (by depth) differs
/// from the graph's (each branch in turn), then pooling and a dense layer.
fn branches() -> Model {
    let conv = |k: usize| Conv2D::new(4, (k, k)).padding("same").use_bias(false);
    let bn = |x: &Node| BatchNormalization::new().apply(x);
    let x = Input::new(&[8, 8, 1]);
    let h = ActivationLayer::new(Activation::Relu).apply(&bn(&conv(3).apply(&x)));
    let h = bn(&conv(3).apply(&h));
    let s = bn(&conv(1).apply(&x));
    let y = Dense::new(10).apply(&GlobalAveragePooling2D::new().apply(&Add::new().apply_to(&[&h, &s])));
    built(Model::new(&x, &y).unwrap())
}

fn diff(ours: &str, theirs: &str) -> String {
    let first = ours.lines().zip(theirs.lines()).position(|(a, b)| a != b);
    format!("first differing line {first:?}\n--- ember\n{ours}--- keras\n{theirs}")
}

#[test]
fn a_sequential_as_keras_prints_it() {
    let m = built(seed_model(28, 32, 10, 0).into_model());
    assert!(m.summary() == keras("seed"), "{}", diff(&m.summary(), &keras("seed")));
    let narrow = m.summary_with_line_length(76).unwrap();
    assert!(narrow == keras("seed_76"), "{}", diff(&narrow, &keras("seed_76")));
}

#[test]
fn a_network_with_branches_as_keras_prints_it() {
    let m = branches();
    assert!(m.summary() == keras("branches"), "{}", diff(&m.summary(), &keras("branches")));
}

/// The fixture's `chain`: conv, pooling, dense.
fn chain() -> Model {
    let x = Input::new(&[12, 12, 1]);
    let h = MaxPooling2D::new((2, 2)).apply(&Conv2D::new(8, (3, 3)).activation(Activation::Relu).apply(&x));
    let y = Dense::new(10).activation(Activation::Softmax).apply(&Flatten::new().apply(&h));
    Model::new(&x, &y).unwrap()
}

#[test]
fn a_functional_chain_as_keras_prints_it() {
    let m = built(chain());
    assert!(m.summary() == keras("chain"), "{}", diff(&m.summary(), &keras("chain")));
}

#[test]
fn a_trained_model_counts_its_optimizer_as_keras_does() {
    // Keras builds the optimizer at the first step and then counts its variables: the
    // slots, the step counter (8 bytes) and a constant learning rate (none for a schedule).
    let cosine = CosineDecay { initial_learning_rate: 0.01, decay_steps: 100, alpha: 0.0 };
    let cases: [(&str, Box<dyn Optimizer>); 3] = [
        ("chain_adam", Box::new(Adam::new())),
        ("chain_sgd", Box::new(Sgd::new())),
        ("chain_rmsprop_cosine", Box::new(RmsProp::new().learning_rate(cosine))),
    ];
    for (case, optimizer) in cases {
        let mut m = chain();
        m.compile(optimizer, Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[]).unwrap();
        assert!(m.summary() == keras("chain"), "{case}, before a step: {}", diff(&m.summary(), &keras("chain")));
        m.train_on_batch(&[0.0; 2 * 144], &[0, 1]).unwrap();
        assert!(m.summary() == keras(case), "{case}: {}", diff(&m.summary(), &keras(case)));
    }
}

#[test]
fn a_line_too_narrow_for_a_column_is_an_error() {
    let m = built(seed_model(28, 32, 10, 0).into_model());
    // Keras: "Insufficient console width to print summary." below 4 characters a column.
    // At 15 the last column gets 15 - int(0.8 * 15) = 3; at 16 every column has 4 or more.
    for narrow in [0, 8, 15] {
        assert!(matches!(m.summary_with_line_length(narrow), Err(Error::Config(_))), "{narrow}");
    }
    let s = m.summary_with_line_length(16).unwrap();
    let table = s.lines().filter(|l| !l.starts_with(['M', ' ']));
    assert!(table.clone().count() > 10 && table.clone().all(|l| l.chars().count() == 16), "{s}");
}

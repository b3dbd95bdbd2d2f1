//! Bad input to every public function of `ember-model`, table-driven: each row is a call with
//! one thing wrong and the error it must return. A row fails if the call panics, succeeds,
//! or returns another error.
//!
//! One file per area; this one holds the harness (a row is a `Case`, `run` reports every
//! failing row at once), the models and data the rows share, and the imports. The areas'
//! modules come last, after the `case!` macro they use.

#[path = "../common/mod.rs"]
mod common;

use common::{compile_adam, quadrant_task, seed_model};
use ember_model::data::{load_mnist, parse_idx, read_idx, Dataset};
use ember_model::io::write_atomic;
use ember_model::io::Record;
use ember_model::layers::Add;
use ember_model::layers::{Activation, AveragePooling2D, Conv2D, Dense, Dropout, Flatten, MaxPooling2D};
use ember_model::losses::{correct_predictions, sparse_ce_from_logits, sparse_ce_from_probs, Loss, Metric};
use ember_model::optimizers::{Adam, Sgd};
use ember_model::{Apply, ClipByGlobalNorm, Error, FitOptions, Input, Model, Sequential, Tensor};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

type Call = Box<dyn Fn() -> Result<(), Error>>;

struct Case {
    what: &'static str,
    call: Call,
    expect: fn(&Error) -> bool,
}

macro_rules! case {
    ($what:expr, $pat:pat, $body:expr) => {
        Case { what: $what, call: Box::new(move || $body.map(|_| ())), expect: |e| matches!(e, $pat) }
    };
}

fn run(cases: Vec<Case>) {
    let total = cases.len();
    let mut failures = Vec::new();
    for c in cases {
        match catch_unwind(AssertUnwindSafe(|| (c.call)())) {
            Err(_) => failures.push(format!("{}: panicked", c.what)),
            Ok(Ok(())) => failures.push(format!("{}: accepted", c.what)),
            Ok(Err(e)) if !(c.expect)(&e) => failures.push(format!("{}: wrong error: {e}", c.what)),
            Ok(Err(_)) => {}
        }
    }
    assert!(failures.is_empty(), "{} of {total} rows failed:\n{}", failures.len(), failures.join("\n"));
}

/// The reference architecture on 12 x 12 inputs, 4 classes, compiled.
fn model() -> Sequential {
    let mut m = seed_model(12, 4, 4, 1);
    compile_adam(&mut m);
    m
}

/// A dataset for the rows' closures to share.
fn leak(d: Dataset) -> &'static Dataset {
    Box::leak(Box::new(d))
}

fn fit_opts(epochs: usize, batch_size: usize) -> FitOptions {
    FitOptions { epochs, batch_size, ..FitOptions::default() }
}

/// A model with `layer` after a 12 x 12 x 1 input, then Flatten and Dense, compiled.
fn build_with(layer: impl ember_model::layers::Layer + 'static) -> Result<(), Error> {
    let mut m = Sequential::new();
    m.input(&[12, 12, 1]).add(layer).add(Flatten::new()).add(Dense::new(4));
    m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
}

fn compile_with(opt: impl ember_model::optimizers::Optimizer + 'static) -> Result<(), Error> {
    seed_model(12, 4, 4, 1).compile(opt, Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[Metric::Accuracy])
}

/// A functional model with an `Add` of `inputs` branches on an 8 x 8 x 1 input.
fn add_model(branches: usize, widths: &[usize]) -> Result<Model, Error> {
    let x = Input::new(&[8, 8, 1]);
    let b: Vec<_> = (0..branches).map(|i| Conv2D::new(widths[i], (3, 3)).apply(&x)).collect();
    let s = Add::new().apply_to(&b.iter().collect::<Vec<_>>());
    let y = Dense::new(2).apply(&Flatten::new().apply(&s));
    let mut m = Model::new(&x, &y)?;
    m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])?;
    Ok(m)
}

mod engine;
mod layers;
mod training;
mod weight_files;

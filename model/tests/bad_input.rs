//! Bad input to every public function of `ember-model`, table-driven: each row is a call with
//! one thing wrong and the error it must return. A row fails if the call panics, succeeds,
//! or returns another error.

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

#[test]
fn the_engine_rejects_bad_graphs_shards_and_hooks() {
    let data = leak(quadrant_task(8, 12, 1));
    run(vec![
        case!("functional: Add of one input", Error::Config(_), add_model(1, &[2])),
        case!("functional: Add of different shapes", Error::LayerShape { .. }, add_model(2, &[2, 3])),
        case!("functional: Concatenate of one input", Error::Config(_), {
            let x = Input::new(&[4]);
            Model::new(&x, &ember_model::layers::Concatenate::new().apply_to(&[&x]))
                .and_then(|mut m| m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[]).map(|_| m))
        }),
        case!("functional: Concatenate of mismatched images", Error::LayerShape { .. }, {
            let x = Input::new(&[4, 4, 1]);
            let a = Conv2D::new(2, (3, 3)).apply(&x);
            let y = Dense::new(2)
                .apply(&Flatten::new().apply(&ember_model::layers::Concatenate::new().apply_to(&[&x, &a])));
            Model::new(&x, &y)
                .and_then(|mut m| m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[]).map(|_| m))
        }),
        case!("functional: the input is not an Input", Error::Config(_), {
            let x = Input::new(&[8, 8, 1]);
            let h = Flatten::new().apply(&x);
            Model::new(&h, &Dense::new(2).apply(&h))
        }),
        case!("functional: the output depends on another Input", Error::Config(_), {
            let (x, other) = (Input::new(&[8, 8, 1]), Input::new(&[8, 8, 1]));
            Model::new(&x, &Dense::new(2).apply(&Flatten::new().apply(&other)))
        }),
        case!("functional: a node used by a second model", Error::Config(_), {
            let x = Input::new(&[4]);
            let y = Dense::new(2).apply(&x);
            Model::new(&x, &y).and_then(|_| Model::new(&x, &y))
        }),
        case!("a model that computes nothing", Error::Config(_), {
            let mut m = Sequential::new();
            m.input(&[3]).add(Flatten::new());
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!("compute_gradients before compile", Error::NotCompiled, {
            let m = seed_model(12, 4, 4, 1);
            let len = m.params().table().trainable_len();
            m.compute_gradients(&mut m.new_shard(), (&[0.0; 144], &[0]), (0, 1), &mut vec![0.0; len])
        }),
        case!("compute_gradients: gradient arena of the wrong length", Error::Data(_), {
            let m = model();
            m.compute_gradients(&mut m.new_shard(), (&[0.0; 144], &[0]), (0, 1), &mut [0.0; 3])
        }),
        case!("compute_gradients: shard outside its batch", Error::Data(_), {
            let m = model();
            let len = m.params().table().trainable_len();
            m.compute_gradients(&mut m.new_shard(), (&[0.0; 288], &[0, 1]), (1, 2), &mut vec![0.0; len])
        }),
        case!("compute_gradients: a label out of range", Error::Data(_), {
            let m = model();
            let len = m.params().table().trainable_len();
            m.compute_gradients(&mut m.new_shard(), (&[0.0; 144], &[9]), (0, 1), &mut vec![0.0; len])
        }),
        case!("global norm clip of zero", Error::Config(_), {
            let mut m = model();
            m.set_gradient_hook(ClipByGlobalNorm(0.0));
            m.fit(data, None, &fit_opts(1, 4), &mut ())
        }),
        case!("a record that is not safetensors", Error::Weights { .. }, Record::from_bytes(b"nope", "bytes")),
        case!("store: keras values of the wrong length", Error::Config(_), {
            let mut m = model();
            let b = m.params().find("dense/bias").unwrap();
            m.params_mut().set_from_keras(b, &[0.0; 5])
        }),
    ]);
}

#[test]
fn layers_and_compile_reject_bad_configurations() {
    run(vec![
        case!("no input shape", Error::Config(_), {
            let mut m = Sequential::new();
            m.add(Flatten::new()).add(Dense::new(3));
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!(
            "no layers",
            Error::Config(_),
            Sequential::new().input(&[4]).compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        ),
        case!("conv window larger than the input", Error::LayerShape { .. }, build_with(Conv2D::new(4, (13, 3)))),
        case!("conv with zero filters", Error::Config(_), build_with(Conv2D::new(0, (3, 3)))),
        case!("conv with a zero kernel", Error::LayerShape { .. }, build_with(Conv2D::new(2, (0, 3)))),
        case!("conv with a zero stride", Error::LayerShape { .. }, build_with(Conv2D::new(2, (3, 3)).strides((0, 1)))),
        case!(
            "conv with softmax",
            Error::Config(_),
            build_with(Conv2D::new(2, (3, 3)).activation(Activation::Softmax))
        ),
        case!("conv on flat input", Error::LayerShape { .. }, {
            let mut m = Sequential::new();
            m.input(&[144]).add(Conv2D::new(2, (3, 3))).add(Flatten::new()).add(Dense::new(4));
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!("conv weights too many to allocate", Error::Config(_), {
            let mut m = Sequential::new();
            m.input(&[1, 1, 1 << 20]).add(Conv2D::new(1 << 30, (1, 1))).add(Flatten::new()).add(Dense::new(4));
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!(
            "max pool window larger than the input",
            Error::LayerShape { .. },
            build_with(MaxPooling2D::new((13, 2)))
        ),
        case!("max pool zero window", Error::LayerShape { .. }, build_with(MaxPooling2D::new((0, 2)))),
        case!(
            "avg pool zero stride",
            Error::LayerShape { .. },
            build_with(AveragePooling2D::new((2, 2)).strides((2, 0)))
        ),
        case!("dropout rate 1", Error::Config(_), build_with(Dropout::new(1.0))),
        case!(
            "depthwise with multiplier 0",
            Error::LayerShape { .. },
            build_with(ember_model::layers::DepthwiseConv2D::new((3, 3)).depth_multiplier(0))
        ),
        case!(
            "depthwise window larger than the input",
            Error::LayerShape { .. },
            build_with(ember_model::layers::DepthwiseConv2D::new((3, 13)))
        ),
        case!(
            "depthwise with softmax",
            Error::Config(_),
            build_with(ember_model::layers::DepthwiseConv2D::new((3, 3)).activation(Activation::Softmax))
        ),
        case!(
            "depthwise padding neither valid nor same",
            Error::Config(_),
            build_with(ember_model::layers::DepthwiseConv2D::new((3, 3)).padding("full"))
        ),
        case!(
            "separable with zero filters",
            Error::Config(_),
            build_with(ember_model::layers::SeparableConv2D::new(0, (3, 3)))
        ),
        case!(
            "separable with a zero stride",
            Error::LayerShape { .. },
            build_with(ember_model::layers::SeparableConv2D::new(2, (3, 3)).strides((1, 0)))
        ),
        case!(
            "conv padding neither valid nor same",
            Error::Config(_),
            build_with(Conv2D::new(2, (3, 3)).padding("full"))
        ),
        case!(
            "pool padding neither valid nor same",
            Error::Config(_),
            build_with(MaxPooling2D::new((2, 2)).padding("causal"))
        ),
        case!(
            "batch norm momentum 1",
            Error::Config(_),
            build_with(ember_model::layers::BatchNormalization::new().momentum(1.0))
        ),
        case!(
            "batch norm epsilon 0",
            Error::Config(_),
            build_with(ember_model::layers::BatchNormalization::new().epsilon(0.0))
        ),
        case!("global average pooling of vectors", Error::LayerShape { .. }, {
            let mut m = Sequential::new();
            m.input(&[12]).add(ember_model::layers::GlobalAveragePooling2D::new()).add(Dense::new(4));
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!("global max pooling of vectors", Error::LayerShape { .. }, {
            let mut m = Sequential::new();
            m.input(&[12]).add(ember_model::layers::GlobalMaxPooling2D::new()).add(Dense::new(4));
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!("dropout rate NaN", Error::Config(_), build_with(Dropout::new(f32::NAN))),
        case!("dense on an image", Error::LayerShape { .. }, {
            let mut m = Sequential::new();
            m.input(&[12, 12, 1]).add(Dense::new(4));
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!("dense with zero units", Error::LayerShape { .. }, {
            let mut m = Sequential::new();
            m.input(&[12]).add(Dense::new(0));
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!("dense weights overflow", Error::LayerShape { .. }, {
            let mut m = Sequential::new();
            m.input(&[4]).add(Dense::new(usize::MAX / 2));
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!("dense weights too many to allocate", Error::Config(_), {
            let mut m = Sequential::new();
            m.input(&[1 << 22]).add(Dense::new(1 << 30));
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!("loss on image outputs", Error::Config(_), {
            let mut m = Sequential::new();
            m.input(&[12, 12, 1]).add(Conv2D::new(2, (3, 3)));
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!("negative learning rate", Error::Config(_), compile_with(Adam::new().learning_rate(-1e-3))),
        case!("NaN learning rate", Error::Config(_), compile_with(Sgd::new().learning_rate(f32::NAN))),
        case!("Adam beta_1 = 1", Error::Config(_), compile_with(Adam::new().betas(1.0, 0.999))),
        case!("Adam beta_2 < 0", Error::Config(_), compile_with(Adam::new().betas(0.9, -0.1))),
        case!("Adam epsilon 0", Error::Config(_), compile_with(Adam::new().epsilon(0.0))),
        case!("binary cross-entropy on three outputs with integer labels", Error::Data(_), {
            let mut m = seed_model(12, 4, 3, 1);
            m.compile(Adam::new(), Loss::BINARY_CROSSENTROPY, &[]).unwrap();
            m.train_on_batch(&[0.0; 144], &[1])
        }),
        case!("dense targets narrower than the output", Error::Data(_), {
            let mut m = seed_model(12, 4, 3, 1);
            m.compile(Adam::new(), Loss::CATEGORICAL_CROSSENTROPY, &[]).unwrap();
            m.train_on_batch(&[0.0; 144], ember_model::Targets::dense(&[0.5, 0.5], 2).unwrap())
        }),
        case!("sparse cross-entropy with dense targets", Error::Data(_), {
            let mut m = seed_model(12, 4, 3, 1);
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[]).unwrap();
            m.train_on_batch(&[0.0; 144], ember_model::Targets::dense(&[0.0, 1.0, 0.0], 3).unwrap())
        }),
        case!(
            "label smoothing above 1",
            Error::Config(_),
            seed_model(12, 4, 3, 1).compile(
                Adam::new(),
                Loss::CategoricalCrossentropy { from_logits: false, label_smoothing: 1.5 },
                &[]
            )
        ),
        case!("binary cross-entropy with label 2", Error::Data(_), {
            let mut m = seed_model(12, 4, 1, 1);
            m.compile(Adam::new(), Loss::BINARY_CROSSENTROPY, &[]).unwrap();
            m.train_on_batch(&[0.0; 144], &[2])
        }),
        case!("RMSprop rho 1", Error::Config(_), compile_with(ember_model::optimizers::RmsProp::new().rho(1.0))),
        case!(
            "RMSprop epsilon NaN",
            Error::Config(_),
            compile_with(ember_model::optimizers::RmsProp::new().epsilon(f32::NAN))
        ),
        case!(
            "Adagrad negative initial accumulator",
            Error::Config(_),
            compile_with(ember_model::optimizers::Adagrad::new().initial_accumulator_value(-0.1))
        ),
        case!(
            "AdamW negative weight decay",
            Error::Config(_),
            compile_with(ember_model::optimizers::AdamW::new().weight_decay(-1.0))
        ),
        case!(
            "AdamW beta_1 = 1",
            Error::Config(_),
            compile_with(ember_model::optimizers::AdamW::new().betas(1.0, 0.999))
        ),
        case!("SGD momentum 2", Error::Config(_), compile_with(Sgd::new().momentum(2.0))),
        case!("unknown activation name", Error::Config(_), "gelu6".parse::<Activation>()),
        case!("more threads than any machine has", Error::Config(_), Sequential::new().set_threads(usize::MAX)),
    ]);
}

#[test]
fn training_and_inference_reject_bad_data() {
    let data = leak(quadrant_task(20, 12, 3));
    let wrong_shape = leak(quadrant_task(20, 10, 3));
    let bad_label = leak(Dataset::from_f32(vec![0.0; 2 * 144], vec![12, 12, 1], vec![0, 4]).unwrap());
    run(vec![
        case!(
            "fit before compile",
            Error::NotCompiled,
            seed_model(12, 4, 4, 1).fit(data, None, &fit_opts(1, 4), &mut ())
        ),
        case!("evaluate before compile", Error::NotCompiled, seed_model(12, 4, 4, 1).evaluate(data, 4)),
        // Keras predicts with an uncompiled model; one without an input shape cannot build.
        case!("predict without an input shape", Error::Config(_), {
            let mut m = Sequential::new();
            m.add(Flatten::new()).add(Dense::new(2));
            m.predict(data, 4)
        }),
        case!(
            "train_on_batch before compile",
            Error::NotCompiled,
            seed_model(12, 4, 4, 1).train_on_batch(&[0.0; 144], &[0])
        ),
        case!("fit: batch size 0", Error::Config(_), model().fit(data, None, &fit_opts(1, 0), &mut ())),
        case!(
            "fit: validation split 1",
            Error::Config(_),
            model().fit(data, None, &FitOptions { validation_split: 1.0, ..fit_opts(1, 4) }, &mut ())
        ),
        case!(
            "fit: validation split NaN",
            Error::Config(_),
            model().fit(data, None, &FitOptions { validation_split: f32::NAN, ..fit_opts(1, 4) }, &mut ())
        ),
        case!("fit: wrong sample shape", Error::Data(_), model().fit(wrong_shape, None, &fit_opts(1, 4), &mut ())),
        case!(
            "fit: validation data of the wrong shape",
            Error::Data(_),
            model().fit(data, Some(wrong_shape), &fit_opts(1, 4), &mut ())
        ),
        case!("fit: label out of range", Error::Data(_), model().fit(bad_label, None, &fit_opts(1, 4), &mut ())),
        case!(
            "fit: everything held out",
            Error::Data(_),
            model().fit(&data.slice(0..1)?, None, &FitOptions { validation_split: 0.5, ..fit_opts(1, 4) }, &mut ())
        ),
        case!(
            "fit: checkpoint into a missing directory",
            Error::Io { .. },
            model().fit(
                data,
                None,
                &FitOptions { checkpoint: Some("/nonexistent/dir/ckpt".into()), ..fit_opts(1, 8) },
                &mut ()
            )
        ),
        case!("evaluate: batch size 0", Error::Config(_), model().evaluate(data, 0)),
        case!("evaluate: label out of range", Error::Data(_), model().evaluate(bad_label, 4)),
        case!("predict: wrong sample shape", Error::Data(_), model().predict(wrong_shape, 4)),
        case!("predict: batch size 0", Error::Config(_), model().predict(data, 0)),
        case!("train_on_batch: input length", Error::Data(_), model().train_on_batch(&[0.0; 143], &[0])),
        case!("train_on_batch: no samples", Error::Data(_), model().train_on_batch(&[], &[])),
        case!("train_on_batch: label out of range", Error::Data(_), model().train_on_batch(&[0.0; 144], &[7])),
        case!("loss_and_gradients: input length", Error::Data(_), model().loss_and_gradients(&[0.0; 288], &[0])),
        case!("layer_output: no such layer", Error::Config(_), model().layer_output(data, 0, "conv9")),
        case!("layer_output: sample past the end", Error::Data(_), model().layer_output(data, 20, "conv2d")),
    ]);
}

#[test]
fn data_losses_and_tensors_reject_bad_input() {
    let data = leak(quadrant_task(5, 12, 3));
    run(vec![
        case!(
            "dataset: values for fewer samples",
            Error::Data(_),
            Dataset::from_f32(vec![0.0; 100], vec![10, 10, 1], vec![0, 1])
        ),
        case!("dataset: empty sample shape", Error::Data(_), Dataset::from_f32(vec![], vec![0], vec![0])),
        case!(
            "dataset: dense targets of the wrong length",
            Error::Data(_),
            Dataset::from_f32(vec![0.0; 4], vec![2], vec![0, 1]).unwrap().with_targets(vec![0.0; 5], 2)
        ),
        case!(
            "dataset: dense targets of width 0",
            Error::Data(_),
            Dataset::from_f32(vec![0.0; 4], vec![2], vec![0, 1]).unwrap().with_targets(vec![], 0)
        ),
        case!("targets: width 0", Error::Data(_), ember_model::Targets::dense(&[], 0)),
        case!("targets: not whole rows", Error::Data(_), ember_model::Targets::dense(&[0.0; 5], 2)),
        case!("to_categorical: label out of range", Error::Data(_), ember_model::to_categorical(&[0, 3], 3)),
        case!(
            "dataset: shape overflows",
            Error::Data(_),
            Dataset::from_f32(vec![0.0; 4], vec![usize::MAX, 2], vec![0])
        ),
        case!("dataset: divisor 0", Error::Data(_), Dataset::from_u8(vec![0; 4], vec![4], vec![0], 0.0)),
        case!("dataset: sample past the end", Error::Data(_), data.sample(5)),
        case!("dataset: slice past the end", Error::Data(_), data.slice(3..6)),
        case!("dataset: reversed slice", Error::Data(_), {
            #[allow(clippy::reversed_empty_ranges)]
            let r = data.slice(4..2);
            r
        }),
        case!("IDX: too short", Error::Idx { .. }, parse_idx(&[0, 0], "x")),
        case!("IDX: bad magic", Error::Idx { .. }, parse_idx(&[1, 2, 3, 4, 0, 0, 0, 0], "x")),
        case!("IDX: not bytes", Error::Idx { .. }, parse_idx(&[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0], "x")),
        case!("IDX: truncated data", Error::Idx { .. }, parse_idx(&[0, 0, 8, 1, 0, 0, 0, 9, 1, 2], "x")),
        case!("IDX: trailing data", Error::Idx { .. }, parse_idx(&[0, 0, 8, 1, 0, 0, 0, 1, 1, 2], "x")),
        case!(
            "IDX: dimensions overflow",
            Error::Idx { .. },
            parse_idx(&[0, 0, 8, 3, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255], "x")
        ),
        case!("IDX: bad gzip", Error::Idx { .. }, parse_idx(&[0x1f, 0x8b, 8, 0, 0, 0], "x")),
        case!("IDX: missing file", Error::Io { .. }, read_idx("/nonexistent/file.idx")),
        case!(
            "IDX: images without labels",
            Error::Data(_),
            Dataset::from_idx(
                parse_idx(&[0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 7], "i")?,
                parse_idx(&[0, 0, 8, 1, 0, 0, 0, 2, 1, 2], "l")?
            )
        ),
        case!("MNIST: missing directory", Error::Io { .. }, load_mnist("/nonexistent/mnist")),
        case!(
            "loss: label out of range",
            Error::Data(_),
            sparse_ce_from_logits(&[0.0; 6], &[0, 3], 3, 1.0, &mut [0.0; 6])
        ),
        case!(
            "loss: gradient length",
            Error::Kernel(_),
            sparse_ce_from_logits(&[0.0; 6], &[0, 1], 3, 1.0, &mut [0.0; 5])
        ),
        case!("loss: zero classes", Error::Data(_), sparse_ce_from_logits(&[], &[0], 0, 1.0, &mut [])),
        case!(
            "loss from probabilities: lengths",
            Error::Data(_),
            sparse_ce_from_probs(&[0.5; 5], &[0, 1], 3, 1.0, &mut [0.0; 5])
        ),
        case!("accuracy: zero classes", Error::Data(_), correct_predictions(&[0.5; 4], &[0, 1], 0)),
        case!("accuracy: lengths", Error::Data(_), correct_predictions(&[0.5; 5], &[0, 1], 2)),
        case!("tensor: length vs shape", Error::Data(_), Tensor::new(vec![2, 3], vec![0.0; 5])),
        case!("tensor: shape overflows", Error::Data(_), Tensor::zeros(vec![usize::MAX, 3])),
    ]);
}

#[test]
fn weight_files_reject_bad_input() {
    let dir = std::env::temp_dir().join(format!("ember-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = model().weights_to_bytes().unwrap();
    let other = {
        let mut m = seed_model(12, 6, 4, 1);
        compile_adam(&mut m);
        m.weights_to_bytes().unwrap()
    };
    let (g1, g2) = (good.clone(), good.clone());
    let missing = dir.join("missing.safetensors");
    let (m1, m2) = (missing.clone(), missing);
    let target = dir.join("no-such-dir").join("w.safetensors");
    run(vec![
        case!("weights: garbage", Error::Weights { .. }, model().load_bytes(b"not a safetensors file", "x", false)),
        case!("weights: truncated", Error::Weights { .. }, model().load_bytes(&g1[..g1.len() - 3], "x", false)),
        case!("weights: another architecture", Error::Weights { .. }, model().load_bytes(&other, "x", false)),
        case!("checkpoint: a weights file", Error::Weights { .. }, model().load_bytes(&g2, "x", true)),
        case!("weights: missing file", Error::Io { .. }, model().load_weights(&m1)),
        case!("checkpoint: missing file", Error::Io { .. }, model().load_checkpoint(&m2)),
        case!(
            "checkpoint: save before compile",
            Error::NotCompiled,
            seed_model(12, 4, 4, 1).save_checkpoint(Path::new("/tmp/unused-ember-ckpt"))
        ),
        case!("weights: save before build", Error::Config(_), seed_model(12, 4, 4, 1).weights_to_bytes()),
        case!("atomic write into a missing directory", Error::Io { .. }, write_atomic(&target, b"x")),
        case!("keras values of the wrong length", Error::Config(_), {
            let mut m = model();
            let k = m.params().find("conv2d/kernel").unwrap();
            m.params_mut().set_from_keras(k, &[0.0; 3])
        }),
    ]);
    std::fs::remove_dir_all(&dir).ok();
}

//! The engine's seams: a functional model with a residual branch trains; shards of a batch
//! run concurrently give exactly the gradients of running them one after the other; the
//! gradient hook sees (and may change) the whole gradient arena before the optimizer step;
//! Adam summing the shards in its step (no hook) gives the bits of the sum made first.

mod common;

use common::{compile_adam, quadrant_task, seed_model};
use ember_kernels::conv::Padding;
use ember_model::layers::{Activation, ActivationLayer, Add, BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D};
use ember_model::losses::{Loss, Metric};
use ember_model::optimizers::{Adagrad, Adam, AdamW, Optimizer, RmsProp, Sgd};
use ember_model::params::ParamTable;
use ember_model::{Apply, FitOptions, GradientHook, Input, Model};
use std::sync::{Arc, Mutex};

fn residual_model(size: usize) -> Model {
    let x = Input::new(&[size, size, 1]);
    let h = Conv2D::new(8, (3, 3)).padding(Padding::Same).activation(Activation::Relu).apply(&x);
    let r = Conv2D::new(8, (3, 3)).padding(Padding::Same).activation(Activation::Relu).apply(&h);
    let s = Add::new().apply_to(&[&h, &r]);
    let p = MaxPooling2D::new((2, 2)).apply(&Conv2D::new(8, (3, 3)).activation(Activation::Relu).apply(&s));
    let y = Dense::new(4).activation(Activation::Softmax).apply(&Flatten::new().apply(&p));
    let mut m = Model::new(&x, &y).unwrap();
    m.seed(4);
    m
}

#[test]
fn a_residual_functional_model_trains() {
    let train = quadrant_task(1000, 12, 3);
    let test = quadrant_task(200, 12, 4);
    let mut m = residual_model(12);
    compile_adam(&mut m);
    assert!(m.plan().contains("fused"), "the conv+pool after the join fuses:\n{}", m.plan());
    let before = m.evaluate(&test, 50).unwrap();
    m.fit(&train, None, &FitOptions { epochs: 3, batch_size: 16, ..FitOptions::default() }, &mut ()).unwrap();
    let after = m.evaluate(&test, 50).unwrap();
    assert!(after.accuracy > 0.9 && after.loss < before.loss, "before {before:?}, after {after:?}");
}

#[test]
fn concurrent_shards_give_the_sequential_gradients() {
    let data = quadrant_task(24, 12, 5);
    let mut x = vec![0.0; 24 * 144];
    for i in 0..24 {
        x[i * 144..(i + 1) * 144].copy_from_slice(&data.sample(i).unwrap());
    }
    let labels = data.labels().unwrap().to_vec();
    for mut m in [Box::new(residual_model(12)), Box::new(seed_model(12, 8, 4, 3).into_model())] {
        compile_adam(&mut m);
        let len = m.params().table().trainable_len();
        // Shards of 16 and 8 samples of one batch of 24.
        let shard = |lo: usize, hi: usize| (&x[lo * 144..hi * 144], &labels[lo..hi]);
        let (a, b) = (shard(0, 16), shard(16, 24));
        let (mut sa, mut sb) = (m.new_shard(), m.new_shard());
        let (mut ga, mut gb) = (vec![0.0; len], vec![0.0; len]);
        let m = &*m;
        let (la, lb) = std::thread::scope(|s| {
            let ta = s.spawn(|| m.compute_gradients(&mut sa, a, (0, 24), &mut ga).unwrap());
            let tb = s.spawn(|| m.compute_gradients(&mut sb, b, (16, 24), &mut gb).unwrap());
            (ta.join().unwrap(), tb.join().unwrap())
        });
        let mut seq = m.new_shard();
        let (mut ga2, mut gb2) = (vec![0.0; len], vec![0.0; len]);
        let la2 = m.compute_gradients(&mut seq, a, (0, 24), &mut ga2).unwrap();
        let lb2 = m.compute_gradients(&mut seq, b, (16, 24), &mut gb2).unwrap();
        assert_eq!((la.to_bits(), lb.to_bits()), (la2.to_bits(), lb2.to_bits()));
        assert!(ga == ga2 && gb == gb2, "concurrent shards differ from sequential ones");
        // And the shards' sum is the whole batch's gradient (to rounding: other sums).
        let mut whole = m.new_shard();
        let mut g = vec![0.0; len];
        let l = m.compute_gradients(&mut whole, (&x, &labels), (0, 24), &mut g).unwrap();
        assert!((l - (la + lb)).abs() < 1e-5 * l.abs());
        let scale = g.iter().fold(0f32, |s, v| s.max(v.abs()));
        for ((w, p), q) in g.iter().zip(&ga).zip(&gb) {
            assert!((w - (p + q)).abs() <= 1e-5 * scale, "{w} vs {p} + {q}");
        }
    }
}

/// Clips to a global norm and records what it saw.
struct Recorder {
    clip: f32,
    seen: Arc<Mutex<Vec<(u64, f64, usize)>>>,
}

impl GradientHook for Recorder {
    fn on_gradients(&mut self, step: u64, grads: &mut [f32], table: &ParamTable) -> ember_model::Result<()> {
        let norm = grads.iter().map(|&g| f64::from(g).powi(2)).sum::<f64>().sqrt();
        self.seen.lock().unwrap().push((step, norm, table.trainable_len()));
        let scale = (f64::from(self.clip) / norm.max(f64::from(self.clip))) as f32;
        grads.iter_mut().for_each(|g| *g *= scale);
        Ok(())
    }
}

#[test]
fn the_gradient_hook_clips_before_the_update() {
    // SGD without momentum: w1 = w0 - lr * clip(g). Computed by hand from the gradients
    // of the same batch and compared with what training did.
    let data = quadrant_task(8, 12, 6);
    let mut x = vec![0.0; 8 * 144];
    for i in 0..8 {
        x[i * 144..(i + 1) * 144].copy_from_slice(&data.sample(i).unwrap());
    }
    let mut m = seed_model(12, 4, 4, 2);
    m.compile(Sgd::new().learning_rate(0.5), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[Metric::Accuracy]).unwrap();
    m.loss_and_gradients(&x, data.labels().unwrap()).unwrap();
    let w0 = m.params().values().to_vec();
    let g = m.params().grads().to_vec();
    let norm = g.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
    let clip = (norm / 4.0) as f32;
    let seen = Arc::new(Mutex::new(Vec::new()));
    m.set_gradient_hook(Recorder { clip, seen: seen.clone() });
    m.train_on_batch(&x, data.labels().unwrap()).unwrap();
    let scale = (f64::from(clip) / norm) as f32;
    let trainable = m.params().table().trainable_len();
    for (i, (&w1, (&w, &gv))) in m.params().values()[..trainable].iter().zip(w0.iter().zip(&g)).enumerate() {
        let want = w - 0.5 * (gv * scale);
        assert_eq!(w1.to_bits(), want.to_bits(), "weight {i}: {w1} vs {want}");
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].0, seen[0].2), (1, trainable));
    assert!((seen[0].1 - norm).abs() <= 1e-12 * norm, "the hook saw norm {} vs {norm}", seen[0].1);
}

#[test]
fn fusion_is_chosen_per_layer() {
    use ember_model::layers::Fusion;
    let build = |first: Fusion, second: Fusion, model_fusion: bool| {
        let mut m = ember_model::Sequential::new();
        m.add(Conv2D::new(4, (3, 3)).activation(Activation::Relu).fusion(first).input_shape([14, 14, 1]))
            .add(MaxPooling2D::new((2, 2)))
            .add(Conv2D::new(4, (3, 3)).activation(Activation::Relu).fusion(second))
            .add(MaxPooling2D::new((2, 2)))
            .add(Flatten::new())
            .add(Dense::new(2));
        m.set_fusion(model_fusion);
        m.compile(Sgd::new(), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[]).unwrap();
        m.plan()
            .lines()
            .filter(|l| l.contains("fused"))
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(build(Fusion::Auto, Fusion::Auto, true), ["conv2d", "conv2d_1"]);
    assert_eq!(build(Fusion::Auto, Fusion::Auto, false), Vec::<String>::new());
    assert_eq!(build(Fusion::Off, Fusion::Auto, true), ["conv2d_1"]);
    assert_eq!(build(Fusion::Auto, Fusion::On, false), ["conv2d_1"]);
}

#[test]
fn padding_takes_keras_strings() {
    let shapes = |p: &str| {
        let mut m = ember_model::Sequential::new();
        m.add(Conv2D::new(3, (3, 3)).padding(p).input_shape([7, 7, 1]))
            .add(MaxPooling2D::new((2, 2)).padding(p))
            .add(Flatten::new())
            .add(Dense::new(2));
        m.build().unwrap();
        m.output_shapes()
    };
    assert_eq!(shapes("same")[..2], [vec![7, 7, 3], vec![4, 4, 3]]);
    assert_eq!(shapes("SAME")[..2], [vec![7, 7, 3], vec![4, 4, 3]]);
    assert_eq!(shapes("valid")[..2], [vec![5, 5, 3], vec![2, 2, 3]]);
}

/// Batch normalization folded into the convolution before it (inference plans) predicts
/// what the unfolded layers predict, within f32 rounding (1e-5 of the largest logit), on the
/// example's residual network in miniature with moving statistics away from 0 and 1; and
/// evaluate of such a model runs in parts (its batches no longer coupled).
#[test]
fn folded_batch_norm_predicts_as_the_layers_do() {
    use ember_model::layers::{
        Activation, ActivationLayer, Add, BatchNormalization, Conv2D, Dense, GlobalAveragePooling2D,
    };
    use ember_model::{Apply, Input, Model};
    let build = || {
        let conv = |f: usize, s: usize| Conv2D::new(f, (3, 3)).strides((s, s)).padding("same");
        let x = Input::new(&[10, 10, 2]);
        let h = ActivationLayer::new(Activation::Relu).apply(&BatchNormalization::new().apply(&conv(4, 1).apply(&x)));
        let r = BatchNormalization::new().apply(&conv(4, 1).use_bias(false).apply(&h));
        let h = ActivationLayer::new(Activation::Relu).apply(&Add::new().apply_to(&[&h, &r]));
        let h = BatchNormalization::new().apply(&conv(6, 2).apply(&h));
        let y = Dense::new(3).apply(&GlobalAveragePooling2D::new().apply(&h));
        let mut m = Model::new(&x, &y).unwrap();
        m.seed(4);
        m.build().unwrap();
        let mut rng = ember_model::rng::Rng::new(6);
        let names: Vec<String> = m.params().infos().iter().map(|i| i.name.clone()).collect();
        for name in names.iter().filter(|n| n.contains("moving") || n.contains("gamma") || n.contains("beta")) {
            let id = m.params().find(name).unwrap();
            let base = if name.contains("variance") || name.contains("gamma") { 1.0 } else { 0.0 };
            m.params_mut().value_mut(id).iter_mut().for_each(|v| *v = base + rng.uniform(0.0, 0.5));
        }
        m
    };
    let data = common::quadrant_task(37, 10, 1);
    let data = ember_model::data::Dataset::from_f32(
        data.labels()
            .unwrap()
            .iter()
            .enumerate()
            .flat_map(|(i, _)| {
                let s = data.sample(i).unwrap();
                s.iter().flat_map(|&v| [v, 1.0 - v]).collect::<Vec<_>>()
            })
            .collect(),
        vec![10, 10, 2],
        data.labels().unwrap().to_vec(),
    )
    .unwrap();
    let mut folded = build();
    let mut layers = build();
    layers.set_fusion(false);
    assert_eq!(folded.inference_plan().matches("folded").count(), 3, "{}", folded.inference_plan());
    assert!(!layers.inference_plan().contains("folded"));
    let a = folded.predict(&data, 16).unwrap();
    let b = layers.predict(&data, 16).unwrap();
    let scale = b.data().iter().fold(0f32, |m, v| m.max(v.abs()));
    for (x, y) in a.data().iter().zip(b.data()) {
        assert!((x - y).abs() <= 1e-5 * scale, "{x} vs {y}");
    }
}

/// Batch normalization followed by a ReLU runs as one op in training (the `bn_relu` rule):
/// the loss, every gradient, and every weight and moving statistic after two Adam steps are
/// the separate layers' exactly. A normalization whose value is also read elsewhere (here
/// by the residual `Add`) stays a layer of its own.
#[test]
fn batch_norm_relu_fusion_matches_the_separate_layers() {
    use ember_model::layers::{ActivationLayer, BatchNormalization, GlobalAveragePooling2D};
    let build = || {
        let conv = |f: usize| Conv2D::new(f, (3, 3)).padding("same").use_bias(false);
        let relu = |x: &ember_model::Node| ActivationLayer::new(Activation::Relu).apply(x);
        let x = Input::new(&[8, 8, 2]);
        let h = relu(&BatchNormalization::new().apply(&conv(4).apply(&x)));
        let r = relu(&BatchNormalization::new().apply(&conv(4).apply(&h)));
        // Read by the Add and by the ReLU: not fusable.
        let b = BatchNormalization::new().apply(&conv(4).apply(&r));
        let h = Add::new().apply_to(&[&relu(&b), &b]);
        let y = Dense::new(3).apply(&GlobalAveragePooling2D::new().apply(&h));
        let mut m = Model::new(&x, &y).unwrap();
        m.seed(5);
        m
    };
    let data = quadrant_task(12, 8, 4);
    let x: Vec<f32> = (0..12)
        .flat_map(|i| data.sample(i).unwrap().iter().flat_map(|&v| [v, v * v - 0.5]).collect::<Vec<_>>())
        .collect();
    let labels: Vec<u32> = data.labels().unwrap().iter().map(|l| l % 3).collect();
    fused_and_separate_agree(build, (&x, &labels), ("fused batch norm+relu", 2));
}

/// Trains `build()`'s model fused and unfused (Adam, logits loss): the fused plan has
/// `count` ops described by `marker`, the unfused none; the loss, every gradient, and the
/// weights and state after two steps are equal.
fn fused_and_separate_agree(build: impl Fn() -> Model, (x, labels): (&[f32], &[u32]), (marker, count): (&str, usize)) {
    let mut runs = Vec::new();
    for fuse in [true, false] {
        let mut m = build();
        m.set_fusion(fuse);
        m.compile(ember_model::optimizers::Adam::new(), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[])
            .unwrap();
        assert_eq!(m.plan().matches(marker).count(), if fuse { count } else { 0 }, "{}", m.plan());
        let loss = m.loss_and_gradients(x, labels).unwrap();
        let grads = common::grads(&m);
        for _ in 0..2 {
            m.train_on_batch(x, labels).unwrap();
        }
        runs.push((loss, grads, common::weights(&m)));
    }
    assert!(runs[0] == runs[1], "{marker}: the fused and separate layers differ");
}

/// `Add` followed by a ReLU runs as one op in training (the `add_relu` rule), for two and
/// three inputs: loss, gradients, and weights after two Adam steps are the separate
/// layers' exactly.
#[test]
fn add_relu_fusion_matches_the_separate_layers() {
    use ember_model::layers::{ActivationLayer, GlobalAveragePooling2D};
    let build = || {
        let conv = |f: usize| Conv2D::new(f, (3, 3)).padding("same");
        let relu = |x: &ember_model::Node| ActivationLayer::new(Activation::Relu).apply(x);
        let x = Input::new(&[6, 6, 2]);
        let h = conv(4).apply(&x);
        let r = conv(4).apply(&relu(&conv(4).apply(&h)));
        let h = relu(&Add::new().apply_to(&[&h, &r]));
        let s = conv(4).apply(&h);
        let h = relu(&Add::new().apply_to(&[&s, &h, &conv(4).apply(&s)]));
        let y = Dense::new(3).apply(&GlobalAveragePooling2D::new().apply(&h));
        let mut m = Model::new(&x, &y).unwrap();
        m.seed(8);
        m
    };
    let data = quadrant_task(10, 6, 5);
    let x: Vec<f32> =
        (0..10).flat_map(|i| data.sample(i).unwrap().iter().flat_map(|&v| [v, 0.5 - v]).collect::<Vec<_>>()).collect();
    let labels: Vec<u32> = data.labels().unwrap().iter().map(|l| l % 3).collect();
    fused_and_separate_agree(build, (&x, &labels), ("fused add+relu", 2));
}

/// Batch normalizations that only feed an `Add` followed by a ReLU run inside it (the
/// `bn_add_relu` rule): a normalized input first or second beside a plain one (the
/// identity join), with two plain ones, both normalized (the projection join), one without
/// γ and β. The loss,
/// every gradient, and every weight and moving statistic after two Adam steps are the
/// separate layers' exactly; the normalizations' moving statistics do move.
#[test]
fn batch_norm_add_relu_fusion_matches_the_separate_layers() {
    use ember_model::layers::{ActivationLayer, BatchNormalization, GlobalAveragePooling2D};
    let build = || {
        let conv = |f: usize, s: usize| Conv2D::new(f, (3, 3)).strides((s, s)).padding("same").use_bias(false);
        let bn = |x: &ember_model::Node| BatchNormalization::new().apply(x);
        let relu = |x: &ember_model::Node| ActivationLayer::new(Activation::Relu).apply(x);
        let x = Input::new(&[8, 8, 2]);
        let h = relu(&bn(&conv(4, 1).apply(&x)));
        let r = bn(&conv(4, 1).apply(&relu(&bn(&conv(4, 1).apply(&h)))));
        let h = relu(&Add::new().apply_to(&[&h, &r]));
        let r = BatchNormalization::new().center(false).scale(false).apply(&conv(4, 1).apply(&h));
        let h = relu(&Add::new().apply_to(&[&r, &h, &conv(4, 1).apply(&h)]));
        let r = bn(&conv(6, 1).apply(&relu(&bn(&conv(6, 2).apply(&h)))));
        let h = relu(&Add::new().apply_to(&[&r, &bn(&Conv2D::new(6, (1, 1)).strides((2, 2)).apply(&h))]));
        let y = Dense::new(3).apply(&GlobalAveragePooling2D::new().apply(&h));
        let mut m = Model::new(&x, &y).unwrap();
        m.seed(9);
        m
    };
    let data = quadrant_task(12, 8, 6);
    let x: Vec<f32> = (0..12)
        .flat_map(|i| data.sample(i).unwrap().iter().flat_map(|&v| [v, 0.3 - v * v]).collect::<Vec<_>>())
        .collect();
    let labels: Vec<u32> = data.labels().unwrap().iter().map(|l| l % 3).collect();
    fused_and_separate_agree(build, (&x, &labels), ("fused batch norm+add+relu", 3));
    // The moving statistics are updated through the fused op.
    let mut m = build();
    m.compile(ember_model::optimizers::Adam::new(), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[])
        .unwrap();
    let mean = |m: &Model, name: &str| {
        let id = m.params().find(&format!("{name}/moving_mean")).expect("a normalization");
        m.params().value(id).to_vec()
    };
    let names = ["batch_normalization_2", "batch_normalization_3", "batch_normalization_5", "batch_normalization_6"];
    let before: Vec<Vec<f32>> = names.iter().map(|n| mean(&m, n)).collect();
    m.train_on_batch(&x, &labels).unwrap();
    for (n, b) in names.iter().zip(&before) {
        assert!(mean(&m, n) != *b, "{n}: moving mean unchanged by a fused step");
    }
}

/// Does nothing; with it set, a step sums the shards' gradients before the hook and the
/// optimizer, where without a hook Adam sums them inside its step.
struct Noop;

impl GradientHook for Noop {
    fn on_gradients(&mut self, _: u64, _: &mut [f32], _: &ParamTable) -> ember_model::Result<()> {
        Ok(())
    }
}

#[test]
fn optimizers_summing_the_shards_in_their_step_change_no_bit() {
    // 40 samples: three shards of a part each (more with batch normalization, whose
    // shards run coupled in parts of `COUPLED_PART`); one and two threads; each optimizer that
    // sums the shards' gradients in its own step (Adam, AdamW, RMSprop, Adagrad, SGD with and
    // without momentum) against the sum
    // made first, which a gradient hook asks for.
    let data = quadrant_task(40, 12, 5);
    let x: Vec<f32> = (0..40).flat_map(|i| data.sample(i).unwrap()).collect();
    let labels = data.labels().unwrap();
    let normalized = || {
        let x = Input::new(&[12, 12, 1]);
        let h = BatchNormalization::new().apply(&Conv2D::new(4, (3, 3)).apply(&x));
        let h = ActivationLayer::new(Activation::Relu).apply(&h);
        let y = Dense::new(4).activation(Activation::Softmax).apply(&Flatten::new().apply(&h));
        Model::new(&x, &y).unwrap()
    };
    for (name, build) in
        [("seed", &(|| seed_model(12, 4, 4, 2).into_model()) as &dyn Fn() -> Model), ("bn", &normalized)]
    {
        for (threads, optimizer) in [
            (1, "adam"),
            (2, "adam"),
            (1, "rmsprop"),
            (2, "rmsprop"),
            (2, "adagrad"),
            (2, "adamw"),
            (2, "sgd"),
            (1, "momentum"),
            (2, "nesterov"),
        ] {
            let train = |hook: bool| {
                let mut m = build();
                m.seed(9).set_threads(threads).unwrap();
                let o: Box<dyn Optimizer> = match optimizer {
                    "adam" => Box::new(Adam::new()),
                    "rmsprop" => Box::new(RmsProp::new()),
                    "adamw" => Box::new(AdamW::new().weight_decay(0.05)),
                    "sgd" => Box::new(Sgd::new()),
                    "momentum" => Box::new(Sgd::new().momentum(0.9)),
                    "nesterov" => Box::new(Sgd::new().momentum(0.9).nesterov(true)),
                    _ => Box::new(Adagrad::new().learning_rate(0.05)),
                };
                m.compile(o, Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[Metric::Accuracy]).unwrap();
                if hook {
                    m.set_gradient_hook(Noop);
                }
                for _ in 0..3 {
                    m.train_on_batch(&x, labels).unwrap();
                }
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
                (bits(m.params().values()), bits(m.params().grads()))
            };
            let (summed_first, summed_in_step) = (train(true), train(false));
            let what = format!("{name}, {optimizer}, {threads} threads");
            assert!(summed_first.0 == summed_in_step.0, "{what}: weights differ");
            assert!(summed_first.1 == summed_in_step.1, "{what}: the gradient arena differs");
        }
    }
}

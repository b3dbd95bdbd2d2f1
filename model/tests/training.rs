//! Training behaviour: fused and unfused steps agree, thread counts give identical weights,
//! one step equals Keras's formulas written out by hand, a small CNN learns, checkpoints
//! resume exactly, bad input is a typed error.

mod common;

use common::{compile_adam, quadrant_task, seed_model, weights};
use ember_model::data::Dataset;
use ember_model::layers::{Activation, Conv2D, Dense, Flatten, MaxPooling2D};
use ember_model::losses::{Loss, Metric};
use ember_model::optimizers::{Adam, Sgd};
use ember_model::{Error, FitOptions, Sequential};

fn opts(epochs: usize, batch_size: usize) -> FitOptions {
    FitOptions { epochs, batch_size, ..FitOptions::default() }
}

#[test]
fn fused_and_unfused_steps_agree() {
    let data = quadrant_task(40, 12, 1);
    let mut x = vec![0.0; 8 * 144];
    for i in 0..8 {
        x[i * 144..(i + 1) * 144].copy_from_slice(&data.sample(i).unwrap());
    }
    let labels = &data.labels().unwrap()[..8];
    let mut out = Vec::new();
    for fuse in [true, false] {
        let mut m = seed_model(12, 8, 4, 3);
        m.set_fusion(fuse);
        compile_adam(&mut m);
        assert_eq!(m.plan().contains("fused"), fuse);
        let loss = m.loss_and_gradients(&x, labels).unwrap();
        out.push((loss, common::grads(&m)));
    }
    let ((l1, g1), (l2, g2)) = (&out[0], &out[1]);
    assert!((l1 - l2).abs() <= 1e-6 * l1.abs().max(1.0), "loss {l1} vs {l2}");
    for (a, b) in g1.iter().zip(g2) {
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        for (u, v) in a.iter().zip(b) {
            // Different summation orders: agreement to a few ulps of the largest entry.
            assert!((u - v).abs() <= 1e-5 * scale, "gradient {u} vs {v} (scale {scale})");
        }
    }
}

#[test]
fn one_and_two_threads_give_identical_weights() {
    let data = quadrant_task(100, 12, 2);
    let mut results = Vec::new();
    for threads in [1, 2, 3] {
        let mut m = seed_model(12, 8, 4, 7);
        m.set_threads(threads).unwrap();
        compile_adam(&mut m);
        m.fit(&data, None, &opts(2, 16), &mut ()).unwrap();
        results.push(weights(&m));
    }
    assert!(results[0] == results[1] && results[0] == results[2], "weights depend on the thread count");
}

#[test]
fn one_step_is_the_keras_update_written_out() {
    // Flatten -> Dense(3, softmax) on two 2x2 samples, Adam, one step of batch 2.
    let x = vec![0.5f32, -1.0, 0.25, 2.0, 1.5, 0.0, -0.5, 1.0];
    let labels = vec![2u32, 0];
    let mut m = Sequential::new();
    m.input(&[2, 2, 1]).add(Flatten::new()).add(Dense::new(3).activation(Activation::Softmax));
    m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[Metric::Accuracy]).unwrap();
    let w0: Vec<f32> = (0..12).map(|i| (i as f32 - 5.5) / 10.0).collect();
    let b0 = vec![0.1f32, -0.2, 0.05];
    let (k_id, b_id) = (m.params().find("dense/kernel").unwrap(), m.params().find("dense/bias").unwrap());
    m.params_mut().set_from_keras(k_id, &w0).unwrap();
    m.params_mut().set_from_keras(b_id, &b0).unwrap();
    let data = Dataset::from_f32(x.clone(), vec![2, 2, 1], labels.clone()).unwrap();
    m.fit(&data, None, &FitOptions { epochs: 1, batch_size: 2, shuffle: false, ..FitOptions::default() }, &mut ())
        .unwrap();

    // By hand: logits, softmax, dL/dlogits = (p - onehot) / n, dW = xᵀ g, db = Σ g, then
    // Adam at t = 1 from zero moments: m = (1-β1) g, v = (1-β2) g²,
    // α = lr √(1-β2)/(1-β1), w -= α m / (√v + ε).
    let (n, i_n, o_n) = (2usize, 4usize, 3usize);
    let mut g = vec![0f64; n * o_n];
    for s in 0..n {
        let z: Vec<f64> = (0..o_n)
            .map(|o| {
                f64::from(b0[o]) + (0..i_n).map(|i| f64::from(x[s * i_n + i]) * f64::from(w0[i * o_n + o])).sum::<f64>()
            })
            .collect();
        let mx = z.iter().cloned().fold(f64::MIN, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - mx).exp()).collect();
        let sum: f64 = e.iter().sum();
        for o in 0..o_n {
            g[s * o_n + o] = (e[o] / sum - if o == labels[s] as usize { 1.0 } else { 0.0 }) / n as f64;
        }
    }
    let (b1, b2, lr, eps) = (0.9f64, 0.999f64, 1e-3f64, 1e-7f64);
    let alpha = lr * (1.0 - b2).sqrt() / (1.0 - b1);
    let adam =
        |w: f32, grad: f64| f64::from(w) - alpha * ((1.0 - b1) * grad) / (((1.0 - b2) * grad * grad).sqrt() + eps);
    let kernel = m.params().to_keras(k_id);
    let bias = m.params().value(b_id);
    for i in 0..i_n {
        for o in 0..o_n {
            let dw: f64 = (0..n).map(|s| f64::from(x[s * i_n + i]) * g[s * o_n + o]).sum();
            let want = adam(w0[i * o_n + o], dw);
            let got = f64::from(kernel[i * o_n + o]);
            assert!((got - want).abs() < 2e-7, "kernel[{i}][{o}]: {got} vs {want}");
        }
    }
    for o in 0..o_n {
        let db: f64 = (0..n).map(|s| g[s * o_n + o]).sum();
        let want = adam(b0[o], db);
        assert!((f64::from(bias[o]) - want).abs() < 2e-7, "bias[{o}]: {} vs {want}", bias[o]);
    }
}

#[test]
fn sgd_momentum_and_nesterov_follow_keras() {
    // One parameter, constant gradient: w1 = w0 - lr g; then velocity accumulates.
    for nesterov in [false, true] {
        let mut m = Sequential::new();
        m.input(&[1]).add(Dense::new(2).use_bias(false));
        m.compile(
            Sgd::new().learning_rate(0.1).momentum(0.9).nesterov(nesterov),
            Loss::SparseCategoricalCrossentropy { from_logits: true },
            &[],
        )
        .unwrap();
        let k = m.params().find("dense/kernel").unwrap();
        m.params_mut().value_mut(k).copy_from_slice(&[0.0, 0.0]);
        let (mut w, mut v) = (0f32, 0f32);
        for _ in 0..3 {
            m.train_on_batch(&[1.0], &[0]).unwrap();
            // logits equal (w, -w) ... the gradient of the label-0 weight is p0 - 1.
            let p0 = 1.0 / (1.0 + (-2.0 * w).exp());
            let g = p0 - 1.0;
            v = 0.9 * v - 0.1 * g;
            w += if nesterov { 0.9 * v - 0.1 * g } else { v };
            let got = m.params().value(k)[0];
            assert!((got - w).abs() < 1e-6, "nesterov {nesterov}: {got} vs {w}");
        }
    }
}

#[test]
fn a_small_cnn_learns_a_synthetic_task() {
    let train = quadrant_task(2000, 16, 3);
    let test = quadrant_task(400, 16, 4);
    let mut m = seed_model(16, 8, 4, 5);
    compile_adam(&mut m);
    let h = m.fit(&train, Some(&test), &opts(3, 32), &mut ()).unwrap();
    assert_eq!(h.epochs.len(), 3);
    assert!(h.epochs[2].loss < h.epochs[0].loss);
    let e = m.evaluate(&test, 64).unwrap();
    assert!(e.accuracy >= 0.95, "test accuracy {}", e.accuracy);
    assert_eq!(h.epochs[2].val_accuracy, Some(e.accuracy));
    assert!(h.epochs.iter().all(|e| e.val_seconds.is_some_and(|s| s > 0.0) && e.seconds > 0.0), "{h:?}");
    let p = m.predict(&test, 50).unwrap();
    assert_eq!(p.shape(), &[400, 4]);
    for row in p.data().chunks(4) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
    let acc =
        p.argmax_rows().iter().zip(test.labels().unwrap()).filter(|(a, &b)| **a == b as usize).count() as f32 / 400.0;
    assert_eq!(acc, e.accuracy);
    let h = m.fit(&train, None, &opts(1, 32), &mut ()).unwrap();
    assert_eq!(h.epochs[0].val_seconds, None);
}

#[test]
fn resuming_from_a_checkpoint_gives_the_uninterrupted_weights() {
    let dir = std::env::temp_dir().join(format!("ember-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = quadrant_task(120, 12, 6);
    let ckpt = dir.join("run.safetensors");
    // Uninterrupted: 3 epochs, checkpoint after each.
    let mut a = seed_model(12, 8, 4, 9);
    compile_adam(&mut a);
    let o = FitOptions { checkpoint: Some(ckpt.clone()), ..opts(3, 16) };
    a.fit(&data, None, &FitOptions { epochs: 2, ..o.clone() }, &mut ()).unwrap();
    let after_two = std::fs::read(&ckpt).unwrap();
    a.fit(&data, None, &FitOptions { initial_epoch: 2, ..o.clone() }, &mut ()).unwrap();
    // Resumed: a fresh model (other seed: everything must come from the checkpoint).
    std::fs::write(&ckpt, &after_two).unwrap();
    let mut b = seed_model(12, 8, 4, 1234);
    compile_adam(&mut b);
    b.load_checkpoint(&ckpt).unwrap();
    assert_eq!(b.epochs_done(), 2);
    let initial_epoch = b.epochs_done();
    b.fit(&data, None, &FitOptions { initial_epoch, ..o }, &mut ()).unwrap();
    assert!(weights(&a) == weights(&b), "resumed weights differ");
    // Weights files round-trip.
    let wpath = dir.join("w.safetensors");
    a.save_weights(&wpath).unwrap();
    let mut c = seed_model(12, 8, 4, 77);
    compile_adam(&mut c);
    c.load_weights(&wpath).unwrap();
    assert!(weights(&a) == weights(&c));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failed_checkpoint_write_leaves_the_previous_one() {
    let dir = std::env::temp_dir().join(format!("ember-fail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ck.safetensors");
    let mut m = seed_model(12, 4, 4, 1);
    compile_adam(&mut m);
    m.save_checkpoint(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    let k = m.params().find("conv2d/kernel").unwrap();
    m.params_mut().value_mut(k)[0] += 1.0;
    // The temporary file's name is taken by a directory: the write fails midway.
    let tmp = dir.join(format!(".ck.safetensors.tmp-{}", std::process::id()));
    std::fs::create_dir_all(tmp.join("x")).unwrap();
    assert!(matches!(m.save_checkpoint(&path), Err(Error::Io { .. })));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn summary_counts_the_reference_parameters() {
    let mut m = seed_model(28, 32, 10, 0);
    compile_adam(&mut m);
    let s = m.summary();
    assert!(s.contains("conv2d (Conv2D)") && s.contains("(None, 26, 26, 32)") && s.contains("320"), "{s}");
    assert!(s.contains("(None, 13, 13, 32)") && s.contains("(None, 5408)") && s.contains("54,090"), "{s}");
    assert!(s.contains("Total params: 54,410 (212.54 KB)"), "{s}");
}

#[test]
fn bad_configurations_and_data_are_typed_errors() {
    // A layer that does not fit its input names the layer and the shape.
    let mut m = Sequential::new();
    m.add(Conv2D::new(4, (5, 5)).input_shape([3, 3, 1])).add(Flatten::new()).add(Dense::new(2));
    let e = m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[]).unwrap_err();
    assert!(
        matches!(&e, Error::LayerShape { layer, input, .. } if layer == "conv2d" && input == &vec![3, 3, 1]),
        "{e}"
    );
    // Dense on images.
    let mut m = Sequential::new();
    m.add(Conv2D::new(4, (3, 3)).input_shape([6, 6, 1])).add(Dense::new(2));
    assert!(matches!(
        m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[]),
        Err(Error::LayerShape { .. })
    ));
    // No input shape.
    let mut m = Sequential::new();
    m.add(Dense::new(2));
    assert!(matches!(m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[]), Err(Error::Config(_))));
    // Not compiled.
    let mut m = seed_model(8, 2, 3, 0);
    let d = quadrant_task(4, 8, 1);
    assert!(matches!(m.fit(&d, None, &opts(1, 2), &mut ()), Err(Error::NotCompiled)));
    compile_adam(&mut m);
    // Labels out of range (4 classes of data, 3 outputs).
    let d = Dataset::from_f32(vec![0.0; 2 * 64], vec![8, 8, 1], vec![0, 3]).unwrap();
    assert!(matches!(m.fit(&d, None, &opts(1, 2), &mut ()), Err(Error::Data(_))));
    // Batch size 0, bad split, wrong sample shape.
    let d = Dataset::from_f32(vec![0.0; 2 * 64], vec![8, 8, 1], vec![0, 1]).unwrap();
    assert!(matches!(m.fit(&d, None, &opts(1, 0), &mut ()), Err(Error::Config(_))));
    assert!(matches!(
        m.fit(&d, None, &FitOptions { validation_split: 1.5, ..opts(1, 2) }, &mut ()),
        Err(Error::Config(_))
    ));
    let d2 = Dataset::from_f32(vec![0.0; 2 * 49], vec![7, 7, 1], vec![0, 1]).unwrap();
    assert!(matches!(m.fit(&d2, None, &opts(1, 2), &mut ()), Err(Error::Data(_))));
    assert!(matches!(m.train_on_batch(&[0.0; 10], &[0]), Err(Error::Data(_))));
    // x and y of different lengths.
    assert!(matches!(Dataset::from_f32(vec![0.0; 64], vec![8, 8, 1], vec![0, 1]), Err(Error::Data(_))));
}

#[test]
fn a_non_finite_loss_stops_training_with_its_epoch_and_step() {
    // A learning rate of 1e38: the first step's loss is finite, the update sends the weights
    // to ±1e38 and the second step's logits overflow.
    let d = quadrant_task(8, 8, 2);
    let o = FitOptions { shuffle: false, ..opts(2, 2) };
    let run = |o: &FitOptions| {
        let mut m = seed_model(8, 2, 4, 0);
        m.compile(Adam::new().learning_rate(1e38), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[]).unwrap();
        m.fit(&d, None, o, &mut ())
    };
    match run(&o) {
        Err(Error::NonFiniteLoss { epoch: 1, step: 2, loss }) => assert!(!loss.is_finite()),
        other => panic!("expected NonFiniteLoss at epoch 1 step 2, got {other:?}"),
    }
    // Configured to continue, it finishes both epochs.
    let h = run(&FitOptions { stop_on_non_finite: false, ..o }).unwrap();
    assert_eq!(h.epochs.len(), 2);
}

#[test]
fn validation_split_holds_out_the_last_samples() {
    let data = quadrant_task(50, 8, 8);
    let mut m = seed_model(8, 2, 4, 0);
    compile_adam(&mut m);
    let h = m.fit(&data, None, &FitOptions { validation_split: 0.2, ..opts(1, 8) }, &mut ()).unwrap();
    assert_eq!(h.epochs[0].samples, 40);
    let e = m.evaluate(&data.slice(40..50).unwrap(), 8).unwrap();
    assert_eq!(h.epochs[0].val_loss, Some(e.loss));
    let _ = MaxPooling2D::new((2, 2));
}

#[test]
fn every_optimizer_resumes_from_a_checkpoint_exactly() {
    use ember_model::optimizers::{Adagrad, AdamW, Optimizer, RmsProp};
    let make = |k: usize| -> Box<dyn Optimizer> {
        match k {
            0 => Box::new(RmsProp::new()),
            1 => Box::new(Adagrad::new().learning_rate(0.05)),
            2 => Box::new(AdamW::new()),
            _ => Box::new(Sgd::new().momentum(0.9)),
        }
    };
    let compile = |m: &mut Sequential, k: usize| {
        let opt = make(k);
        let name = opt.name();
        m.compile(opt, Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[]).unwrap();
        name
    };
    let data = quadrant_task(64, 12, 6);
    let dir = std::env::temp_dir().join(format!("ember-opt-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for k in 0..4 {
        let ckpt = dir.join(format!("{k}.safetensors"));
        let o = FitOptions { checkpoint: Some(ckpt.clone()), ..opts(2, 16) };
        let mut a = seed_model(12, 4, 4, 9);
        compile(&mut a, k);
        a.fit(&data, None, &FitOptions { epochs: 1, ..o.clone() }, &mut ()).unwrap();
        let after_one = std::fs::read(&ckpt).unwrap();
        a.fit(&data, None, &FitOptions { initial_epoch: 1, ..o.clone() }, &mut ()).unwrap();
        std::fs::write(&ckpt, &after_one).unwrap();
        let mut b = seed_model(12, 4, 4, 5);
        let name = compile(&mut b, k);
        b.load_checkpoint(&ckpt).unwrap();
        b.fit(&data, None, &FitOptions { initial_epoch: 1, ..o }, &mut ()).unwrap();
        assert!(weights(&a) == weights(&b), "{name}: resumed weights differ");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_binary_classifier_learns_with_sigmoid_and_binary_cross_entropy() {
    // Is the blob in the top half? One sigmoid output, binary cross-entropy (fused with the
    // sigmoid into the logits, as Keras does), accuracy at 0.5.
    let binary = |d: Dataset| {
        let labels = d.labels().unwrap().iter().map(|&c| u32::from(c >= 2)).collect();
        let x: Vec<f32> = (0..d.len()).flat_map(|i| d.sample(i).unwrap()).collect();
        Dataset::from_f32(x, d.sample_shape().to_vec(), labels).unwrap()
    };
    let (train, test) = (binary(quadrant_task(800, 12, 7)), binary(quadrant_task(200, 12, 8)));
    let mut m = Sequential::new();
    m.seed(2);
    m.add(Conv2D::new(4, (3, 3)).activation(Activation::Relu).input_shape([12, 12, 1]))
        .add(MaxPooling2D::new((2, 2)))
        .add(Flatten::new())
        .add(Dense::new(1).activation(Activation::Sigmoid));
    m.compile(Adam::new().learning_rate(3e-3), Loss::BINARY_CROSSENTROPY, &[Metric::Accuracy]).unwrap();
    m.fit(&train, None, &opts(4, 16), &mut ()).unwrap();
    let e = m.evaluate(&test, 50).unwrap();
    assert!(e.accuracy > 0.9, "{e:?}");
    let p = m.predict(&test, 50).unwrap();
    assert!(p.data().iter().all(|&v| (0.0..=1.0).contains(&v)), "predictions are probabilities");
}

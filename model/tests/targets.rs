//! Dense targets through the whole trainer: one-hot rows train exactly as the labels they
//! encode (categorical cross-entropy builds the same one-hot rows from labels), soft targets
//! and multi-label targets give the loss and accuracy computed by hand from the model's own
//! predictions, on fit, evaluate and train_on_batch, at any thread count.

mod common;

use ember_model::data::Dataset;
use ember_model::layers::{Activation, Dense, Flatten};
use ember_model::losses::{Loss, Metric};
use ember_model::optimizers::Adam;
use ember_model::{to_categorical, FitOptions, Sequential, Targets};

fn opts() -> FitOptions {
    FitOptions { epochs: 2, batch_size: 16, validation_split: 0.25, ..FitOptions::default() }
}

#[test]
fn one_hot_targets_train_bit_identically_to_labels() {
    let data = common::quadrant_task(96, 10, 7);
    let one_hot = data.clone().with_targets(to_categorical(data.labels().unwrap(), 4).unwrap(), 4).unwrap();
    assert_eq!(one_hot.labels(), None);
    let run = |d: &Dataset, threads: usize| {
        let mut m = common::seed_model(10, 3, 4, 5);
        m.set_threads(threads).unwrap();
        m.compile(
            Adam::new(),
            Loss::CATEGORICAL_CROSSENTROPY,
            &[Metric::Accuracy, Metric::SparseTopKCategoricalAccuracy { k: 2 }],
        )
        .unwrap();
        let h = m.fit(d, None, &opts(), &mut ()).unwrap();
        (common::weights(&m), h)
    };
    let (w_labels, h_labels) = run(&data, 1);
    for threads in [1, 2] {
        let (w, h) = run(&one_hot, threads);
        assert_eq!(w, w_labels, "{threads} threads");
        assert_eq!(h.epochs.len(), h_labels.epochs.len());
        for (a, b) in h.epochs.iter().zip(&h_labels.epochs) {
            assert_eq!(
                (a.loss, a.accuracy, a.val_loss, a.val_accuracy),
                (b.loss, b.accuracy, b.val_loss, b.val_accuracy)
            );
            assert_eq!(a.top_k_accuracy, b.top_k_accuracy);
        }
    }
}

/// Categorical cross-entropy of probabilities as Keras computes it, in f64.
fn cce(p: &[f32], t: &[f32]) -> f64 {
    let s: f64 = p.iter().map(|&v| f64::from(v)).sum();
    -p.iter().zip(t).map(|(&p, &t)| f64::from(t) * (f64::from(p) / s).clamp(1e-7, 1.0 - 1e-7).ln()).sum::<f64>()
}

fn argmax(r: &[f32]) -> usize {
    r.iter().enumerate().fold(0, |b, (i, &v)| if v > r[b] { i } else { b })
}

#[test]
fn soft_targets_loss_and_accuracy_by_hand() {
    let data = common::quadrant_task(40, 10, 9);
    // Soft targets whose largest entry is not always the label, so that the accuracy
    // compares against the targets' argmax, not the hidden labels.
    let mut rng = ember_model::rng::Rng::new(3);
    let soft: Vec<f32> = (0..40)
        .flat_map(|_| {
            let raw: Vec<f32> = (0..4).map(|_| rng.next_f32() + 0.05).collect();
            let s: f32 = raw.iter().sum();
            raw.into_iter().map(move |v| v / s)
        })
        .collect();
    let d = data.clone().with_targets(soft.clone(), 4).unwrap();
    let mut m = common::seed_model(10, 3, 4, 2);
    m.compile(Adam::new(), Loss::CATEGORICAL_CROSSENTROPY, &[Metric::Accuracy]).unwrap();
    m.fit(&d, None, &FitOptions { epochs: 1, batch_size: 8, ..FitOptions::default() }, &mut ()).unwrap();
    let p = m.predict(&d, 16).unwrap();
    let rows = p.data().chunks_exact(4).zip(soft.chunks_exact(4));
    let loss = rows.clone().map(|(p, t)| cce(p, t)).sum::<f64>() / 40.0;
    let correct = rows.filter(|(p, t)| argmax(p) == argmax(t)).count();
    let e = m.evaluate(&d, 16).unwrap();
    assert!((f64::from(e.loss) - loss).abs() <= 1e-5 * loss, "{} vs {loss}", e.loss);
    assert_eq!(e.accuracy, correct as f32 / 40.0);
    // The same through train_on_batch's (pre-update) report.
    let x: Vec<f32> = (0..40).flat_map(|i| d.sample(i).unwrap()).collect();
    let r = m.train_on_batch(&x, Targets::dense(&soft, 4).unwrap()).unwrap();
    assert!((f64::from(r.loss) - loss).abs() <= 1e-5 * loss, "{} vs {loss}", r.loss);
    assert_eq!(r.accuracy, correct as f32 / 40.0);
}

#[test]
fn multi_label_binary_accuracy_is_per_output() {
    // Four outputs, each "is the blob in quadrant q or its right neighbour" (two labels on).
    let data = common::quadrant_task(64, 10, 4);
    let targets: Vec<f32> = data
        .labels()
        .unwrap()
        .iter()
        .flat_map(|&c| (0..4u32).map(move |q| f32::from(u8::from(q == c || q == (c + 1) % 4))))
        .collect();
    let d = data.with_targets(targets.clone(), 4).unwrap();
    let mut m = Sequential::new();
    m.seed(1);
    m.input(&[10, 10, 1]).add(Flatten::new()).add(Dense::new(4).activation(Activation::Sigmoid));
    m.compile(Adam::new().learning_rate(0.01), Loss::BINARY_CROSSENTROPY, &[Metric::Accuracy]).unwrap();
    let h = m.fit(&d, None, &FitOptions { epochs: 3, batch_size: 16, ..FitOptions::default() }, &mut ()).unwrap();
    assert!(h.epochs[2].loss < h.epochs[0].loss, "{:?}", h.epochs);
    let p = m.predict(&d, 64).unwrap();
    let right = p.data().iter().zip(&targets).filter(|(&p, &t)| (p > 0.5) == (t > 0.5)).count();
    let e = m.evaluate(&d, 64).unwrap();
    assert_eq!(e.accuracy, right as f32 / 256.0);
    let loss = p
        .data()
        .iter()
        .zip(&targets)
        .map(|(&p, &t)| {
            let p = f64::from(p).clamp(1e-7, 1.0 - 1e-7);
            -(f64::from(t) * p.ln() + (1.0 - f64::from(t)) * (1.0 - p).ln())
        })
        .sum::<f64>()
        / 256.0;
    assert!((f64::from(e.loss) - loss).abs() <= 1e-5 * loss, "{} vs {loss}", e.loss);
}

#[test]
fn regression_targets_with_mean_squared_error() {
    // y = (mean of the image, its top-left pixel): a linear model can fit both.
    let data = common::quadrant_task(64, 6, 2);
    let targets: Vec<f32> = (0..64)
        .flat_map(|i| {
            let x = data.sample(i).unwrap();
            [x.iter().sum::<f32>() / 36.0, x[0]]
        })
        .collect();
    let d = data.with_targets(targets.clone(), 2).unwrap();
    let mut m = Sequential::new();
    m.seed(1);
    m.input(&[6, 6, 1]).add(Flatten::new()).add(Dense::new(2));
    m.compile(Adam::new().learning_rate(0.01), Loss::MeanSquaredError, &[]).unwrap();
    let h = m.fit(&d, None, &FitOptions { epochs: 20, batch_size: 16, ..FitOptions::default() }, &mut ()).unwrap();
    assert!(h.epochs[19].loss < 0.2 * h.epochs[0].loss, "{:?} -> {:?}", h.epochs[0].loss, h.epochs[19].loss);
    let p = m.predict(&d, 64).unwrap();
    let mse = p.data().iter().zip(&targets).map(|(&p, &t)| f64::from(p - t).powi(2)).sum::<f64>() / 128.0;
    let e = m.evaluate(&d, 64).unwrap();
    assert!((f64::from(e.loss) - mse).abs() <= 1e-5 * mse, "{} vs {mse}", e.loss);
}

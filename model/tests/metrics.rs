//! Top-k accuracy: `in_top_k` by hand (ties at the boundary count as in, as
//! `tf.math.in_top_k` does), and `SparseTopKCategoricalAccuracy` through evaluate, fit's
//! logs and the CSV logger, against the model's own predictions.

mod common;

use ember_model::losses::{in_top_k, Loss, Metric};
use ember_model::optimizers::Adam;
use ember_model::{CsvLogger, FitOptions};

#[test]
fn in_top_k_by_hand() {
    let out = [
        0.1,
        0.5,
        0.3,
        0.1, // label 2: one larger (0.5) -> in the top 2, not the top 1
        0.4,
        0.4,
        0.1,
        0.1, // label 1 tied with 0 at the top: in the top 1 (none larger)
        0.2,
        0.3,
        0.4,
        0.1, // label 3: three larger -> only in the top 4
        f32::NAN,
        0.1,
        0.2,
        0.3, // label 0 is NaN: never in
    ];
    let labels = [2, 1, 3, 0];
    assert_eq!(in_top_k(&out, &labels, 4, 1).unwrap(), 1);
    assert_eq!(in_top_k(&out, &labels, 4, 2).unwrap(), 2);
    assert_eq!(in_top_k(&out, &labels, 4, 3).unwrap(), 2);
    assert_eq!(in_top_k(&out, &labels, 4, 4).unwrap(), 3);
    assert!(in_top_k(&out, &labels, 3, 1).is_err());
    assert!(in_top_k(&out, &[2, 1, 3, 4], 4, 1).is_err());
}

#[test]
fn top_k_accuracy_through_evaluate_fit_and_the_csv_logger() {
    let data = common::quadrant_task(120, 10, 3);
    let mut m = common::seed_model(10, 3, 4, 2);
    m.compile(
        Adam::new(),
        Loss::SPARSE_CATEGORICAL_CROSSENTROPY,
        &[Metric::Accuracy, Metric::SparseTopKCategoricalAccuracy { k: 2 }],
    )
    .unwrap();
    let e = m.evaluate(&data, 32).unwrap();
    let p = m.predict(&data, 32).unwrap();
    let want = in_top_k(p.data(), data.labels().unwrap(), 4, 2).unwrap() as f32 / 120.0;
    assert_eq!(e.top_k_accuracy, Some(want));
    assert!(want >= e.accuracy);
    let csv = std::env::temp_dir().join(format!("ember-topk-{}.csv", std::process::id()));
    let opts = FitOptions { epochs: 2, batch_size: 16, validation_split: 0.25, ..FitOptions::default() };
    let h = m.fit(&data, None, &opts, &mut CsvLogger::new(&csv)).unwrap();
    for e in &h.epochs {
        assert!(e.top_k_accuracy.is_some_and(|t| t >= e.accuracy), "{e:?}");
        assert!(e.val_top_k_accuracy.is_some_and(|t| t >= e.val_accuracy.unwrap()), "{e:?}");
        assert_eq!(e.get("val_sparse_top_k_categorical_accuracy"), e.val_top_k_accuracy);
    }
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        text.starts_with("epoch,accuracy,loss,sparse_top_k_categorical_accuracy,val_accuracy,val_loss,val_sparse_top_k_categorical_accuracy\n"),
        "{text}"
    );
    std::fs::remove_file(&csv).unwrap();
    // k = 0 is refused; without the metric nothing is reported.
    let mut bad = common::seed_model(10, 3, 4, 2);
    assert!(bad
        .compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[Metric::SparseTopKCategoricalAccuracy { k: 0 }])
        .is_err());
    common::compile_adam(&mut bad);
    assert_eq!(bad.evaluate(&data, 32).unwrap().top_k_accuracy, None);
}

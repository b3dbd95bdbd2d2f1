//! Every loss against Keras's on fixed outputs (fixture from
//! `scripts/keras_losses_fixture.py`, TensorFlow 2.21 / Keras 3.15): the batch mean and its
//! gradient with respect to the outputs, probabilities (one of them clipped) and logits,
//! with and without label smoothing, against integer labels and against dense targets (soft
//! class probabilities, multi-label 0 / 1 and soft targets, regression values).
//!
//! Tolerance: 1e-6 relative on the loss and 1e-6 of the largest gradient entry (sums of
//! five to six f32 terms in other orders; TensorFlow's `log`/`exp` and Rust's differ by an
//! ulp).

use ember_model::io::Record;
use ember_model::losses::Loss;
use ember_model::Targets;

#[test]
fn losses_and_gradients_match_keras() {
    let r = Record::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras_losses.safetensors")).unwrap();
    let labels: Vec<u32> = r.get("labels", &[6]).unwrap().iter().map(|&v| v as u32).collect();
    let blabels: Vec<u32> = r.get("binary_labels", &[6]).unwrap().iter().map(|&v| v as u32).collect();
    let (logits, probs) = (r.get("logits", &[6, 5]).unwrap(), r.get("probs", &[6, 5]).unwrap());
    let (blogits, bprobs) = (r.get("binary_logits", &[6, 1]).unwrap(), r.get("binary_probs", &[6, 1]).unwrap());
    let cce = |from_logits, label_smoothing| Loss::CategoricalCrossentropy { from_logits, label_smoothing };
    let bce = |from_logits, label_smoothing| Loss::BinaryCrossentropy { from_logits, label_smoothing };
    let soft = r.get("soft", &[6, 5]).unwrap();
    let (multi, multi_soft) = (r.get("multi", &[6, 4]).unwrap(), r.get("multi_soft", &[6, 4]).unwrap());
    let (mlogits, mprobs) = (r.get("multi_logits", &[6, 4]).unwrap(), r.get("multi_probs", &[6, 4]).unwrap());
    let (regress, regress_out) = (r.get("regress", &[6, 3]).unwrap(), r.get("regress_out", &[6, 3]).unwrap());
    fn dense(v: &[f32], width: usize) -> Targets<'_> {
        Targets::dense(v, width).unwrap()
    }
    let (labels, blabels) = (Targets::Labels(&labels), Targets::Labels(&blabels));
    /// (fixture case, loss, outputs, targets, output width)
    type Case<'a> = (&'a str, Loss, &'a [f32], Targets<'a>, usize);
    let cases: [Case; 16] = [
        ("sparse_probs", Loss::SPARSE_CATEGORICAL_CROSSENTROPY, probs, labels, 5),
        ("sparse_logits", Loss::SparseCategoricalCrossentropy { from_logits: true }, logits, labels, 5),
        ("categorical_probs", Loss::CATEGORICAL_CROSSENTROPY, probs, labels, 5),
        ("categorical_probs_smooth", cce(false, 0.1), probs, labels, 5),
        ("categorical_logits_smooth", cce(true, 0.1), logits, labels, 5),
        ("binary_probs", Loss::BINARY_CROSSENTROPY, bprobs, blabels, 1),
        ("binary_probs_smooth", bce(false, 0.2), bprobs, blabels, 1),
        ("binary_logits", bce(true, 0.0), blogits, blabels, 1),
        ("mse", Loss::MeanSquaredError, probs, labels, 5),
        ("dense_categorical_probs", Loss::CATEGORICAL_CROSSENTROPY, probs, dense(soft, 5), 5),
        ("dense_categorical_logits", cce(true, 0.0), logits, dense(soft, 5), 5),
        ("dense_categorical_logits_smooth", cce(true, 0.1), logits, dense(soft, 5), 5),
        ("dense_binary_probs", Loss::BINARY_CROSSENTROPY, mprobs, dense(multi, 4), 4),
        ("dense_binary_logits_smooth", bce(true, 0.1), mlogits, dense(multi, 4), 4),
        ("dense_binary_soft_logits", bce(true, 0.0), mlogits, dense(multi_soft, 4), 4),
        ("dense_mse", Loss::MeanSquaredError, regress_out, dense(regress, 3), 3),
    ];
    for (name, loss, out, targets, width) in cases {
        let (value, grad) = loss.mean_and_gradient(out, targets, width, false).unwrap();
        let want = r.get(&format!("{name}/loss"), &[1]).unwrap()[0];
        assert!((value - want).abs() <= 1e-6 * want.abs(), "{name}: loss {value} vs Keras {want}");
        let wg = r.get(&format!("{name}/grad"), &[6, width]).unwrap();
        let scale = wg.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (i, (g, w)) in grad.iter().zip(wg).enumerate() {
            assert!((g - w).abs() <= 1e-6 * scale, "{name}: gradient [{i}] {g} vs Keras {w}");
        }
    }
}

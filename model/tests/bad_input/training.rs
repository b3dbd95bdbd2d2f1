//! Training and inference on bad data; datasets, losses and tensors.

use super::*;

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

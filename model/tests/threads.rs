//! Threads: models share pools instead of starting threads; training (with dropout, with
//! batch normalization, fused or not) and prediction give the same bits on any number of
//! threads; a loop of steps inside `Model::in_threads` is the loop outside it.

mod common;

use common::{compile_adam, quadrant_task, seed_model};
use ember_model::layers::{Activation, Conv2D, Dense, Flatten, MaxPooling2D};
use ember_model::FitOptions;

/// The threads of this process (Linux).
fn os_threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

#[test]
#[cfg(target_os = "linux")]
fn models_share_pools_instead_of_starting_threads() {
    let data = quadrant_task(4, 8, 1);
    let run = || {
        let mut m = seed_model(8, 2, 4, 1);
        m.set_threads(3).unwrap();
        compile_adam(&mut m);
        m.predict(&data, 4).unwrap();
        m
    };
    assert_eq!(run().threads(), 3);
    let before = os_threads();
    // Kept alive: a pool per model would hold 60 more threads here.
    let models: Vec<_> = (0..20).map(|_| run()).collect();
    assert_eq!(models.len(), 20);
    // Other tests of this binary may start threads meanwhile, but not 20 x 3.
    assert!(os_threads() < before + 20, "threads went from {before} to {}", os_threads());
}

#[test]
fn sharded_steps_with_dropout_do_not_depend_on_the_thread_count() {
    // Batches of 44: six shards (five of 8, one of 4); dropout masks are drawn per
    // (step, layer, sample), the shards' gradients summed in shard order.
    let data = quadrant_task(132, 12, 8);
    let mut results = Vec::new();
    for threads in [1, 2, 3] {
        let mut m = ember_model::Sequential::new();
        m.seed(3).set_threads(threads).unwrap();
        m.add(Conv2D::new(6, (3, 3)).activation(Activation::Relu).input_shape([12, 12, 1]))
            .add(MaxPooling2D::new((2, 2)))
            .add(Flatten::new())
            .add(ember_model::layers::Dropout::new(0.5))
            .add(Dense::new(4).activation(Activation::Softmax));
        compile_adam(&mut m);
        m.fit(&data, None, &FitOptions { epochs: 2, batch_size: 44, ..FitOptions::default() }, &mut ()).unwrap();
        results.push(common::weights(&m));
    }
    assert!(results[0] == results[1] && results[0] == results[2], "weights depend on the thread count");
}

#[test]
fn batch_normalized_training_does_not_depend_on_the_thread_count() {
    use ember_model::layers::{ActivationLayer, Add, BatchNormalization, GlobalAveragePooling2D};
    use ember_model::{Apply, Input, Model};
    let data = common::quadrant_task(132, 10, 5);
    for fuse in [true, false] {
        let mut results = Vec::new();
        for threads in [1, 2, 3] {
            let conv = |f: usize, s: usize| Conv2D::new(f, (3, 3)).strides((s, s)).padding("same").use_bias(false);
            let relu = |x: &ember_model::Node| ActivationLayer::new(Activation::Relu).apply(x);
            let x = Input::new(&[10, 10, 1]);
            let h = relu(&BatchNormalization::new().apply(&conv(4, 1).apply(&x)));
            let r = BatchNormalization::new()
                .apply(&conv(4, 1).apply(&relu(&BatchNormalization::new().apply(&conv(4, 1).apply(&h)))));
            let h = relu(&Add::new().apply_to(&[&h, &r]));
            let r = BatchNormalization::new().apply(&conv(6, 2).apply(&h));
            let h = relu(&Add::new().apply_to(&[&r, &BatchNormalization::new().apply(&conv(6, 2).apply(&h))]));
            let y = Dense::new(4).activation(Activation::Softmax).apply(&GlobalAveragePooling2D::new().apply(&h));
            let mut m = Model::new(&x, &y).unwrap();
            m.seed(8).set_threads(threads).unwrap();
            m.set_fusion(fuse);
            compile_adam(&mut m);
            m.fit(&data, None, &FitOptions { epochs: 2, batch_size: 44, ..FitOptions::default() }, &mut ()).unwrap();
            results.push(common::weights(&m));
            let moving = m.params().find("batch_normalization/moving_mean").unwrap();
            assert!(m.params().value(moving).iter().all(|&v| v != 0.0), "the moving means did not move");
        }
        assert!(
            results[0] == results[1] && results[0] == results[2],
            "fusion {fuse}: weights depend on the thread count"
        );
    }
}

/// Predict spreads a batch's parts over the threads: the same probabilities on 1 and 3
/// threads, for odd batch sizes, with and without batch normalization.
#[test]
fn predict_is_the_same_on_any_number_of_threads() {
    use ember_model::layers::BatchNormalization;
    let data = common::quadrant_task(53, 10, 9);
    for bn in [false, true] {
        let mut m = ember_model::Sequential::new();
        m.seed(3);
        m.add(Conv2D::new(4, (3, 3)).input_shape([10, 10, 1]));
        if bn {
            m.add(BatchNormalization::new());
        }
        m.add(Flatten::new()).add(Dense::new(4).activation(Activation::Softmax));
        common::compile_adam(&mut m);
        let mut runs = Vec::new();
        for threads in [1, 3] {
            m.set_threads(threads).unwrap();
            runs.push((m.predict(&data, 13).unwrap(), m.predict(&data, 53).unwrap()));
        }
        assert_eq!(runs[0], runs[1], "batch norm {bn}");
        assert_eq!(runs[0].0, runs[0].1, "batch norm {bn}: batch size changes the predictions");
    }
}

#[test]
fn steps_inside_the_models_threads_are_the_steps_outside() {
    // A loop of train_on_batch inside `in_threads` runs the same steps as one outside it
    // (only without a hand-off per call), on one and two threads; and a model can be
    // trained from inside another model's threads (a pool of another size).
    let data = quadrant_task(48, 12, 5);
    let batches: Vec<(Vec<f32>, Vec<u32>)> = (0..3)
        .map(|b| {
            let x = (b * 16..(b + 1) * 16).flat_map(|i| data.sample(i).unwrap()).collect();
            (x, data.labels().unwrap()[b * 16..(b + 1) * 16].to_vec())
        })
        .collect();
    let fresh = |threads| {
        let mut m = seed_model(12, 4, 4, 9);
        m.set_threads(threads).unwrap();
        compile_adam(&mut m);
        m.into_model()
    };
    for threads in [1, 2] {
        let mut outside = fresh(threads);
        let losses: Vec<f32> = batches.iter().map(|(x, y)| outside.train_on_batch(x, y).unwrap().loss).collect();
        let mut inside = fresh(threads);
        let mut other = fresh(3 - threads);
        let (inside_losses, other_losses) = inside
            .in_threads(|m| {
                // On one of the model's own threads, so its calls run here.
                assert!(rayon::current_thread_index().is_some(), "in_threads ran outside the pool");
                assert_eq!(rayon::current_num_threads(), threads);
                let mine: Vec<f32> = batches.iter().map(|(x, y)| m.train_on_batch(x, y).unwrap().loss).collect();
                let theirs: Vec<f32> = batches.iter().map(|(x, y)| other.train_on_batch(x, y).unwrap().loss).collect();
                (mine, theirs)
            })
            .unwrap();
        assert_eq!(losses, inside_losses, "{threads} threads: losses inside in_threads");
        assert_eq!(common::weights(&outside), common::weights(&inside), "{threads} threads: weights inside in_threads");
        // Bit-identical for any thread count, so the other pool's model matches too.
        assert_eq!(losses, other_losses, "a model of {} threads run from inside a pool of {threads}", 3 - threads);
        assert_eq!(common::weights(&outside), common::weights(&other));
    }
}

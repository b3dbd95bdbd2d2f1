//! Per-op profiling (`Model::set_op_profiling`): every op's calls counted per part and
//! pass, in both plans; off by default; no value changed by it.

mod common;

use common::{compile_adam, quadrant_task, seed_model, weights};
use ember_model::layers::{
    Activation, ActivationLayer, Add, BatchNormalization, Conv2D, Dense, GlobalAveragePooling2D,
};
use ember_model::{Apply, Input, Model, OpPass, OpTime, COUPLED_PART, PART};

/// A residual block with batch normalization (a plan that runs in parts of
/// `COUPLED_PART` between the batch's statistics).
fn residual_bn_model() -> Model {
    let conv = |f: usize| Conv2D::new(f, (3, 3)).padding("same").use_bias(false);
    let bn = |x: &ember_model::Node| BatchNormalization::new().apply(x);
    let relu = |x: &ember_model::Node| ActivationLayer::new(Activation::Relu).apply(x);
    let x = Input::new(&[8, 8, 1]);
    let h = relu(&bn(&conv(4).apply(&x)));
    let r = bn(&conv(4).apply(&relu(&bn(&conv(4).apply(&h)))));
    let h = relu(&Add::new().apply_to(&[&h, &r]));
    let y = Dense::new(4).activation(Activation::Softmax).apply(&GlobalAveragePooling2D::new().apply(&h));
    let mut m = Model::new(&x, &y).unwrap();
    m.seed(5);
    m
}

/// The batch's first `n` samples and labels of an 8x8 task.
fn batch(n: usize) -> (Vec<f32>, Vec<u32>) {
    let data = quadrant_task(n, 8, 7);
    let x: Vec<f32> = (0..n).flat_map(|i| data.sample(i).unwrap().to_vec()).collect();
    (x, data.labels().unwrap().to_vec())
}

fn calls(times: &[OpTime], op: &str, pass: OpPass) -> u64 {
    times.iter().find(|t| t.op == op && t.pass == pass).map_or(0, |t| t.calls)
}

#[test]
fn each_op_is_timed_once_per_part_and_half() {
    let mut m = residual_bn_model();
    compile_adam(&mut m);
    m.set_op_profiling(true);
    let n = 3 * COUPLED_PART;
    let (x, y) = batch(n);
    for _ in 0..2 {
        m.train_on_batch(&x, &y).unwrap();
    }
    let profile = m.op_profile();
    let parts = 2 * (n / COUPLED_PART) as u64;
    // Every op of the plan, in plan order, forward and backward.
    let plan: Vec<String> = m.plan().lines().map(String::from).collect();
    let forward: Vec<&str> = profile.training.iter().filter(|t| t.pass == OpPass::Forward).map(|t| &t.op[..]).collect();
    assert_eq!(forward, plan.iter().map(|s| &s[..]).collect::<Vec<_>>());
    for op in &plan {
        let (f, b) = (calls(&profile.training, op, OpPass::Forward), calls(&profile.training, op, OpPass::Backward));
        if op.contains("batch norm") {
            // Its first half (the part's moments) and second (normalizing with the batch's),
            // and a third where the backward pass recomputes the normalized part.
            assert!(f == 2 * parts || f == 3 * parts, "{op}: {f} forward calls for {parts} parts");
            assert_eq!(b, 2 * parts, "{op}: backward in two halves");
        } else {
            assert_eq!((f, b), (parts, parts), "{op}");
        }
    }
    let t = &profile.training;
    assert!(t.iter().all(|t| t.seconds >= 0.0) && profile.training_seconds() > 0.0);
    assert_eq!(profile.inference_seconds(), 0.0);
    assert!(profile.inference.is_empty(), "no inference ran");
    let table = profile.to_string();
    assert!(table.starts_with("Training ops") && table.contains("total"), "{table}");

    // Inference runs the other plan; training's times stay as they were.
    let data = quadrant_task(40, 8, 8);
    m.predict(&data, 20).unwrap();
    let after = m.op_profile();
    assert_eq!(after.training, profile.training);
    assert!(after.inference.iter().all(|t| t.pass == OpPass::Forward && t.calls == 2 * 20u64.div_ceil(PART as u64)));
    assert_eq!(after.inference.len(), m.inference_plan().lines().count());
    let sum: f64 = after.inference.iter().map(|t| t.seconds).sum();
    assert!(after.inference_seconds() > 0.0 && after.inference_seconds() == sum);
    assert_eq!(after.training_seconds(), profile.training_seconds());

    m.reset_op_profile();
    assert_eq!(m.op_profile(), Default::default());
    m.train_on_batch(&x, &y).unwrap();
    assert_eq!(calls(&m.op_profile().training, &plan[0], OpPass::Forward), parts / 2);
}

#[test]
fn a_plan_in_parts_counts_its_parts() {
    let mut m = seed_model(12, 4, 4, 3);
    // Set before `compile`, it holds for the plans `compile` makes.
    m.set_op_profiling(true);
    compile_adam(&mut m);
    let data = quadrant_task(2 * PART + 5, 12, 3);
    let x: Vec<f32> = (0..data.len()).flat_map(|i| data.sample(i).unwrap().to_vec()).collect();
    m.train_on_batch(&x, data.labels().unwrap()).unwrap();
    let profile = m.op_profile();
    assert!(!profile.training.is_empty());
    for t in &profile.training {
        assert_eq!(t.calls, 3, "{t:?}: a batch of {} in parts of {PART}", data.len());
    }
}

#[test]
fn profiling_is_off_by_default_and_changes_no_value() {
    let (x, y) = batch(3 * COUPLED_PART + 1);
    let run = |profile: bool| {
        let mut m = residual_bn_model();
        compile_adam(&mut m);
        if profile {
            m.set_op_profiling(true);
        }
        for _ in 0..3 {
            m.train_on_batch(&x, &y).unwrap();
        }
        let p = m.op_profile();
        (weights(&m), p)
    };
    let (plain, off) = run(false);
    let (profiled, on) = run(true);
    assert_eq!(off, Default::default(), "off by default");
    assert!(!on.training.is_empty());
    assert_eq!(plain, profiled, "the same weights, bit for bit");
    // Switched off, the times go.
    let mut m = residual_bn_model();
    compile_adam(&mut m);
    m.set_op_profiling(true);
    m.train_on_batch(&x, &y).unwrap();
    m.set_op_profiling(false);
    assert_eq!(m.op_profile(), Default::default());
}

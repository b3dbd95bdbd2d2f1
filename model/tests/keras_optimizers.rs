//! Every optimizer against Keras's: three steps on one 16-value variable with fixed
//! gradients (fixture from `scripts/keras_optimizers_fixture.py`, TensorFlow 2.21 /
//! Keras 3.15). The same f32 operations in the same order, with Keras's constants: the
//! weights are bit-identical to Keras's after every step.

use ember_model::io::Record;
use ember_model::optimizers::{
    Adagrad, Adam, AdamW, CosineDecay, ExponentialDecay, Optimizer, PiecewiseConstantDecay, RmsProp, Schedule, Sgd,
};

#[test]
fn three_steps_of_each_optimizer_match_keras() {
    let r = Record::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras_optimizers.safetensors")).unwrap();
    let get = |n: &str| r.get(n, &[16]).unwrap().to_vec();
    let cases: Vec<(&str, Box<dyn Optimizer>)> = vec![
        ("adam", Box::new(Adam::new().learning_rate(0.01))),
        ("adamw", Box::new(AdamW::new().learning_rate(0.01).weight_decay(0.05))),
        ("rmsprop", Box::new(RmsProp::new().learning_rate(0.01))),
        ("adagrad", Box::new(Adagrad::new().learning_rate(0.1))),
        ("sgd", Box::new(Sgd::new().learning_rate(0.1))),
        ("sgd_momentum", Box::new(Sgd::new().learning_rate(0.1).momentum(0.9))),
        ("sgd_nesterov", Box::new(Sgd::new().learning_rate(0.1).momentum(0.9).nesterov(true))),
        (
            "adam_exponential",
            Box::new(Adam::new().learning_rate(ExponentialDecay {
                initial_learning_rate: 0.01,
                decay_steps: 2,
                decay_rate: 0.5,
                staircase: false,
            })),
        ),
    ];
    for (name, mut opt) in cases {
        opt.check().unwrap();
        let mut w = get("w0");
        for k in 1..=3 {
            opt.apply(&mut w, &get(&format!("g{k}"))).unwrap();
            let want = get(&format!("{name}/w{k}"));
            for (i, (a, b)) in w.iter().zip(&want).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "{name} step {k} [{i}]: {a} vs Keras {b}");
            }
        }
    }
}

#[test]
fn schedules_match_keras() {
    let r = Record::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras_optimizers.safetensors")).unwrap();
    let steps = r.get("steps", &[14]).unwrap().to_vec();
    let exp =
        |staircase| ExponentialDecay { initial_learning_rate: 0.1, decay_steps: 100, decay_rate: 0.96, staircase };
    let cases: Vec<(&str, Box<dyn Schedule>)> = vec![
        ("exponential", Box::new(exp(false))),
        ("exponential_staircase", Box::new(exp(true))),
        ("cosine", Box::new(CosineDecay { initial_learning_rate: 0.1, decay_steps: 1000, alpha: 0.1 })),
        ("piecewise", Box::new(PiecewiseConstantDecay { boundaries: vec![100, 500], values: vec![0.1, 0.05, 0.01] })),
    ];
    for (name, s) in cases {
        s.check().unwrap();
        let want = r.get(&format!("schedule/{name}"), &[14]).unwrap();
        for (&t, &w) in steps.iter().zip(want) {
            let got = s.at(t as u64);
            // Keras's own f32 formulas; `powf` and `cos` may differ from TensorFlow's by an ulp.
            assert!((got - w).abs() <= 2.0 * f32::EPSILON * w.abs(), "{name} at step {t}: {got} vs Keras {w}");
        }
    }
}

/// Adam where TensorFlow flushes subnormals to zero: Keras's weights and both moments after
/// each of three steps, bit for bit, from moments and weights about the smallest normal and
/// gradients from 1e-45 to 1e-15 (IEEE arithmetic would keep subnormal moments and differ).
#[test]
fn adam_flushes_subnormals_as_keras_does() {
    use ember_model::optimizers::OptimizerState;
    let r = Record::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras_optimizers.safetensors")).unwrap();
    let get = |n: &str| r.get(&format!("tiny/{n}"), &[64]).unwrap().to_vec();
    let mut opt = Adam::new();
    opt.check().unwrap();
    opt.load_state(OptimizerState { iterations: 0, slots: vec![get("m0"), get("v0")] }).unwrap();
    let mut w = get("w0");
    assert!(get("m0").iter().chain(&get("g1")).any(|x| x.is_subnormal()), "the inputs reach subnormals");
    for k in 1..=3 {
        opt.apply(&mut w, &get(&format!("g{k}"))).unwrap();
        let state = opt.state();
        for (name, got) in [("w", &w), ("m", &state.slots[0]), ("v", &state.slots[1])] {
            let want = get(&format!("{name}{k}"));
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "{name} after step {k} [{i}]: {a:e} vs Keras {b:e}");
            }
        }
    }
}

/// RMSprop and Adagrad on the same tiny values as [`adam_flushes_subnormals_as_keras_does`],
/// their running sums starting at the fixture's `tiny/v0`: Keras's weights and running sums
/// after each of three steps, bit for bit.
#[test]
fn rmsprop_and_adagrad_flush_subnormals_as_keras_does() {
    use ember_model::optimizers::OptimizerState;
    let r = Record::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras_optimizers.safetensors")).unwrap();
    let get = |n: &str| r.get(n, &[64]).unwrap().to_vec();
    let cases: [(&str, Box<dyn Optimizer>); 2] =
        [("rmsprop", Box::new(RmsProp::new())), ("adagrad", Box::new(Adagrad::new()))];
    for (name, mut opt) in cases {
        opt.check().unwrap();
        opt.load_state(OptimizerState { iterations: 0, slots: vec![get("tiny/v0")] }).unwrap();
        let mut w = get("tiny/w0");
        for k in 1..=3 {
            opt.apply(&mut w, &get(&format!("tiny/g{k}"))).unwrap();
            let state = opt.state();
            for (what, got) in [("w", &w), ("s", &state.slots[0])] {
                let want = get(&format!("tiny_{name}/{what}{k}"));
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(a.to_bits(), b.to_bits(), "{name}: {what} after step {k} [{i}]: {a:e} vs Keras {b:e}");
                }
            }
        }
    }
}

/// AdamW on the tiny values (moments from the fixture's `tiny/m0`, `tiny/v0`), and its decay
/// alone (zero gradients, lr 0.9, weight decay 0.7) where `w·wd·lr` and the decayed weight
/// reach subnormals: Keras's weights after each of three steps, bit for bit.
#[test]
fn adamw_flushes_subnormals_as_keras_does() {
    use ember_model::optimizers::OptimizerState;
    let r = Record::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras_optimizers.safetensors")).unwrap();
    let get = |n: &str| r.get(n, &[64]).unwrap().to_vec();
    for (name, mut opt, zero_grads) in [
        ("adamw", AdamW::new().learning_rate(1e-3), false),
        ("adamw_decay", AdamW::new().learning_rate(0.9).weight_decay(0.7), true),
    ] {
        opt.check().unwrap();
        if !zero_grads {
            opt.load_state(OptimizerState { iterations: 0, slots: vec![get("tiny/m0"), get("tiny/v0")] }).unwrap();
        }
        let mut w = get("tiny/w0");
        for k in 1..=3 {
            let g = if zero_grads { vec![0.0; 64] } else { get(&format!("tiny/g{k}")) };
            opt.apply(&mut w, &g).unwrap();
            let want = get(&format!("tiny_{name}/w{k}"));
            for (i, (a, b)) in w.iter().zip(&want).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "{name}: w after step {k} [{i}]: {a:e} vs Keras {b:e}");
            }
        }
    }
}

/// SGD on the tiny values: without momentum, with it and Nesterov's (velocities from the
/// fixture's `tiny/m0`), and with momentum on zero gradients, where the velocities decay
/// further into the subnormal range: Keras's weights and velocities after each of three
/// steps, bit for bit.
#[test]
fn sgd_flushes_subnormals_as_keras_does() {
    use ember_model::optimizers::OptimizerState;
    let r = Record::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras_optimizers.safetensors")).unwrap();
    let get = |n: &str| r.get(n, &[64]).unwrap().to_vec();
    let sgd = || Sgd::new().learning_rate(1e-3);
    for (name, mut opt, zero_grads) in [
        ("sgd", sgd(), false),
        ("sgd_momentum", sgd().momentum(0.9), false),
        ("sgd_nesterov", sgd().momentum(0.9).nesterov(true), false),
        ("sgd_momentum_dead", sgd().momentum(0.9), true),
    ] {
        opt.check().unwrap();
        let momentum = name != "sgd";
        if momentum {
            opt.load_state(OptimizerState { iterations: 0, slots: vec![get("tiny/m0")] }).unwrap();
        }
        let mut w = get("tiny/w0");
        for k in 1..=3 {
            let g = if zero_grads { vec![0.0; 64] } else { get(&format!("tiny/g{k}")) };
            opt.apply(&mut w, &g).unwrap();
            let state = opt.state();
            let mut pairs = vec![("w", &w)];
            if momentum {
                pairs.push(("m", &state.slots[0]));
            }
            for (what, got) in pairs {
                let want = get(&format!("tiny_{name}/{what}{k}"));
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(a.to_bits(), b.to_bits(), "{name}: {what} after step {k} [{i}]: {a:e} vs Keras {b:e}");
                }
            }
        }
    }
}

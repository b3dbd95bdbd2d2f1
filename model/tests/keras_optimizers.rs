//! Every optimizer against Keras's: three steps on one 16-value variable with fixed
//! gradients (fixture from `scripts/keras_optimizers_fixture.py`, TensorFlow 2.21 /
//! Keras 3.15). The same f32 operations in the same order, with Keras's constants: the
//! weights are bit-identical to Keras's after every step.

use ember_model::io::Record;
use ember_model::optimizers::{Adagrad, Adam, AdamW, Optimizer, RmsProp, Sgd};

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

//! Every activation against Keras's (`keras.activations.get(name)` and its gradient by
//! `tf.GradientTape`, fixture from `scripts/keras_activations_fixture.py`, TensorFlow 2.21 /
//! Keras 3.15), on 128 inputs from -20 to 20.
//!
//! Tolerance: 8 ulps plus 2.5e-7 absolute, as the kernels' own reference test (TensorFlow's
//! `exp`, `tanh`, `erf` and Ember's differ by an ulp or two; the gradients that subtract from
//! 1 cancel near saturation).

use ember_model::io::Record;
use ember_model::layers::Activation;

fn close(got: f32, want: f32) -> bool {
    (got - want).abs() <= 8.0 * f32::EPSILON * want.abs() + 2.5e-7
}

#[test]
fn activations_and_gradients_match_keras() {
    let r = Record::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras_activations.safetensors")).unwrap();
    let n = r.tensors.iter().find(|(name, _, _)| name == "x").unwrap().2.len();
    let x = r.get("x", &[n]).unwrap();
    let names: Vec<&str> = r.metadata["names"].split(',').collect();
    assert_eq!(names.len(), 11);
    for name in names {
        let act: Activation = name.parse().unwrap();
        let k = act.elementwise().unwrap();
        let (y, d) = (r.get(&format!("{name}/y"), &[n]).unwrap(), r.get(&format!("{name}/dydx"), &[n]).unwrap());
        for i in 0..n {
            let (yi, di) = (k.apply(x[i]), k.derivative(x[i], k.apply(x[i])));
            assert!(close(yi, y[i]), "{name}({}) = {yi}, Keras {}", x[i], y[i]);
            if !(name == "relu" && x[i] == 0.0) {
                assert!(close(di, d[i]), "{name}'({}) = {di}, Keras {}", x[i], d[i]);
            }
        }
    }
    assert!("mish".parse::<Activation>().is_err());
}

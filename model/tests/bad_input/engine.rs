//! The engine: graphs, shards and gradient hooks.

use super::*;

#[test]
fn the_engine_rejects_bad_graphs_shards_and_hooks() {
    let data = leak(quadrant_task(8, 12, 1));
    run(vec![
        case!("functional: Add of one input", Error::Config(_), add_model(1, &[2])),
        case!("functional: Add of different shapes", Error::LayerShape { .. }, add_model(2, &[2, 3])),
        case!("functional: Concatenate of one input", Error::Config(_), {
            let x = Input::new(&[4]);
            Model::new(&x, &ember_model::layers::Concatenate::new().apply_to(&[&x]))
                .and_then(|mut m| m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[]).map(|_| m))
        }),
        case!("functional: Concatenate of mismatched images", Error::LayerShape { .. }, {
            let x = Input::new(&[4, 4, 1]);
            let a = Conv2D::new(2, (3, 3)).apply(&x);
            let y = Dense::new(2)
                .apply(&Flatten::new().apply(&ember_model::layers::Concatenate::new().apply_to(&[&x, &a])));
            Model::new(&x, &y)
                .and_then(|mut m| m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[]).map(|_| m))
        }),
        case!("functional: the input is not an Input", Error::Config(_), {
            let x = Input::new(&[8, 8, 1]);
            let h = Flatten::new().apply(&x);
            Model::new(&h, &Dense::new(2).apply(&h))
        }),
        case!("functional: the output depends on another Input", Error::Config(_), {
            let (x, other) = (Input::new(&[8, 8, 1]), Input::new(&[8, 8, 1]));
            Model::new(&x, &Dense::new(2).apply(&Flatten::new().apply(&other)))
        }),
        case!("functional: a node used by a second model", Error::Config(_), {
            let x = Input::new(&[4]);
            let y = Dense::new(2).apply(&x);
            Model::new(&x, &y).and_then(|_| Model::new(&x, &y))
        }),
        case!("summary: a line too narrow for its columns", Error::Config(_), model().summary_with_line_length(15)),
        case!("a model that computes nothing", Error::Config(_), {
            let mut m = Sequential::new();
            m.input(&[3]).add(Flatten::new());
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!("compute_gradients before compile", Error::NotCompiled, {
            let m = seed_model(12, 4, 4, 1);
            let len = m.params().table().trainable_len();
            m.compute_gradients(&mut m.new_shard(), (&[0.0; 144], &[0]), (0, 1), &mut vec![0.0; len])
        }),
        case!("compute_gradients: gradient arena of the wrong length", Error::Data(_), {
            let m = model();
            m.compute_gradients(&mut m.new_shard(), (&[0.0; 144], &[0]), (0, 1), &mut [0.0; 3])
        }),
        case!("compute_gradients: shard outside its batch", Error::Data(_), {
            let m = model();
            let len = m.params().table().trainable_len();
            m.compute_gradients(&mut m.new_shard(), (&[0.0; 288], &[0, 1]), (1, 2), &mut vec![0.0; len])
        }),
        case!("compute_gradients: a label out of range", Error::Data(_), {
            let m = model();
            let len = m.params().table().trainable_len();
            m.compute_gradients(&mut m.new_shard(), (&[0.0; 144], &[9]), (0, 1), &mut vec![0.0; len])
        }),
        case!("global norm clip of zero", Error::Config(_), {
            let mut m = model();
            m.set_gradient_hook(ClipByGlobalNorm(0.0));
            m.fit(data, None, &fit_opts(1, 4), &mut ())
        }),
        case!("a record that is not safetensors", Error::Weights { .. }, Record::from_bytes(b"nope", "bytes")),
        case!("store: keras values of the wrong length", Error::Config(_), {
            let mut m = model();
            let b = m.params().find("dense/bias").unwrap();
            m.params_mut().set_from_keras(b, &[0.0; 5])
        }),
    ]);
}

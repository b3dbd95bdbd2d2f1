//! The explain module: input gradients against finite differences (fused and unfused, with
//! batch normalization and dropout in inference mode), Grad-CAM and occlusion against hand
//! computations, Integrated Gradients' completeness, thread independence, the model left
//! untouched, and bad input.

mod common;

use ember_model::explain::{
    self, class_scores, grad_cam, input_gradients, integrated_gradients, occlusion, saliency, smooth_grad, Baseline,
    IntegratedGradients, Occlusion, Saliency, SmoothGrad, Target,
};
use ember_model::layers::{
    Activation, ActivationLayer, Add, BatchNormalization, Conv2D, Dense, Dropout, Flatten, GlobalAveragePooling2D,
};
use ember_model::rng::Rng;
use ember_model::{Apply, Input, Model, Tensor};

fn random_images(n: usize, shape: [usize; 3], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let len = n * shape.iter().product::<usize>();
    Tensor::new(vec![n, shape[0], shape[1], shape[2]], (0..len).map(|_| rng.uniform(-1.0, 1.0)).collect()).unwrap()
}

/// Central differences of the class score with respect to input entries, against
/// `input_gradients`. As in `gradients.rs`: h = 1e-3 in f32, points where the h and h/4
/// quotients disagree sit at a kink and are skipped (at most a fifth); agreement within
/// 2e-3 + 2% of the magnitude.
fn check_input_gradient(m: &Model, shape: [usize; 3], what: &str) {
    let n = 3;
    let x = random_images(n, shape, 5);
    let (classes, _) = class_scores(m, &x, Target::Predicted).unwrap();
    let target = Target::Classes(&classes);
    let g = input_gradients(m, &x, target).unwrap();
    assert_eq!(g.shape(), x.shape());
    let len = shape.iter().product::<usize>();
    let (mut checked, mut kinks) = (0, 0);
    for j in (0..x.len()).step_by((x.len() / 40).max(1)) {
        let sample = j / len;
        let at = |d: f32| {
            let mut xp = x.clone();
            xp.data_mut()[j] += d;
            class_scores(m, &xp, target).unwrap().1[sample]
        };
        let h = 1e-3f32;
        let fd = (at(h) - at(-h)) / (2.0 * h);
        let fd4 = (at(h / 4.0) - at(-h / 4.0)) / (h / 2.0);
        if (fd - fd4).abs() > 1e-3 + 0.01 * fd.abs() {
            kinks += 1;
            continue;
        }
        let a = g.data()[j];
        assert!(
            (fd - a).abs() <= 2e-3 + 0.02 * a.abs().max(fd.abs()),
            "{what}: entry {j}: finite difference {fd} vs {a}"
        );
        checked += 1;
    }
    assert!(checked >= 20 && kinks * 5 <= checked, "{what}: {checked} checked, {kinks} at kinks");
}

#[test]
fn input_gradients_match_finite_differences_fused_and_unfused() {
    for fuse in [true, false] {
        let mut m = common::seed_model(10, 4, 5, 3);
        m.set_fusion(fuse);
        m.build().unwrap();
        check_input_gradient(&m, [10, 10, 1], &format!("seed architecture, fusion {fuse}"));
    }
}

/// Batch normalization (moving statistics set away from 0 and 1) and dropout run in
/// inference mode; a residual `Add` makes the input's gradient a sum over two paths.
fn residual_with_bn_and_dropout() -> Model {
    let x = Input::new(&[6, 6, 2]);
    let h = Conv2D::new(4, (3, 3)).padding("same").apply(&x);
    let h = ActivationLayer::new(Activation::Relu).apply(&BatchNormalization::new().apply(&h));
    let r = Conv2D::new(4, (3, 3)).padding("same").activation(Activation::Tanh).apply(&h);
    let h = Add::new().apply_to(&[&h, &r]);
    let h = Dropout::new(0.5).apply(&GlobalAveragePooling2D::new().apply(&h));
    let y = Dense::new(3).activation(Activation::Softmax).apply(&h);
    let mut m = Model::new(&x, &y).unwrap();
    m.seed(9);
    m.build().unwrap();
    for (name, v) in [("batch_normalization/moving_mean", 0.3f32), ("batch_normalization/moving_variance", 2.5)] {
        let id = m.params().find(name).unwrap();
        m.params_mut().value_mut(id).iter_mut().enumerate().for_each(|(i, w)| *w = v + 0.1 * i as f32);
    }
    m
}

#[test]
fn input_gradients_through_batch_norm_dropout_and_a_residual_add() {
    let m = residual_with_bn_and_dropout();
    check_input_gradient(&m, [6, 6, 2], "residual with BN and dropout");
}

/// `x [4,4,2] -> Conv2D(3, 3x3, valid) -> GAP -> Dense(2)`, every weight set: the class
/// score is `sum_k W[k,c] mean(A_k) + b_c`, so its gradient with respect to `A_k` is
/// `W[k,c] / 4` everywhere and Grad-CAM is `relu(sum_k W[k,c] / 4 * A_k)`.
#[test]
fn grad_cam_equals_a_hand_computation() {
    let x = Input::new(&[4, 4, 2]);
    let a = Conv2D::new(3, (3, 3)).apply(&x);
    let y = Dense::new(2).apply(&GlobalAveragePooling2D::new().apply(&a));
    let mut m = Model::new(&x, &y).unwrap();
    m.seed(4);
    m.build().unwrap();
    let mut rng = Rng::new(8);
    let ids: Vec<_> = m.params().table().ids().collect();
    for id in ids {
        m.params_mut().value_mut(id).iter_mut().for_each(|v| *v = rng.uniform(-1.0, 1.0));
    }
    let kernel = m.params().to_keras(m.params().find("conv2d/kernel").unwrap()); // [3,3,2,3]
    let cbias = m.params().value(m.params().find("conv2d/bias").unwrap()).to_vec();
    let dense = m.params().to_keras(m.params().find("dense/kernel").unwrap()); // [3,2]
    let images = random_images(2, [4, 4, 2], 6);
    let classes = [1usize, 0];
    let cam = grad_cam(&m, &images, Target::Classes(&classes), "conv2d").unwrap();
    assert_eq!(cam.maps.shape(), &[2, 2, 2]);
    assert_eq!(cam.upsampled.shape(), &[2, 4, 4]);
    for (i, &c) in classes.iter().enumerate() {
        let img = &images.data()[i * 32..(i + 1) * 32];
        let mut want = [0f32; 4];
        for (p, wv) in want.iter_mut().enumerate() {
            let (oy, ox) = (p / 2, p % 2);
            let mut s = 0f64;
            for k in 0..3 {
                let mut act = f64::from(cbias[k]);
                for (dy, dx, ci) in (0..3).flat_map(|a| (0..3).flat_map(move |b| (0..2).map(move |c| (a, b, c)))) {
                    let xv = img[((oy + dy) * 4 + ox + dx) * 2 + ci];
                    act += f64::from(xv) * f64::from(kernel[((dy * 3 + dx) * 2 + ci) * 3 + k]);
                }
                s += f64::from(dense[k * 2 + c]) / 4.0 * act;
            }
            *wv = s.max(0.0) as f32;
        }
        let got = &cam.maps.data()[i * 4..(i + 1) * 4];
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "sample {i}: {got:?} vs {want:?}");
        }
        // 2 -> 4 bilinear with half-pixel centres: source 0, 0.25, 0.75, 1 of the way.
        let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
        let row = |r: &[f32]| [r[0], lerp(r[0], r[1], 0.25), lerp(r[0], r[1], 0.75), r[1]];
        let (top, bottom) = (row(&got[..2]), row(&got[2..]));
        let up = &cam.upsampled.data()[i * 16..(i + 1) * 16];
        for (y, t) in [0.0, 0.25, 0.75, 1.0].into_iter().enumerate() {
            for xx in 0..4 {
                let w = lerp(top[xx], bottom[xx], t);
                assert!((up[y * 4 + xx] - w).abs() <= 1e-6 * (1.0 + w.abs()), "upsampled {i} ({y},{xx})");
            }
        }
    }
}

/// A linear model `f(x) = sum_p W[p,c] x_p + b_c`: the gradient is `W[:,c]`, Integrated
/// Gradients are exactly `(x - x') W[:,c]` (any number of steps), occluding patch `P` drops
/// the score by `sum_{p in P} W[p,c] x_p`.
#[test]
fn linear_model_saliency_integrated_gradients_and_occlusion_by_hand() {
    let x = Input::new(&[5, 5, 1]);
    let y = Dense::new(3).activation(Activation::Softmax).apply(&Flatten::new().apply(&x));
    let mut m = Model::new(&x, &y).unwrap();
    m.seed(2);
    m.build().unwrap();
    let w = m.params().to_keras(m.params().find("dense/kernel").unwrap()); // [25, 3]
    let images = random_images(2, [5, 5, 1], 3);
    let classes = [2usize, 1];
    let t = Target::Classes(&classes);
    let g = input_gradients(&m, &images, t).unwrap();
    let s = saliency(&m, &images, t, Saliency { signed: true }).unwrap();
    let base = Tensor::new(vec![2, 5, 5, 1], vec![0.25; 50]).unwrap();
    let ig = integrated_gradients(&m, &images, t, IntegratedGradients { baseline: Baseline::Images(&base), steps: 3 })
        .unwrap();
    let occ = occlusion(&m, &images, t, Occlusion { patch: (2, 3), stride: (2, 1), baseline: 0.0 }).unwrap();
    // Patch rows start at 0, 2, 3 (the last reaching the edge), columns at 0, 1, 2.
    let windows: Vec<(usize, usize)> = [0, 2, 3].iter().flat_map(|&r| (0..3).map(move |c| (r, c))).collect();
    for (i, &c) in classes.iter().enumerate() {
        let img = &images.data()[i * 25..(i + 1) * 25];
        for p in 0..25 {
            let wp = w[p * 3 + c];
            assert!((g.data()[i * 25 + p] - wp).abs() <= 1e-6, "gradient {i},{p}");
            assert!((s.data()[i * 25 + p] - wp).abs() <= 1e-6, "signed saliency {i},{p}");
            let want = (img[p] - 0.25) * wp;
            assert!((ig.data()[i * 25 + p] - want).abs() <= 1e-5, "IG {i},{p}: {} vs {want}", ig.data()[i * 25 + p]);
            let (py, px) = (p / 5, p % 5);
            let covering: Vec<f32> = windows
                .iter()
                .filter(|&&(r, c0)| (r..r + 2).contains(&py) && (c0..c0 + 3).contains(&px))
                .map(|&(r, c0)| {
                    (r..r + 2)
                        .flat_map(|yy| (c0..c0 + 3).map(move |xx| yy * 5 + xx))
                        .map(|q| w[q * 3 + c] * img[q])
                        .sum()
                })
                .collect();
            let want = covering.iter().sum::<f32>() / covering.len() as f32;
            assert!((occ.data()[i * 25 + p] - want).abs() <= 1e-5, "occlusion {i},{p}");
        }
    }
}

#[test]
fn methods_do_not_depend_on_the_thread_count_or_touch_the_model() {
    let mut m = residual_with_bn_and_dropout();
    common::compile_adam(&mut m);
    let before = m.weights_to_bytes().unwrap();
    let grads_before = common::grads(&m);
    let images = random_images(19, [6, 6, 2], 12);
    let run = |m: &Model| {
        let cam = grad_cam(m, &images, Target::Predicted, "conv2d_1").unwrap();
        let sg = smooth_grad(m, &images, Target::Predicted, SmoothGrad { samples: 3, ..Default::default() }).unwrap();
        let ig =
            integrated_gradients(m, &images, Target::Predicted, IntegratedGradients { steps: 4, ..Default::default() });
        let occ = occlusion(m, &images, Target::Predicted, Occlusion::default()).unwrap();
        (cam, sg, ig.unwrap(), occ, saliency(m, &images, Target::Predicted, Saliency::default()).unwrap())
    };
    m.set_threads(1).unwrap();
    let one = run(&m);
    m.set_threads(3).unwrap();
    let three = run(&m);
    assert_eq!(one, three);
    assert_eq!(m.weights_to_bytes().unwrap(), before);
    assert_eq!(common::grads(&m), grads_before);
    // The predicted class is the model's prediction.
    let data = ember_model::data::Dataset::from_f32(images.data().to_vec(), vec![6, 6, 2], vec![0; 19]).unwrap();
    let p = m.predict(&data, 7).unwrap().argmax_rows();
    assert_eq!(class_scores(&m, &images, Target::Predicted).unwrap().0, p);
}

#[test]
fn bad_input_is_an_error() {
    let mut m = common::seed_model(8, 2, 3, 1);
    let good = random_images(2, [8, 8, 1], 1);
    assert!(saliency(&m, &good, Target::Predicted, Saliency::default()).is_err(), "an unbuilt model");
    m.build().unwrap();
    let wrong = random_images(2, [8, 7, 1], 1);
    let empty = Tensor::new(vec![0, 8, 8, 1], vec![]).unwrap();
    let base = random_images(1, [8, 8, 1], 1);
    let t = Target::Predicted;
    let cases: Vec<(&str, ember_model::Result<Tensor>)> = vec![
        ("wrong image shape", input_gradients(&m, &wrong, t)),
        ("no images", saliency(&m, &empty, t, Saliency::default())),
        ("a class out of range", saliency(&m, &good, Target::Classes(&[0, 3]), Saliency::default())),
        ("too few classes", saliency(&m, &good, Target::Classes(&[0]), Saliency::default())),
        ("no SmoothGrad samples", smooth_grad(&m, &good, t, SmoothGrad { samples: 0, ..Default::default() })),
        ("NaN noise", smooth_grad(&m, &good, t, SmoothGrad { noise: f32::NAN, ..Default::default() })),
        ("no IG steps", integrated_gradients(&m, &good, t, IntegratedGradients { steps: 0, ..Default::default() })),
        (
            "baseline of another shape",
            integrated_gradients(&m, &good, t, IntegratedGradients { baseline: Baseline::Images(&base), steps: 2 }),
        ),
        ("a patch larger than the image", occlusion(&m, &good, t, Occlusion { patch: (9, 2), ..Default::default() })),
        ("a zero stride", occlusion(&m, &good, t, Occlusion { stride: (0, 1), ..Default::default() })),
        ("an unknown layer", grad_cam(&m, &good, t, "conv9").map(|c| c.maps)),
        ("Grad-CAM on a vector", grad_cam(&m, &good, t, "dense").map(|c| c.maps)),
    ];
    for (what, r) in cases {
        let e = r.expect_err(what);
        assert!(!e.to_string().is_empty(), "{what}");
    }
    assert!(explain::heatmap::overlay(&[0.5; 4], &[0.5; 3], 0.4).is_err());
}

//! Small cases of every kernel family on the portable path, sized for Miri:
//! `cargo +nightly miri test -p ember-kernels --test miri_smoke` runs the GEMM driver and
//! packing, every convolution algorithm and pass (direct tiles, im2col, Winograd
//! transforms, the strided backward-data, the fused kernel), pooling, the dense kernels and
//! the elementwise ones under Miri's checks for out-of-bounds and dangling accesses,
//! out-of-allocation pointer arithmetic, alignment and data races. (Miri cannot run the
//! SIMD paths: it reports no CPU features, so `Isa::available()` is the portable one.)
//! Natively the file is one more quick check against the references on every ISA.

mod common;

use common::fill;
use ember_kernels::conv::conv_relu_maxpool_backward_filter;
use ember_kernels::conv::conv_relu_maxpool_forward;
use ember_kernels::conv::{
    conv2d_backward_data, conv2d_backward_filter, conv2d_forward, Conv2d, ConvAlgo, ConvReluPool, Padding, Pass,
};
use ember_kernels::elementwise::{adam_update, bias_grad, softmax_cross_entropy, AdamParams};
use ember_kernels::gemm::{sgemm_epilogue, Epilogue, MatMut, MatRef, PackedB, Rhs};
use ember_kernels::linear::linear_backward_data;
use ember_kernels::linear::linear_backward_weights;
use ember_kernels::linear::linear_forward;
use ember_kernels::linear::Linear;
use ember_kernels::pool::max_pool_backward;
use ember_kernels::pool::max_pool_forward;
use ember_kernels::pool::{avg_pool_backward, avg_pool_forward, Pool2d};
use ember_kernels::Ctx;
use ember_kernels::{reference, Isa};

fn close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what} [{i}]: {g} vs {w}");
    }
}

#[test]
fn gemm_views_packing_and_epilogue() {
    // Shapes past the unpacked-kernel thresholds (packed path) and below them; general,
    // transposed and zero strides; a column-major C with the bias + ReLU epilogue.
    for (m, n, k) in [(17, 33, 17), (5, 3, 7), (0, 4, 3)] {
        let a = fill(1, m * k + 8);
        let b = fill(2, k * n + 8);
        let bias = fill(3, n);
        let views: [(MatRef, MatRef); 3] = [
            (MatRef::row_major(&a[..m * k], m, k).unwrap(), MatRef::row_major(&b[..k * n], k, n).unwrap()),
            (MatRef::col_major(&a[..m * k], m, k).unwrap(), MatRef::col_major(&b[..k * n], k, n).unwrap()),
            (MatRef::new(&a, m, k, 0, 1).unwrap(), MatRef::new(&b, k, n, 1, 0).unwrap()),
        ];
        for (v, (av, bv)) in views.into_iter().enumerate() {
            let mut want = vec![0.0; m * n];
            reference::sgemm(1.0, av, bv, 0.0, &mut MatMut::row_major(&mut want, m, n).unwrap()).unwrap();
            want.iter_mut().enumerate().for_each(|(i, w)| *w = (*w + bias[i % n.max(1)]).max(0.0));
            for isa in Isa::available() {
                let epi = Epilogue { bias: Some(&bias), relu: true };
                let mut c = vec![f32::NAN; m.max(1) * n + m];
                let cv = MatMut::new(&mut c, m, n, 1, m.max(1)).unwrap();
                sgemm_epilogue(&Ctx::for_isa(isa), 1.0, av, Rhs::View(bv), 0.0, cv, epi).unwrap();
                let got: Vec<f32> = (0..m * n).map(|i| c[(i / n) + (i % n) * m.max(1)]).collect();
                close(&got, &want, 1e-5, &format!("{isa} gemm {m}x{n}x{k} views {v}"));
                let pb = PackedB::new(&Ctx::for_isa(isa), bv).unwrap();
                let mut c2 = vec![f32::NAN; m * n];
                let cv = MatMut::row_major(&mut c2, m, n).unwrap();
                sgemm_epilogue(&Ctx::for_isa(isa), 1.0, av, Rhs::Packed(&pb.clone()), 0.0, cv, epi).unwrap();
                close(&c2, &want, 1e-5, &format!("{isa} packed gemm {m}x{n}x{k} views {v}"));
            }
        }
    }
}

#[test]
fn convolution_every_algorithm_and_pass() {
    let shapes = [
        Conv2d::simple([1, 4, 5, 2], [3, 3, 2, 3], Padding::Same).unwrap(),
        Conv2d::new([1, 5, 4, 2], [2, 3, 2, 3], (2, 2), (1, 2), Padding::Same).unwrap(),
        Conv2d::simple([1, 2, 2, 9], [1, 1, 9, 2], Padding::Valid).unwrap(),
        // Two whole 16-wide panels of output channels: the filter-gradient tiles read dy in
        // place, and the second panel's pointer walk ends past the buffer.
        Conv2d::simple([1, 3, 2, 2], [2, 2, 2, 32], Padding::Valid).unwrap(),
    ];
    for c in shapes {
        let len = |s: [usize; 4]| s.iter().product::<usize>();
        let (x, w, b) = (fill(4, len(c.input_shape())), fill(5, len(c.filter_shape())), fill(6, c.cout()));
        let dy = fill(7, len(c.output_shape()));
        let mut y_ref = vec![0.0; dy.len()];
        reference::conv2d_forward(&c, &x, &w, Some(&b), true, &mut y_ref).unwrap();
        let mut dx_ref = vec![0.0; x.len()];
        reference::conv2d_backward_data(&c, &dy, &w, &mut dx_ref).unwrap();
        let (mut dw_ref, mut db_ref) = (vec![0.0; w.len()], vec![0.0; c.cout()]);
        reference::conv2d_backward_filter(&c, &x, &dy, &mut dw_ref, Some(&mut db_ref)).unwrap();
        for isa in Isa::available() {
            for algo in [ConvAlgo::Direct, ConvAlgo::Im2col, ConvAlgo::Winograd2x3, ConvAlgo::Winograd4x3] {
                let opts = Ctx { algo, isa, weights_version: None };
                let what = format!("{isa} {algo:?} {c:?}");
                if algo.supports(&c, Pass::Forward) {
                    let mut y = vec![f32::NAN; dy.len()];
                    conv2d_forward(&opts, &c, &x, &w, Some(&b), true, &mut y).unwrap();
                    close(&y, &y_ref, 1e-4, &format!("forward {what}"));
                    let mut dx = vec![f32::NAN; x.len()];
                    conv2d_backward_data(&opts, &c, &dy, &w, &mut dx, false).unwrap();
                    close(&dx, &dx_ref, 1e-4, &format!("backward-data {what}"));
                }
                if algo.supports(&c, Pass::BackwardFilter) {
                    let (mut dw, mut db) = (vec![f32::NAN; w.len()], vec![f32::NAN; c.cout()]);
                    conv2d_backward_filter(&opts, &c, &x, &dy, &mut dw, Some(&mut db), false).unwrap();
                    close(&dw, &dw_ref, 1e-4, &format!("backward-filter {what}"));
                    close(&db, &db_ref, 1e-5, &format!("bias gradient {what}"));
                }
            }
        }
    }
}

#[test]
fn fused_conv_relu_pool() {
    let cp = ConvReluPool::new(Conv2d::simple([2, 5, 6, 2], [3, 3, 2, 5], Padding::Valid).unwrap()).unwrap();
    let c = *cp.conv();
    let len = |s: [usize; 4]| s.iter().product::<usize>();
    let (x, w, b) = (fill(8, len(c.input_shape())), fill(9, len(c.filter_shape())), fill(10, c.cout()));
    let out = len(cp.output_shape());
    let (mut y_ref, mut a_ref) = (vec![0.0; out], vec![0u32; out]);
    reference::conv_relu_maxpool_forward(&cp, &x, &w, Some(&b), &mut y_ref, &mut a_ref).unwrap();
    let dy = fill(11, out);
    let (mut dw_ref, mut db_ref) = (vec![0.0; w.len()], vec![0.0; c.cout()]);
    reference::conv_relu_maxpool_backward_filter(&cp, &x, &y_ref, &dy, &a_ref, &mut dw_ref, Some(&mut db_ref)).unwrap();
    for isa in Isa::available() {
        let (mut y, mut a) = (vec![f32::NAN; out], vec![0u32; out]);
        conv_relu_maxpool_forward(&Ctx::for_isa(isa), &cp, &x, &w, Some(&b), &mut y, &mut a).unwrap();
        close(&y, &y_ref, 1e-5, &format!("{isa} fused forward"));
        let (mut dw, mut db) = (vec![f32::NAN; w.len()], vec![f32::NAN; c.cout()]);
        conv_relu_maxpool_backward_filter(&Ctx::for_isa(isa), &cp, &x, &y, &dy, &a, &mut dw, Some(&mut db), false)
            .unwrap();
        close(&dw, &dw_ref, 1e-4, &format!("{isa} fused backward-filter"));
        close(&db, &db_ref, 1e-5, &format!("{isa} fused bias gradient"));
    }
}

#[test]
fn pooling_dense_and_elementwise() {
    for p in [
        Pool2d::new([2, 5, 6, 3], (2, 2), (2, 2), Padding::Valid).unwrap(),
        Pool2d::new([1, 5, 5, 9], (3, 3), (2, 1), Padding::Same).unwrap(),
    ] {
        let len = |s: [usize; 4]| s.iter().product::<usize>();
        let (x, dy) = (fill(12, len(p.input_shape())), fill(13, len(p.output_shape())));
        let (mut y_ref, mut a_ref) = (vec![0.0; dy.len()], vec![0u32; dy.len()]);
        reference::max_pool_forward(&p, &x, &mut y_ref, &mut a_ref).unwrap();
        let mut dx_ref = vec![0.0; x.len()];
        reference::max_pool_backward(&p, &dy, &a_ref, &mut dx_ref).unwrap();
        for isa in Isa::available() {
            let (mut y, mut a) = (vec![f32::NAN; dy.len()], vec![0u32; dy.len()]);
            max_pool_forward(&Ctx::for_isa(isa), &p, &x, &mut y, &mut a).unwrap();
            assert_eq!((y.clone(), a.clone()), (y_ref.clone(), a_ref.clone()), "{isa} max pool");
            let mut dx = vec![f32::NAN; x.len()];
            max_pool_backward(&Ctx::for_isa(isa), &p, &dy, &a, &mut dx).unwrap();
            close(&dx, &dx_ref, 1e-6, &format!("{isa} max pool backward"));
        }
        let (mut ya, mut ya_ref) = (vec![0.0; dy.len()], vec![0.0; dy.len()]);
        avg_pool_forward(&p, &x, &mut ya).unwrap();
        reference::avg_pool_forward(&p, &x, &mut ya_ref).unwrap();
        close(&ya, &ya_ref, 1e-6, "avg pool");
        let (mut dxa, mut dxa_ref) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        avg_pool_backward(&p, &dy, &mut dxa).unwrap();
        reference::avg_pool_backward(&p, &dy, &mut dxa_ref).unwrap();
        close(&dxa, &dxa_ref, 1e-6, "avg pool backward");
    }

    let l = Linear::new(5, 13, 10).unwrap();
    let (x, w, b, dy) = (fill(14, 65), fill(15, 130), fill(16, 10), fill(17, 50));
    let mut y_ref = vec![0.0; 50];
    reference::linear_forward(&l, &x, &w, Some(&b), &mut y_ref).unwrap();
    let mut dx_ref = vec![0.0; 65];
    reference::linear_backward_data(&l, &dy, &w, &mut dx_ref).unwrap();
    let (mut dw_ref, mut db_ref) = (vec![0.0; 130], vec![0.0; 10]);
    reference::linear_backward_weights(&l, &x, &dy, &mut dw_ref, Some(&mut db_ref)).unwrap();
    for isa in Isa::available() {
        let mut y = vec![f32::NAN; 50];
        linear_forward(&Ctx::for_isa(isa), &l, &x, &w, Some(&b), &mut y).unwrap();
        close(&y, &y_ref, 1e-5, &format!("{isa} dense forward"));
        let mut dx = vec![f32::NAN; 65];
        linear_backward_data(&Ctx::for_isa(isa), &l, &dy, &w, &mut dx).unwrap();
        close(&dx, &dx_ref, 1e-5, &format!("{isa} dense backward-data"));
        let (mut dw, mut db) = (vec![f32::NAN; 130], vec![f32::NAN; 10]);
        linear_backward_weights(&Ctx::for_isa(isa), &l, &x, &dy, &mut dw, Some(&mut db), false).unwrap();
        close(&dw, &dw_ref, 1e-5, &format!("{isa} dense backward-weights"));
        close(&db, &db_ref, 1e-5, &format!("{isa} dense bias gradient"));
    }

    let mut db = vec![0.0; 3];
    bias_grad(&fill(18, 21), 3, &mut db).unwrap();
    let mut dl = vec![0.0; 8];
    let loss = softmax_cross_entropy(&fill(19, 8), &[1, 3], 4, &mut dl).unwrap();
    assert!(loss.is_finite());
    let (mut p, g, mut m, mut v) = (fill(20, 11), fill(21, 11), vec![0.0; 11], vec![0.0; 11]);
    adam_update(&Ctx::new(), &AdamParams::default(), 1, &mut p, &g, &mut m, &mut v).unwrap();
}

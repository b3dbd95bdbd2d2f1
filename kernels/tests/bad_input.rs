//! Bad input to every public function of `ember-kernels`, table-driven: each row is a call
//! with one thing wrong (a length, a zero or overflowing dimension, strides that alias or
//! run out of bounds, an algorithm that cannot compute the shape, an ISA this CPU lacks)
//! and the error it must return. A row fails if the call panics, succeeds, or returns a
//! different error. The optimized kernels and their references are both covered.

use ember_kernels::activation::{act_backward, act_backward_to, act_forward, Act};
use ember_kernels::batchnorm::{
    batch_norm_add, batch_norm_apply, batch_norm_backward, batch_norm_backward_dx, batch_norm_backward_sums,
    batch_norm_combine, batch_norm_moments, batch_norm_part_moments, AddTerm, BatchNormSaved, PartMoments,
};
use ember_kernels::conv::{
    conv2d_backward_data, conv2d_backward_data_pooled, conv2d_backward_filter, conv2d_backward_filter_pooled,
    conv2d_forward, conv_relu_maxpool_backward_filter, conv_relu_maxpool_forward, unpool_relu_grad, Conv2d, ConvAlgo,
    ConvReluPool, Padding,
};
use ember_kernels::elementwise::{
    accumulate, accumulate_in_order, adam_update, add_forward, bias_add, bias_grad, relu_backward, softmax,
    softmax_cross_entropy, softmax_cross_entropy_sum, AdamParams,
};
use ember_kernels::gemm::{sgemm, sgemm_epilogue, Epilogue, MatMut, MatRef, PackedB, Rhs};
use ember_kernels::linear::{linear_backward_data, linear_backward_weights, linear_forward, Linear};
use ember_kernels::pool::{
    avg_pool_backward, avg_pool_forward, global_avg_pool_backward, global_avg_pool_forward, max_pool_backward,
    max_pool_forward, Pool2d,
};
use ember_kernels::Ctx;
use ember_kernels::{reference, Error, Isa};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// An ISA this CPU does not have (x86-64 never has NEON; AArch64 never has AVX2).
fn missing_isa() -> Isa {
    [Isa::Neon, Isa::Avx2, Isa::Avx512].into_iter().find(|i| !i.is_available()).expect("some ISA is missing")
}

type Call = Box<dyn Fn() -> Result<(), Error>>;

/// One row: what is wrong, the call, and the error it must give.
struct Case {
    what: &'static str,
    call: Call,
    expect: fn(&Error) -> bool,
}

macro_rules! case {
    ($what:expr, $pat:pat, $body:expr) => {
        Case { what: $what, call: Box::new(move || $body.map(|_| ())), expect: |e| matches!(e, $pat) }
    };
}

/// Runs every row; reports all failures at once.
fn run(cases: Vec<Case>) {
    let total = cases.len();
    let mut failures = Vec::new();
    for c in cases {
        match catch_unwind(AssertUnwindSafe(|| (c.call)())) {
            Err(_) => failures.push(format!("{}: panicked", c.what)),
            Ok(Ok(())) => failures.push(format!("{}: accepted", c.what)),
            Ok(Err(e)) if !(c.expect)(&e) => failures.push(format!("{}: wrong error: {e}", c.what)),
            Ok(Err(_)) => {}
        }
    }
    assert!(failures.is_empty(), "{} of {total} rows failed:\n{}", failures.len(), failures.join("\n"));
}

fn z(n: usize) -> Vec<f32> {
    vec![0.0; n]
}

/// A batch-norm forward's saved values (`x, mean, inv_std, gamma`, the ReLU's affine).
fn saved<'a>(
    x: &'a [f32],
    mean: &'a [f32],
    inv_std: &'a [f32],
    gamma: &'a [f32],
    relu: Option<(&'a [f32], &'a [f32])>,
) -> BatchNormSaved<'a> {
    BatchNormSaved { x, mean, inv_std, gamma, relu }
}

#[test]
fn gemm_rejects_bad_views_shapes_and_isas() {
    run(vec![
        case!("view shorter than its shape", Error::BufferTooSmall { .. }, MatRef::new(&z(11), 3, 4, 4, 1)),
        case!("view strides run out of bounds", Error::BufferTooSmall { .. }, MatRef::new(&z(12), 3, 4, 5, 1)),
        case!("view extent overflows", Error::SizeOverflow { .. }, MatRef::new(&z(4), 2, 2, usize::MAX, 1)),
        case!("row-major length", Error::ShapeMismatch { .. }, MatRef::row_major(&z(11), 3, 4)),
        case!("col-major length", Error::ShapeMismatch { .. }, MatRef::col_major(&z(13), 3, 4)),
        case!("output rows alias", Error::OverlappingOutput { .. }, MatMut::new(&mut z(12), 3, 4, 2, 1)),
        case!("output zero row stride", Error::OverlappingOutput { .. }, MatMut::new(&mut z(12), 3, 4, 0, 1)),
        case!("output zero col stride", Error::OverlappingOutput { .. }, MatMut::new(&mut z(12), 3, 4, 4, 0)),
        case!("output out of bounds", Error::BufferTooSmall { .. }, MatMut::new(&mut z(12), 3, 4, 4, 2)),
        case!("output extent overflows", Error::SizeOverflow { .. }, MatMut::new(&mut z(4), 2, 2, usize::MAX, 1)),
        case!("output row-major length", Error::ShapeMismatch { .. }, MatMut::row_major(&mut z(5), 2, 3)),
        case!("output col-major length", Error::ShapeMismatch { .. }, MatMut::col_major(&mut z(7), 2, 3)),
        case!("A.cols != B.rows", Error::ShapeMismatch { .. }, {
            let (a, b, mut c) = (z(6), z(12), z(8));
            sgemm(
                &Ctx::new(),
                1.0,
                MatRef::row_major(&a, 2, 3)?,
                MatRef::row_major(&b, 4, 3)?,
                0.0,
                MatMut::row_major(&mut c, 2, 4)?,
            )
        }),
        case!("C rows", Error::ShapeMismatch { .. }, {
            let (a, b, mut c) = (z(6), z(12), z(12));
            sgemm(
                &Ctx::new(),
                1.0,
                MatRef::row_major(&a, 2, 3)?,
                MatRef::row_major(&b, 3, 4)?,
                0.0,
                MatMut::row_major(&mut c, 3, 4)?,
            )
        }),
        case!("C cols", Error::ShapeMismatch { .. }, {
            let (a, b, mut c) = (z(6), z(12), z(6));
            sgemm(
                &Ctx::new(),
                1.0,
                MatRef::row_major(&a, 2, 3)?,
                MatRef::row_major(&b, 3, 4)?,
                0.0,
                MatMut::row_major(&mut c, 2, 3)?,
            )
        }),
        case!("bias length", Error::ShapeMismatch { .. }, {
            let (a, b, mut c, bias) = (z(6), z(12), z(8), z(3));
            let epi = Epilogue { bias: Some(&bias), relu: false };
            let (a, b) = (MatRef::row_major(&a, 2, 3)?, MatRef::row_major(&b, 3, 4)?);
            sgemm_epilogue(&Ctx::for_isa(Isa::Scalar), 1.0, a, Rhs::View(b), 0.0, MatMut::row_major(&mut c, 2, 4)?, epi)
        }),
        case!("ISA this CPU lacks", Error::IsaUnavailable(_), {
            let (a, b, mut c) = (z(6), z(12), z(8));
            let (a, b) = (MatRef::row_major(&a, 2, 3)?, MatRef::row_major(&b, 3, 4)?);
            sgemm_epilogue(
                &Ctx::for_isa(missing_isa()),
                1.0,
                a,
                Rhs::View(b),
                0.0,
                MatMut::row_major(&mut c, 2, 4)?,
                Epilogue::NONE,
            )
        }),
        case!("broadcast operands too large to exist", Error::SizeOverflow { .. }, {
            let (one, mut c) = ([1.0f32], z(16 * 64));
            let k = (1usize << 60) + 1;
            let (a, b) = (MatRef::new(&one, 16, k, 0, 0)?, MatRef::new(&one, k, 64, 0, 0)?);
            sgemm(&Ctx::new(), 1.0, a, b, 0.0, MatMut::row_major(&mut c, 16, 64)?)
        }),
        case!(
            "PackedB for a missing ISA",
            Error::IsaUnavailable(_),
            PackedB::new(&Ctx::for_isa(missing_isa()), MatRef::row_major(&z(12), 3, 4)?)
        ),
        case!(
            "PackedB too large to exist",
            Error::SizeOverflow { .. },
            PackedB::new(&Ctx::new(), MatRef::new(&[1.0], 1 << 60, 64, 0, 0)?)
        ),
        case!("packed B for another ISA", Error::PackedForOtherIsa { .. }, {
            let isa = Isa::available().into_iter().find(|&i| i != Isa::Scalar).unwrap_or(Isa::Scalar);
            let other = if isa == Isa::Scalar { Isa::available().into_iter().last().unwrap() } else { Isa::Scalar };
            if isa == other {
                // A CPU with only the portable path cannot mix ISAs: count it as the error.
                return Err(Error::PackedForOtherIsa { packed_for: isa, requested: other });
            }
            let (a, b, mut c) = (z(6), z(12), z(8));
            let p = PackedB::new(&Ctx::for_isa(isa), MatRef::row_major(&b, 3, 4)?)?;
            let a = MatRef::row_major(&a, 2, 3)?;
            sgemm_epilogue(
                &Ctx::for_isa(other),
                1.0,
                a,
                Rhs::Packed(&p),
                0.0,
                MatMut::row_major(&mut c, 2, 4)?,
                Epilogue::NONE,
            )
        }),
        case!("packed B depth != A.cols", Error::ShapeMismatch { .. }, {
            let (a, b, mut c) = (z(8), z(12), z(8));
            let p = PackedB::new(&Ctx::new(), MatRef::row_major(&b, 3, 4)?)?;
            sgemm(&Ctx::new(), 1.0, MatRef::row_major(&a, 2, 4)?, &p, 0.0, MatMut::row_major(&mut c, 2, 4)?)
        }),
        case!("reference: A.cols != B.rows", Error::ShapeMismatch { .. }, {
            let (a, b, mut c) = (z(6), z(12), z(8));
            let (a, b) = (MatRef::row_major(&a, 2, 3)?, MatRef::row_major(&b, 4, 3)?);
            reference::sgemm(1.0, a, b, 0.0, &mut MatMut::row_major(&mut c, 2, 4)?)
        }),
        case!("reference: C shape", Error::ShapeMismatch { .. }, {
            let (a, b, mut c) = (z(6), z(12), z(6));
            let (a, b) = (MatRef::row_major(&a, 2, 3)?, MatRef::row_major(&b, 3, 4)?);
            reference::sgemm(1.0, a, b, 0.0, &mut MatMut::row_major(&mut c, 2, 3)?)
        }),
        case!("unknown ISA name", Error::UnknownIsa(_), "sse9".parse::<Isa>()),
        case!("check a missing ISA", Error::IsaUnavailable(_), missing_isa().check()),
    ]);
}

/// A valid 1 x 6 x 6 x 2 -> 3x3x2x4 convolution (output 4 x 4 x 4) for the length rows.
fn conv() -> Conv2d {
    Conv2d::simple([1, 6, 6, 2], [3, 3, 2, 4], Padding::Valid).unwrap()
}

#[test]
fn conv_descriptor_rejects_bad_shapes() {
    let e = Padding::Explicit { top: usize::MAX, bottom: 1, left: 0, right: 0 };
    let huge_pad = Padding::Explicit { top: 1 << 40, bottom: 1 << 40, left: 1 << 40, right: 1 << 40 };
    run(vec![
        case!("cin mismatch", Error::ShapeMismatch { .. }, Conv2d::simple([1, 6, 6, 2], [3, 3, 3, 4], Padding::Valid)),
        case!("zero height", Error::InvalidArgument(_), Conv2d::simple([1, 0, 6, 2], [3, 3, 2, 4], Padding::Same)),
        case!("zero width", Error::InvalidArgument(_), Conv2d::simple([1, 6, 0, 2], [3, 3, 2, 4], Padding::Same)),
        case!("zero channels", Error::InvalidArgument(_), Conv2d::simple([1, 6, 6, 0], [3, 3, 0, 4], Padding::Same)),
        case!("zero filters", Error::InvalidArgument(_), Conv2d::simple([1, 6, 6, 2], [3, 3, 2, 0], Padding::Same)),
        case!("zero kernel", Error::InvalidArgument(_), Conv2d::simple([1, 6, 6, 2], [0, 3, 2, 4], Padding::Same)),
        case!(
            "zero stride",
            Error::InvalidArgument(_),
            Conv2d::new([1, 6, 6, 2], [3, 3, 2, 4], (0, 1), (1, 1), Padding::Same)
        ),
        case!(
            "zero dilation",
            Error::InvalidArgument(_),
            Conv2d::new([1, 6, 6, 2], [3, 3, 2, 4], (1, 1), (1, 0), Padding::Same)
        ),
        case!(
            "window larger than input",
            Error::InvalidArgument(_),
            Conv2d::simple([1, 2, 6, 2], [3, 3, 2, 4], Padding::Valid)
        ),
        case!(
            "dilated window overflows",
            Error::SizeOverflow { .. },
            Conv2d::new([1, 6, 6, 2], [3, 3, 2, 4], (1, 1), (usize::MAX, 1), Padding::Same)
        ),
        case!("explicit padding overflows", Error::SizeOverflow { .. }, Conv2d::simple([1, 6, 6, 2], [3, 3, 2, 4], e)),
        case!(
            "padded canvas cannot exist",
            Error::SizeOverflow { .. },
            Conv2d::new([1, 1, 1, 1], [1, 1, 1, 1], (1 << 40, 1 << 40), (1, 1), huge_pad)
        ),
        case!(
            "input length overflows",
            Error::SizeOverflow { .. },
            Conv2d::simple([1 << 32, 1 << 16, 1 << 16, 1], [1, 1, 1, 1], Padding::Valid)
        ),
        case!(
            "filter length overflows",
            Error::SizeOverflow { .. },
            Conv2d::simple([0, 1, 1, 1 << 33], [1, 1, 1 << 33, 1 << 33], Padding::Valid)
        ),
        case!(
            "fused: output smaller than a window",
            Error::InvalidArgument(_),
            ConvReluPool::new(Conv2d::simple([1, 3, 3, 1], [3, 3, 1, 1], Padding::Valid)?)
        ),
        case!(
            "fused: output too large for f32 argmax",
            Error::InvalidArgument(_),
            ConvReluPool::new(Conv2d::simple([1, 2048, 2048, 1], [1, 1, 1, 8], Padding::Valid)?)
        ),
    ]);
}

#[test]
fn conv_passes_reject_bad_lengths_algorithms_and_isas() {
    let c = conv();
    let (x, w, y, b) = (36 * 2, 9 * 2 * 4, 16 * 4, 4);
    let opts = Ctx::new();
    let strided = Conv2d::new([1, 6, 6, 2], [3, 3, 2, 4], (2, 2), (1, 1), Padding::Same).unwrap();
    let sy = strided.output_shape().iter().product::<usize>();
    let missing = Ctx { isa: missing_isa(), ..Ctx::new() };
    run(vec![
        case!(
            "fwd: input length",
            Error::ShapeMismatch { .. },
            conv2d_forward(&opts, &c, &z(x - 1), &z(w), None, false, &mut z(y))
        ),
        case!(
            "fwd: filter length",
            Error::ShapeMismatch { .. },
            conv2d_forward(&opts, &c, &z(x), &z(w + 1), None, false, &mut z(y))
        ),
        case!(
            "fwd: output length",
            Error::ShapeMismatch { .. },
            conv2d_forward(&opts, &c, &z(x), &z(w), None, false, &mut z(y + 4))
        ),
        case!(
            "fwd: bias length",
            Error::ShapeMismatch { .. },
            conv2d_forward(&opts, &c, &z(x), &z(w), Some(&z(b + 1)), true, &mut z(y))
        ),
        case!(
            "fwd: missing ISA",
            Error::IsaUnavailable(_),
            conv2d_forward(&missing, &c, &z(x), &z(w), None, false, &mut z(y))
        ),
        case!(
            "fwd: Winograd with stride 2",
            Error::InvalidArgument(_),
            conv2d_forward(
                &Ctx::new().with_algo(ConvAlgo::Winograd2x3),
                &strided,
                &z(x),
                &z(w),
                None,
                false,
                &mut z(sy)
            )
        ),
        case!(
            "bwd-data: gradient length",
            Error::ShapeMismatch { .. },
            conv2d_backward_data(&opts, &c, &z(y - 1), &z(w), &mut z(x), false)
        ),
        case!(
            "bwd-data: filter length",
            Error::ShapeMismatch { .. },
            conv2d_backward_data(&opts, &c, &z(y), &z(w - 1), &mut z(x), false)
        ),
        case!(
            "bwd-data: dx length",
            Error::ShapeMismatch { .. },
            conv2d_backward_data(&opts, &c, &z(y), &z(w), &mut z(x + 1), false)
        ),
        case!(
            "bwd-data: missing ISA",
            Error::IsaUnavailable(_),
            conv2d_backward_data(&missing, &c, &z(y), &z(w), &mut z(x), false)
        ),
        case!(
            "bwd-data: Winograd 4x3 with stride 2",
            Error::InvalidArgument(_),
            conv2d_backward_data(
                &Ctx::new().with_algo(ConvAlgo::Winograd4x3),
                &strided,
                &z(sy),
                &z(w),
                &mut z(x),
                false
            )
        ),
        case!(
            "bwd-filter: input length",
            Error::ShapeMismatch { .. },
            conv2d_backward_filter(&opts, &c, &z(x + 1), &z(y), &mut z(w), None, false)
        ),
        case!(
            "bwd-filter: gradient length",
            Error::ShapeMismatch { .. },
            conv2d_backward_filter(&opts, &c, &z(x), &z(y + 1), &mut z(w), None, false)
        ),
        case!(
            "bwd-filter: dw length",
            Error::ShapeMismatch { .. },
            conv2d_backward_filter(&opts, &c, &z(x), &z(y), &mut z(w - 1), None, false)
        ),
        case!(
            "bwd-filter: db length",
            Error::ShapeMismatch { .. },
            conv2d_backward_filter(&opts, &c, &z(x), &z(y), &mut z(w), Some(&mut z(b - 1)), false)
        ),
        case!(
            "bwd-filter: missing ISA",
            Error::IsaUnavailable(_),
            conv2d_backward_filter(&missing, &c, &z(x), &z(y), &mut z(w), None, false)
        ),
        case!(
            "bwd-filter: Winograd 2x3 with stride 2",
            Error::InvalidArgument(_),
            conv2d_backward_filter(
                &Ctx::new().with_algo(ConvAlgo::Winograd2x3),
                &strided,
                &z(x),
                &z(sy),
                &mut z(w),
                None,
                false
            )
        ),
        case!(
            "reference fwd: input length",
            Error::ShapeMismatch { .. },
            reference::conv2d_forward(&c, &z(x - 1), &z(w), None, false, &mut z(y))
        ),
        case!(
            "reference fwd: bias length",
            Error::ShapeMismatch { .. },
            reference::conv2d_forward(&c, &z(x), &z(w), Some(&z(b - 1)), false, &mut z(y))
        ),
        case!(
            "reference bwd-data: dx length",
            Error::ShapeMismatch { .. },
            reference::conv2d_backward_data(&c, &z(y), &z(w), &mut z(x - 1))
        ),
        case!(
            "reference bwd-filter: db length",
            Error::ShapeMismatch { .. },
            reference::conv2d_backward_filter(&c, &z(x), &z(y), &mut z(w), Some(&mut z(b + 1)))
        ),
    ]);
}

#[test]
fn fused_conv_pool_rejects_bad_lengths_and_argmax() {
    let cp = ConvReluPool::new(conv()).unwrap();
    let (x, w, b, p, conv_out) = (36 * 2, 9 * 2 * 4, 4, 2 * 2 * 4, 16 * 4);
    let missing = missing_isa();
    run(vec![
        case!(
            "fwd: input length",
            Error::ShapeMismatch { .. },
            conv_relu_maxpool_forward(&Ctx::new(), &cp, &z(x + 1), &z(w), None, &mut z(p), &mut vec![0; p])
        ),
        case!(
            "fwd: filter length",
            Error::ShapeMismatch { .. },
            conv_relu_maxpool_forward(&Ctx::new(), &cp, &z(x), &z(w - 1), None, &mut z(p), &mut vec![0; p])
        ),
        case!(
            "fwd: output length",
            Error::ShapeMismatch { .. },
            conv_relu_maxpool_forward(&Ctx::new(), &cp, &z(x), &z(w), None, &mut z(p - 1), &mut vec![0; p])
        ),
        case!(
            "fwd: argmax length",
            Error::ShapeMismatch { .. },
            conv_relu_maxpool_forward(&Ctx::new(), &cp, &z(x), &z(w), None, &mut z(p), &mut vec![0; p + 1])
        ),
        case!(
            "fwd: bias length",
            Error::ShapeMismatch { .. },
            conv_relu_maxpool_forward(&Ctx::new(), &cp, &z(x), &z(w), Some(&z(b + 1)), &mut z(p), &mut vec![0; p])
        ),
        case!(
            "fwd: missing ISA",
            Error::IsaUnavailable(_),
            conv_relu_maxpool_forward(&Ctx::for_isa(missing), &cp, &z(x), &z(w), None, &mut z(p), &mut vec![0; p])
        ),
        case!("fwd: Winograd forced on a stride-2 convolution", Error::InvalidArgument(_), {
            let s2 = ConvReluPool::new(Conv2d::new([1, 9, 9, 2], [3, 3, 2, 4], (2, 2), (1, 1), Padding::Valid)?)?;
            let forced = Ctx::new().with_algo(ConvAlgo::Winograd4x3);
            conv_relu_maxpool_forward(&forced, &s2, &z(162), &z(w), None, &mut z(16), &mut [0; 16])
        }),
        case!(
            "bwd: pooled gradient length",
            Error::ShapeMismatch { .. },
            conv_relu_maxpool_backward_filter(
                &Ctx::new(),
                &cp,
                &z(x),
                &z(p),
                &z(p + 1),
                &vec![0; p],
                &mut z(w),
                None,
                false
            )
        ),
        case!(
            "bwd: pooled output length",
            Error::ShapeMismatch { .. },
            conv_relu_maxpool_backward_filter(
                &Ctx::new(),
                &cp,
                &z(x),
                &z(p - 1),
                &z(p),
                &vec![0; p],
                &mut z(w),
                None,
                false
            )
        ),
        case!(
            "bwd: dw length",
            Error::ShapeMismatch { .. },
            conv_relu_maxpool_backward_filter(
                &Ctx::new(),
                &cp,
                &z(x),
                &z(p),
                &z(p),
                &vec![0; p],
                &mut z(w + 1),
                None,
                false
            )
        ),
        case!(
            "bwd: db length",
            Error::ShapeMismatch { .. },
            conv_relu_maxpool_backward_filter(
                &Ctx::new(),
                &cp,
                &z(x),
                &z(p),
                &z(p),
                &vec![0; p],
                &mut z(w),
                Some(&mut z(b + 1)),
                false
            )
        ),
        case!(
            "bwd: missing ISA",
            Error::IsaUnavailable(_),
            conv_relu_maxpool_backward_filter(
                &Ctx::for_isa(missing),
                &cp,
                &z(x),
                &z(p),
                &z(p),
                &vec![0; p],
                &mut z(w),
                None,
                false
            )
        ),
        case!(
            "unpool: dconv length",
            Error::ShapeMismatch { .. },
            unpool_relu_grad(&cp, &z(p), &z(p), &vec![0; p], &mut z(conv_out - 1))
        ),
        case!(
            "unpool: argmax length",
            Error::ShapeMismatch { .. },
            unpool_relu_grad(&cp, &z(p), &z(p), &vec![0; p - 1], &mut z(conv_out))
        ),
        case!(
            "reference fwd: argmax length",
            Error::ShapeMismatch { .. },
            reference::conv_relu_maxpool_forward(&cp, &z(x), &z(w), None, &mut z(p), &mut vec![0; p - 1])
        ),
        case!(
            "reference bwd: pooled gradient length",
            Error::ShapeMismatch { .. },
            reference::conv_relu_maxpool_backward_filter(&cp, &z(x), &z(p), &z(p - 1), &vec![0; p], &mut z(w), None)
        ),
        case!(
            "pooled bwd-data: pooled output length",
            Error::ShapeMismatch { .. },
            conv2d_backward_data_pooled(&Ctx::new(), &cp, &z(p - 1), &z(p), &vec![0; p], &z(w), &mut z(x))
        ),
        case!(
            "pooled bwd-data: pooled gradient length",
            Error::ShapeMismatch { .. },
            conv2d_backward_data_pooled(&Ctx::new(), &cp, &z(p), &z(p + 1), &vec![0; p], &z(w), &mut z(x))
        ),
        case!(
            "pooled bwd-data: argmax length",
            Error::ShapeMismatch { .. },
            conv2d_backward_data_pooled(&Ctx::new(), &cp, &z(p), &z(p), &vec![0; p - 1], &z(w), &mut z(x))
        ),
        case!(
            "pooled bwd-data: filter length",
            Error::ShapeMismatch { .. },
            conv2d_backward_data_pooled(&Ctx::new(), &cp, &z(p), &z(p), &vec![0; p], &z(w + 1), &mut z(x))
        ),
        case!(
            "pooled bwd-data: dx length",
            Error::ShapeMismatch { .. },
            conv2d_backward_data_pooled(&Ctx::new(), &cp, &z(p), &z(p), &vec![0; p], &z(w), &mut z(x - 1))
        ),
        case!(
            "pooled bwd-data: missing ISA",
            Error::IsaUnavailable(_),
            conv2d_backward_data_pooled(&Ctx::for_isa(missing), &cp, &z(p), &z(p), &vec![0; p], &z(w), &mut z(x))
        ),
        case!(
            "pooled bwd-filter: pooled output length",
            Error::ShapeMismatch { .. },
            conv2d_backward_filter_pooled(
                &Ctx::new(),
                &cp,
                &z(x),
                &z(p + 1),
                &z(p),
                &vec![0; p],
                &mut z(w),
                None,
                false
            )
        ),
        case!(
            "pooled bwd-filter: pooled gradient length",
            Error::ShapeMismatch { .. },
            conv2d_backward_filter_pooled(
                &Ctx::new(),
                &cp,
                &z(x),
                &z(p),
                &z(p - 1),
                &vec![0; p],
                &mut z(w),
                None,
                false
            )
        ),
        case!(
            "pooled bwd-filter: argmax length",
            Error::ShapeMismatch { .. },
            conv2d_backward_filter_pooled(
                &Ctx::new(),
                &cp,
                &z(x),
                &z(p),
                &z(p),
                &vec![0; p + 1],
                &mut z(w),
                None,
                false
            )
        ),
        case!(
            "pooled bwd-filter: input length",
            Error::ShapeMismatch { .. },
            conv2d_backward_filter_pooled(
                &Ctx::new(),
                &cp,
                &z(x - 1),
                &z(p),
                &z(p),
                &vec![0; p],
                &mut z(w),
                None,
                false
            )
        ),
        case!(
            "pooled bwd-filter: dw length",
            Error::ShapeMismatch { .. },
            conv2d_backward_filter_pooled(
                &Ctx::new(),
                &cp,
                &z(x),
                &z(p),
                &z(p),
                &vec![0; p],
                &mut z(w - 1),
                None,
                false
            )
        ),
        case!(
            "pooled bwd-filter: db length",
            Error::ShapeMismatch { .. },
            conv2d_backward_filter_pooled(
                &Ctx::new(),
                &cp,
                &z(x),
                &z(p),
                &z(p),
                &vec![0; p],
                &mut z(w),
                Some(&mut z(b - 1)),
                true
            )
        ),
        case!(
            "pooled bwd-filter: missing ISA",
            Error::IsaUnavailable(_),
            conv2d_backward_filter_pooled(
                &Ctx::for_isa(missing),
                &cp,
                &z(x),
                &z(p),
                &z(p),
                &vec![0; p],
                &mut z(w),
                None,
                false
            )
        ),
    ]);
}

#[test]
fn pooling_rejects_bad_shapes_lengths_and_argmax() {
    let p = Pool2d::new([2, 4, 4, 3], (2, 2), (2, 2), Padding::Valid).unwrap();
    let (x, y) = (2 * 16 * 3, 2 * 4 * 3);
    let mut bad_a = vec![0u32; y];
    bad_a[5] = 48;
    let bad_a: &'static [u32] = bad_a.leak();
    let missing = missing_isa();
    run(vec![
        case!("zero height", Error::InvalidArgument(_), Pool2d::new([1, 0, 4, 3], (2, 2), (2, 2), Padding::Valid)),
        case!("zero channels", Error::InvalidArgument(_), Pool2d::new([1, 4, 4, 0], (2, 2), (2, 2), Padding::Valid)),
        case!("zero window", Error::InvalidArgument(_), Pool2d::new([1, 4, 4, 3], (0, 2), (2, 2), Padding::Valid)),
        case!("zero stride", Error::InvalidArgument(_), Pool2d::new([1, 4, 4, 3], (2, 2), (2, 0), Padding::Valid)),
        case!(
            "window larger than input",
            Error::InvalidArgument(_),
            Pool2d::new([1, 4, 4, 3], (5, 2), (1, 1), Padding::Valid)
        ),
        case!(
            "image too large for u32 argmax",
            Error::InvalidArgument(_),
            Pool2d::new([1, 1 << 16, 1 << 16, 1], (2, 2), (2, 2), Padding::Valid)
        ),
        case!(
            "input length overflows",
            Error::SizeOverflow { .. },
            Pool2d::new([1, 1 << 32, 1 << 32, 1], (2, 2), (2, 2), Padding::Valid)
        ),
        case!(
            "padded output too large",
            Error::SizeOverflow { .. },
            Pool2d::new(
                [1, 1, 1, 1],
                (1, 1),
                (1, 1),
                Padding::Explicit { top: 1 << 20, bottom: 1 << 20, left: 1 << 20, right: 1 << 20 }
            )
        ),
        case!(
            "max fwd: input length",
            Error::ShapeMismatch { .. },
            max_pool_forward(&Ctx::new(), &p, &z(x - 1), &mut z(y), &mut vec![0; y])
        ),
        case!(
            "max fwd: output length",
            Error::ShapeMismatch { .. },
            max_pool_forward(&Ctx::new(), &p, &z(x), &mut z(y + 1), &mut vec![0; y])
        ),
        case!(
            "max fwd: argmax length",
            Error::ShapeMismatch { .. },
            max_pool_forward(&Ctx::new(), &p, &z(x), &mut z(y), &mut vec![0; y - 1])
        ),
        case!(
            "max fwd: missing ISA",
            Error::IsaUnavailable(_),
            max_pool_forward(&Ctx::for_isa(missing), &p, &z(x), &mut z(y), &mut vec![0; y])
        ),
        case!(
            "max bwd: gradient length",
            Error::ShapeMismatch { .. },
            max_pool_backward(&Ctx::new(), &p, &z(y - 1), &vec![0; y], &mut z(x))
        ),
        case!(
            "max bwd: argmax length",
            Error::ShapeMismatch { .. },
            max_pool_backward(&Ctx::new(), &p, &z(y), &vec![0; y + 1], &mut z(x))
        ),
        case!(
            "max bwd: dx length",
            Error::ShapeMismatch { .. },
            max_pool_backward(&Ctx::new(), &p, &z(y), &vec![0; y], &mut z(x + 1))
        ),
        case!(
            "max bwd: argmax outside the image",
            Error::InvalidArgument(_),
            max_pool_backward(&Ctx::new(), &p, &z(y), bad_a, &mut z(x))
        ),
        case!(
            "max bwd: missing ISA",
            Error::IsaUnavailable(_),
            max_pool_backward(&Ctx::for_isa(missing), &p, &z(y), &vec![0; y], &mut z(x))
        ),
        case!("avg fwd: output length", Error::ShapeMismatch { .. }, avg_pool_forward(&p, &z(x), &mut z(y - 1))),
        case!("avg bwd: dx length", Error::ShapeMismatch { .. }, avg_pool_backward(&p, &z(y), &mut z(x - 1))),
        case!(
            "global fwd: output length",
            Error::ShapeMismatch { .. },
            global_avg_pool_forward([2, 4, 4, 3], &z(x), &mut z(5))
        ),
        case!(
            "global fwd: empty image",
            Error::InvalidArgument(_),
            global_avg_pool_forward([2, 0, 4, 3], &z(0), &mut z(6))
        ),
        case!(
            "global bwd: gradient length",
            Error::ShapeMismatch { .. },
            global_avg_pool_backward([2, 4, 4, 3], &z(7), &mut z(x))
        ),
        case!(
            "reference max fwd: argmax length",
            Error::ShapeMismatch { .. },
            reference::max_pool_forward(&p, &z(x), &mut z(y), &mut vec![0; y + 1])
        ),
        case!(
            "reference max bwd: argmax outside the image",
            Error::InvalidArgument(_),
            reference::max_pool_backward(&p, &z(y), bad_a, &mut z(x))
        ),
        case!(
            "reference max bwd: dx length",
            Error::ShapeMismatch { .. },
            reference::max_pool_backward(&p, &z(y), &vec![0; y], &mut z(x - 1))
        ),
        case!(
            "reference avg fwd: input length",
            Error::ShapeMismatch { .. },
            reference::avg_pool_forward(&p, &z(x + 1), &mut z(y))
        ),
        case!(
            "reference avg bwd: gradient length",
            Error::ShapeMismatch { .. },
            reference::avg_pool_backward(&p, &z(y + 1), &mut z(x))
        ),
    ]);
}

#[test]
fn linear_rejects_bad_shapes_and_lengths() {
    let l = Linear::new(3, 5, 2).unwrap();
    let (x, w, y) = (15, 10, 6);
    let missing = missing_isa();
    run(vec![
        case!("zero inputs", Error::InvalidArgument(_), Linear::new(3, 0, 2)),
        case!("zero outputs", Error::InvalidArgument(_), Linear::new(3, 5, 0)),
        case!("sizes overflow", Error::SizeOverflow { .. }, Linear::new(1 << 40, 1 << 30, 2)),
        case!(
            "fwd: input length",
            Error::ShapeMismatch { .. },
            linear_forward(&Ctx::new(), &l, &z(x - 1), &z(w), None, &mut z(y))
        ),
        case!(
            "fwd: weight length",
            Error::ShapeMismatch { .. },
            linear_forward(&Ctx::new(), &l, &z(x), &z(w + 1), None, &mut z(y))
        ),
        case!(
            "fwd: output length",
            Error::ShapeMismatch { .. },
            linear_forward(&Ctx::new(), &l, &z(x), &z(w), None, &mut z(y - 1))
        ),
        case!(
            "fwd: bias length",
            Error::ShapeMismatch { .. },
            linear_forward(&Ctx::new(), &l, &z(x), &z(w), Some(&z(3)), &mut z(y))
        ),
        case!(
            "fwd: missing ISA",
            Error::IsaUnavailable(_),
            linear_forward(&Ctx::for_isa(missing), &l, &z(x), &z(w), None, &mut z(y))
        ),
        case!(
            "bwd-data: gradient length",
            Error::ShapeMismatch { .. },
            linear_backward_data(&Ctx::new(), &l, &z(y + 1), &z(w), &mut z(x))
        ),
        case!(
            "bwd-data: dx length",
            Error::ShapeMismatch { .. },
            linear_backward_data(&Ctx::new(), &l, &z(y), &z(w), &mut z(x - 1))
        ),
        case!(
            "bwd-data: missing ISA",
            Error::IsaUnavailable(_),
            linear_backward_data(&Ctx::for_isa(missing), &l, &z(y), &z(w), &mut z(x))
        ),
        case!(
            "bwd-weights: dw length",
            Error::ShapeMismatch { .. },
            linear_backward_weights(&Ctx::new(), &l, &z(x), &z(y), &mut z(w - 1), None, false)
        ),
        case!(
            "bwd-weights: db length",
            Error::ShapeMismatch { .. },
            linear_backward_weights(&Ctx::new(), &l, &z(x), &z(y), &mut z(w), Some(&mut z(1)), false)
        ),
        case!(
            "bwd-weights: missing ISA",
            Error::IsaUnavailable(_),
            linear_backward_weights(&Ctx::for_isa(missing), &l, &z(x), &z(y), &mut z(w), None, true)
        ),
        case!(
            "reference fwd: bias length",
            Error::ShapeMismatch { .. },
            reference::linear_forward(&l, &z(x), &z(w), Some(&z(1)), &mut z(y))
        ),
        case!(
            "reference fwd: input length",
            Error::ShapeMismatch { .. },
            reference::linear_forward(&l, &z(x + 1), &z(w), None, &mut z(y))
        ),
        case!(
            "reference bwd-data: weight length",
            Error::ShapeMismatch { .. },
            reference::linear_backward_data(&l, &z(y), &z(w - 1), &mut z(x))
        ),
        case!(
            "reference bwd-weights: db length",
            Error::ShapeMismatch { .. },
            reference::linear_backward_weights(&l, &z(x), &z(y), &mut z(w), Some(&mut z(3)))
        ),
    ]);
}

#[test]
fn elementwise_rejects_bad_lengths_and_labels() {
    let p = AdamParams::default();
    run(vec![
        case!("bias_add: not whole rows", Error::ShapeMismatch { .. }, bias_add(&mut z(7), &z(3))),
        case!("bias_add: empty bias", Error::InvalidArgument(_), bias_add(&mut z(6), &[])),
        case!("bias_grad: not whole rows", Error::ShapeMismatch { .. }, bias_grad(&z(7), 3, &mut z(3))),
        case!("bias_grad: zero channels", Error::InvalidArgument(_), bias_grad(&z(6), 0, &mut z(0))),
        case!("bias_grad: db length", Error::ShapeMismatch { .. }, bias_grad(&z(6), 3, &mut z(2))),
        case!("relu_backward: lengths differ", Error::ShapeMismatch { .. }, relu_backward(&z(5), &mut z(6))),
        case!("add_forward: no inputs", Error::InvalidArgument(_), add_forward(&[], false, &mut z(6))),
        case!("accumulate: lengths differ", Error::ShapeMismatch { .. }, accumulate(&Ctx::new(), &mut z(6), &z(5))),
        case!(
            "dropout mask: ISA this CPU lacks",
            Error::IsaUnavailable(_),
            ember_kernels::dropout::dropout_mask(&Ctx::for_isa(missing_isa()), 1, 2, 2.0, &mut z(6))
        ),
        case!(
            "accumulate: ISA this CPU lacks",
            Error::IsaUnavailable(_),
            accumulate(&Ctx::for_isa(missing_isa()), &mut z(6), &z(6))
        ),
        case!(
            "accumulate_in_order: the second input of another length",
            Error::ShapeMismatch { .. },
            accumulate_in_order(&Ctx::new(), &mut z(6), &[&z(6), &z(5)])
        ),
        case!(
            "accumulate_in_order: ISA this CPU lacks",
            Error::IsaUnavailable(_),
            accumulate_in_order(&Ctx::for_isa(missing_isa()), &mut z(6), &[&z(6)])
        ),
        case!(
            "add_forward: an input of another length",
            Error::ShapeMismatch { .. },
            add_forward(&[&z(6), &z(5)], true, &mut z(6))
        ),
        case!("softmax: not whole rows", Error::ShapeMismatch { .. }, softmax(&mut z(7), 3)),
        case!("softmax: zero classes", Error::InvalidArgument(_), softmax(&mut z(6), 0)),
        case!(
            "cross-entropy: label out of range",
            Error::InvalidArgument(_),
            softmax_cross_entropy(&z(6), &[0, 3], 3, &mut z(6))
        ),
        case!(
            "cross-entropy: label count",
            Error::ShapeMismatch { .. },
            softmax_cross_entropy(&z(6), &[0], 3, &mut z(6))
        ),
        case!(
            "cross-entropy: gradient length",
            Error::ShapeMismatch { .. },
            softmax_cross_entropy(&z(6), &[0, 1], 3, &mut z(5))
        ),
        case!(
            "cross-entropy sum: not whole rows",
            Error::ShapeMismatch { .. },
            softmax_cross_entropy_sum(&z(7), &[0, 1], 3, 1.0, &mut z(7))
        ),
        case!(
            "adam: gradient length",
            Error::ShapeMismatch { .. },
            adam_update(&Ctx::new(), &p, 1, &mut z(4), &z(3), &mut z(4), &mut z(4))
        ),
        case!(
            "adam: first moment length",
            Error::ShapeMismatch { .. },
            adam_update(&Ctx::new(), &p, 1, &mut z(4), &z(4), &mut z(5), &mut z(4))
        ),
        case!(
            "adam: second moment length",
            Error::ShapeMismatch { .. },
            adam_update(&Ctx::new(), &p, 1, &mut z(4), &z(4), &mut z(4), &mut z(3))
        ),
        case!(
            "adam: step 0",
            Error::InvalidArgument(_),
            adam_update(&Ctx::new(), &p, 0, &mut z(4), &z(4), &mut z(4), &mut z(4))
        ),
        case!(
            "adam: ISA this CPU lacks",
            Error::IsaUnavailable(_),
            adam_update(&Ctx::for_isa(missing_isa()), &p, 1, &mut z(4), &z(4), &mut z(4), &mut z(4))
        ),
        case!(
            "activation: output length",
            Error::ShapeMismatch { .. },
            act_forward(&Ctx::new(), Act::Gelu, &z(4), &mut z(3))
        ),
        case!(
            "activation: ISA missing",
            Error::IsaUnavailable(_),
            act_forward(&Ctx::for_isa(missing_isa()), Act::Gelu, &z(4), &mut z(4))
        ),
        case!(
            "activation backward: input length",
            Error::ShapeMismatch { .. },
            act_backward(&Ctx::new(), Act::Tanh, &z(3), &z(4), &mut z(4))
        ),
        case!(
            "activation backward: output length",
            Error::ShapeMismatch { .. },
            act_backward(&Ctx::new(), Act::Silu, &z(4), &z(5), &mut z(4))
        ),
        case!(
            "activation backward (out of place): input gradient length",
            Error::ShapeMismatch { .. },
            act_backward_to(&Ctx::new(), Act::Elu, &z(4), &z(4), &z(4), &mut z(3))
        ),
        case!(
            "batch norm moments: not whole rows",
            Error::InvalidArgument(_),
            batch_norm_moments(&Ctx::new(), &z(7), 2, &mut z(2), &mut z(2))
        ),
        case!(
            "batch norm moments: no rows",
            Error::InvalidArgument(_),
            batch_norm_moments(&Ctx::new(), &[], 2, &mut z(2), &mut z(2))
        ),
        case!(
            "batch norm moments: variance length",
            Error::ShapeMismatch { .. },
            batch_norm_moments(&Ctx::new(), &z(8), 2, &mut z(2), &mut z(3))
        ),
        case!(
            "batch norm moments: ISA missing",
            Error::IsaUnavailable(_),
            batch_norm_moments(&Ctx::for_isa(missing_isa()), &z(8), 2, &mut z(2), &mut z(2))
        ),
        case!(
            "batch norm part moments: not whole rows",
            Error::InvalidArgument(_),
            batch_norm_part_moments(&Ctx::new(), &z(7), 2, &mut PartMoments::default())
        ),
        case!(
            "batch norm part moments: no rows",
            Error::InvalidArgument(_),
            batch_norm_part_moments(&Ctx::new(), &[], 2, &mut PartMoments::default())
        ),
        case!(
            "batch norm part moments: ISA missing",
            Error::IsaUnavailable(_),
            batch_norm_part_moments(&Ctx::for_isa(missing_isa()), &z(8), 2, &mut PartMoments::default())
        ),
        case!("batch norm combine: no parts", Error::InvalidArgument(_), batch_norm_combine(&[], &mut z(2), &mut z(2))),
        case!(
            "batch norm combine: a part never summed",
            Error::ShapeMismatch { .. },
            batch_norm_combine(&[&PartMoments::default()], &mut z(2), &mut z(2))
        ),
        case!("batch norm combine: parts of other channels", Error::ShapeMismatch { .. }, {
            let (mut a, mut b) = (PartMoments::default(), PartMoments::default());
            batch_norm_part_moments(&Ctx::new(), &z(8), 2, &mut a).unwrap();
            batch_norm_part_moments(&Ctx::new(), &z(8), 4, &mut b).unwrap();
            batch_norm_combine(&[&a, &b], &mut z(2), &mut z(2))
        }),
        case!(
            "batch norm part moments from values: sums not two per channel",
            Error::ShapeMismatch { .. },
            PartMoments::from_values(4, vec![0.0; 2], vec![0.0; 3])
        ),
        case!("batch norm combine: mean length", Error::ShapeMismatch { .. }, {
            let mut a = PartMoments::default();
            batch_norm_part_moments(&Ctx::new(), &z(8), 2, &mut a).unwrap();
            batch_norm_combine(&[&a], &mut z(3), &mut z(2))
        }),
        case!(
            "batch norm backward sums: sums length",
            Error::ShapeMismatch { .. },
            batch_norm_backward_sums(&Ctx::new(), saved(&z(8), &z(2), &z(2), &z(2), None), &z(8), &mut [0f64; 3])
        ),
        case!(
            "batch norm backward sums: gradient length",
            Error::ShapeMismatch { .. },
            batch_norm_backward_sums(&Ctx::new(), saved(&z(8), &z(2), &z(2), &z(2), None), &z(6), &mut [0f64; 4])
        ),
        case!(
            "batch norm backward sums: ISA missing",
            Error::IsaUnavailable(_),
            batch_norm_backward_sums(
                &Ctx::for_isa(missing_isa()),
                saved(&z(8), &z(2), &z(2), &z(2), None),
                &z(8),
                &mut [0f64; 4]
            )
        ),
        case!(
            "batch norm backward dx: mean of dy length",
            Error::ShapeMismatch { .. },
            batch_norm_backward_dx(
                &Ctx::new(),
                saved(&z(8), &z(2), &z(2), &z(2), None),
                &z(8),
                (&z(3), &z(2)),
                &mut z(8)
            )
        ),
        case!(
            "batch norm backward dx: input gradient length",
            Error::ShapeMismatch { .. },
            batch_norm_backward_dx(
                &Ctx::new(),
                saved(&z(8), &z(2), &z(2), &z(2), None),
                &z(8),
                (&z(2), &z(2)),
                &mut z(6)
            )
        ),
        case!(
            "batch norm backward dx: inverse std length",
            Error::ShapeMismatch { .. },
            batch_norm_backward_dx(
                &Ctx::new(),
                saved(&z(8), &z(2), &z(1), &z(2), None),
                &z(8),
                (&z(2), &z(2)),
                &mut z(8)
            )
        ),
        case!(
            "batch norm apply: shift length",
            Error::ShapeMismatch { .. },
            batch_norm_apply(&Ctx::new(), &z(8), &z(2), &z(3), false, &mut z(8))
        ),
        case!(
            "batch norm apply: output length",
            Error::ShapeMismatch { .. },
            batch_norm_apply(&Ctx::new(), &z(8), &z(2), &z(2), true, &mut z(6))
        ),
        case!(
            "batch norm add: no terms",
            Error::InvalidArgument(_),
            batch_norm_add(&Ctx::new(), &[], 2, true, &mut z(8))
        ),
        case!(
            "batch norm add: output not rows of the channels",
            Error::InvalidArgument(_),
            batch_norm_add(&Ctx::new(), &[AddTerm { x: &z(7), affine: None }], 2, true, &mut z(7))
        ),
        case!(
            "batch norm add: term length",
            Error::ShapeMismatch { .. },
            batch_norm_add(
                &Ctx::new(),
                &[AddTerm { x: &z(8), affine: None }, AddTerm { x: &z(6), affine: None }],
                2,
                false,
                &mut z(8)
            )
        ),
        case!(
            "batch norm add: shift length",
            Error::ShapeMismatch { .. },
            batch_norm_add(&Ctx::new(), &[AddTerm { x: &z(8), affine: Some((&z(2), &z(3))) }], 2, false, &mut z(8))
        ),
        case!(
            "batch norm add: missing ISA",
            Error::IsaUnavailable(_),
            batch_norm_add(&Ctx::for_isa(missing_isa()), &[AddTerm { x: &z(8), affine: None }], 2, false, &mut z(8))
        ),
        case!(
            "batch norm backward: gradient length",
            Error::ShapeMismatch { .. },
            batch_norm_backward(
                &Ctx::new(),
                saved(&z(8), &z(2), &z(2), &z(2), None),
                &z(6),
                None,
                (&mut z(2), &mut z(2)),
                false
            )
        ),
        case!(
            "batch norm backward: gamma length",
            Error::ShapeMismatch { .. },
            batch_norm_backward(
                &Ctx::new(),
                saved(&z(8), &z(2), &z(2), &z(3), None),
                &z(8),
                None,
                (&mut z(2), &mut z(2)),
                false
            )
        ),
        case!(
            "batch norm backward: input gradient length",
            Error::ShapeMismatch { .. },
            batch_norm_backward(
                &Ctx::new(),
                saved(&z(8), &z(2), &z(2), &z(2), None),
                &z(8),
                Some(&mut z(7)),
                (&mut z(2), &mut z(2)),
                false
            )
        ),
        case!(
            "batch norm + ReLU backward: scale length",
            Error::ShapeMismatch { .. },
            batch_norm_backward(
                &Ctx::new(),
                saved(&z(8), &z(2), &z(2), &z(2), Some((&z(3), &z(2)))),
                &z(8),
                None,
                (&mut z(2), &mut z(2)),
                false
            )
        ),
        case!(
            "batch norm + ReLU backward: shift length",
            Error::ShapeMismatch { .. },
            batch_norm_backward(
                &Ctx::new(),
                saved(&z(8), &z(2), &z(2), &z(2), Some((&z(2), &z(1)))),
                &z(8),
                None,
                (&mut z(2), &mut z(2)),
                false
            )
        ),
        case!(
            "batch norm backward: rows of channels",
            Error::InvalidArgument(_),
            batch_norm_backward(
                &Ctx::new(),
                saved(&z(7), &z(2), &z(2), &z(2), None),
                &z(7),
                None,
                (&mut z(2), &mut z(2)),
                false
            )
        ),
        case!(
            "reference activation: output length",
            Error::ShapeMismatch { .. },
            reference::act_forward(Act::Elu, &z(4), &mut [0f64; 2])
        ),
    ]);
}

/// Item 5 of the review: a stride of 2^31 (or more) on an axis with one output pixel was
/// accepted, and strided backward-data then aborted on "capacity overflow" (it sized a Vec
/// of `sh * sw` phases). It must compute the same gradient as the reference.
#[test]
fn huge_strides_compute_backward_data() {
    for stride in [(1usize << 31, 1usize << 31), (2, 1 << 40), (usize::MAX, 3)] {
        let c = Conv2d::new([2, 5, 7, 3], [3, 2, 3, 4], stride, (1, 1), Padding::Same).unwrap();
        let dy = reference::fill_uniform(7, c.output_shape().iter().product());
        let w = reference::fill_uniform(8, c.filter_shape().iter().product());
        let mut want = z(c.input_shape().iter().product());
        reference::conv2d_backward_data(&c, &dy, &w, &mut want).unwrap();
        for isa in Isa::available() {
            for algo in [ConvAlgo::Auto, ConvAlgo::Direct, ConvAlgo::Im2col] {
                let mut dx = vec![f32::NAN; want.len()];
                conv2d_backward_data(&Ctx { algo, isa }, &c, &dy, &w, &mut dx, false).unwrap();
                for (i, (g, r)) in dx.iter().zip(&want).enumerate() {
                    assert!((g - r).abs() <= 1e-5, "stride {stride:?} {isa:?} {algo:?} [{i}]: {g} vs {r}");
                }
            }
        }
    }
}

/// The checked element accessors: `None` outside the view (the `at` forms panic, like slice
/// indexing, as documented).
#[test]
fn view_accessors_return_none_outside_the_view() {
    let buf: Vec<f32> = (0..12).map(|i| i as f32).collect();
    let v = MatRef::row_major(&buf, 3, 4).unwrap();
    assert_eq!(v.get(2, 3), Some(11.0));
    assert_eq!(v.t().get(3, 2), Some(11.0));
    assert_eq!((v.get(3, 0), v.get(0, 4), v.get(usize::MAX, usize::MAX)), (None, None, None));
    let mut b2 = buf.clone();
    let mut m = MatMut::col_major(&mut b2, 4, 3).unwrap();
    *m.get_mut(1, 2).unwrap() = -1.0;
    assert_eq!(b2[9], -1.0);
    let mut m = MatMut::col_major(&mut b2, 4, 3).unwrap();
    assert!(m.get_mut(4, 0).is_none() && m.get_mut(0, 3).is_none());
    assert!(catch_unwind(AssertUnwindSafe(|| v.at(3, 0))).is_err());
}

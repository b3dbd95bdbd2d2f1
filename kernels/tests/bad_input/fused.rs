//! The fused convolution + bias + ReLU + 2x2 max pooling and the pooled backward passes.

use super::*;

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

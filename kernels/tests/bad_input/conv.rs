//! Convolution: the descriptor, every pass and algorithm; huge strides computed, not refused.

use super::*;

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
                conv2d_backward_data(&Ctx { algo, isa, weights_version: None }, &c, &dy, &w, &mut dx, false).unwrap();
                for (i, (g, r)) in dx.iter().zip(&want).enumerate() {
                    assert!((g - r).abs() <= 1e-5, "stride {stride:?} {isa:?} {algo:?} [{i}]: {g} vs {r}");
                }
            }
        }
    }
}

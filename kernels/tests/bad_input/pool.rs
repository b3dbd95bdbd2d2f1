//! Pooling: max, average and global average, forward and backward.

use super::*;

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

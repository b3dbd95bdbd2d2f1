//! The dense layer's kernels and their references.

use super::*;

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

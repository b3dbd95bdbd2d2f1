//! GEMM: views, shapes, prepacked operands, ISAs; the checked view accessors.

use super::*;

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

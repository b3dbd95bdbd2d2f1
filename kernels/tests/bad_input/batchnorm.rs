//! Batch normalization: moments, parts, combine, apply, add, the backward passes.

use super::*;

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
fn batch_norm_rejects_bad_lengths_and_shapes() {
    run(vec![
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
    ]);
}

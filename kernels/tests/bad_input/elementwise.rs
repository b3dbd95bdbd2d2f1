//! Elementwise kernels: bias, ReLU, sums, dropout masks, softmax and cross-entropy, Adam, the
//! activations.

use super::*;

#[test]
fn elementwise_rejects_bad_lengths_and_labels() {
    let p = AdamParams::default();
    let r = RmsParams::rmsprop(1e-3, 0.9, 1e-7);
    let sg = SgdParams { lr: 1e-2, momentum: 0.9, nesterov: true };
    run(vec![
        case!("bias_add: not whole rows", Error::ShapeMismatch { .. }, bias_add(&mut z(7), &z(3))),
        case!("bias_add: empty bias", Error::InvalidArgument(_), bias_add(&mut z(6), &[])),
        case!("bias_grad: not whole rows", Error::ShapeMismatch { .. }, bias_grad(&z(7), 3, &mut z(3))),
        case!("bias_grad: zero channels", Error::InvalidArgument(_), bias_grad(&z(6), 0, &mut z(0))),
        case!("bias_grad: db length", Error::ShapeMismatch { .. }, bias_grad(&z(6), 3, &mut z(2))),
        case!("relu_backward: lengths differ", Error::ShapeMismatch { .. }, relu_backward(&z(5), &mut z(6))),
        case!("add_forward: no inputs", Error::InvalidArgument(_), add_forward(&Ctx::new(), &[], false, &mut z(6))),
        case!("accumulate: lengths differ", Error::ShapeMismatch { .. }, accumulate(&Ctx::new(), &mut z(6), &z(5))),
        case!(
            "dropout mask: ISA this CPU lacks",
            Error::IsaUnavailable(_),
            ember_kernels::dropout::dropout_mask(&Ctx::for_isa(missing_isa()), 1, 2, 2.0, &mut z(6))
        ),
        case!(
            "add_forward: ISA this CPU lacks",
            Error::IsaUnavailable(_),
            add_forward(&Ctx::for_isa(missing_isa()), &[&z(6)], false, &mut z(6))
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
            add_forward(&Ctx::new(), &[&z(6), &z(5)], true, &mut z(6))
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
            "adam: epsilon 0",
            Error::InvalidArgument(_),
            adam_update(&Ctx::new(), &AdamParams { eps: 0.0, ..p }, 1, &mut z(4), &z(4), &mut z(4), &mut z(4))
        ),
        case!(
            "adam: epsilon beyond 2^100",
            Error::InvalidArgument(_),
            adam_update(&Ctx::new(), &AdamParams { eps: 1e31, ..p }, 1, &mut z(4), &z(4), &mut z(4), &mut z(4))
        ),
        case!(
            "adamw: negative weight decay",
            Error::InvalidArgument(_),
            adam_update(
                &Ctx::new(),
                &AdamParams { weight_decay: Some(-0.1), ..p },
                1,
                &mut z(4),
                &z(4),
                &mut z(4),
                &mut z(4)
            )
        ),
        case!(
            "adamw summed: NaN weight decay",
            Error::InvalidArgument(_),
            adam_update_summed(
                &Ctx::new(),
                &AdamParams { weight_decay: Some(f32::NAN), ..p },
                1,
                &mut z(4),
                &mut z(4),
                &[],
                &mut z(4),
                &mut z(4)
            )
        ),
        case!(
            "adam: ISA this CPU lacks",
            Error::IsaUnavailable(_),
            adam_update(&Ctx::for_isa(missing_isa()), &p, 1, &mut z(4), &z(4), &mut z(4), &mut z(4))
        ),
        case!(
            "adam summed: gradient length",
            Error::ShapeMismatch { .. },
            adam_update_summed(&Ctx::new(), &p, 1, &mut z(4), &mut z(3), &[], &mut z(4), &mut z(4))
        ),
        case!(
            "adam summed: a part's length",
            Error::ShapeMismatch { .. },
            adam_update_summed(&Ctx::new(), &p, 1, &mut z(4), &mut z(4), &[&z(4), &z(5)], &mut z(4), &mut z(4))
        ),
        case!(
            "adam summed: second moment length",
            Error::ShapeMismatch { .. },
            adam_update_summed(&Ctx::new(), &p, 1, &mut z(4), &mut z(4), &[&z(4)], &mut z(4), &mut z(3))
        ),
        case!(
            "adam summed: step 0",
            Error::InvalidArgument(_),
            adam_update_summed(&Ctx::new(), &p, 0, &mut z(4), &mut z(4), &[&z(4)], &mut z(4), &mut z(4))
        ),
        case!(
            "adam summed: ISA this CPU lacks",
            Error::IsaUnavailable(_),
            adam_update_summed(&Ctx::for_isa(missing_isa()), &p, 1, &mut z(4), &mut z(4), &[], &mut z(4), &mut z(4))
        ),
        case!(
            "rms: gradient length",
            Error::ShapeMismatch { .. },
            rms_update(&Ctx::new(), &r, &mut z(4), &z(3), &mut z(4))
        ),
        case!(
            "rms: running sum length",
            Error::ShapeMismatch { .. },
            rms_update(&Ctx::new(), &r, &mut z(4), &z(4), &mut z(5))
        ),
        case!(
            "rms: epsilon 0",
            Error::InvalidArgument(_),
            rms_update(&Ctx::new(), &RmsParams { eps: 0.0, ..r }, &mut z(4), &z(4), &mut z(4))
        ),
        case!(
            "rms: epsilon beyond 2^100",
            Error::InvalidArgument(_),
            rms_update(&Ctx::new(), &RmsParams { eps: 1e31, ..r }, &mut z(4), &z(4), &mut z(4))
        ),
        case!(
            "rms: negative decay",
            Error::InvalidArgument(_),
            rms_update(&Ctx::new(), &RmsParams { decay: -1.0, ..r }, &mut z(4), &z(4), &mut z(4))
        ),
        case!(
            "rms: NaN gain",
            Error::InvalidArgument(_),
            rms_update(&Ctx::new(), &RmsParams { gain: f32::NAN, ..r }, &mut z(4), &z(4), &mut z(4))
        ),
        case!(
            "rms: ISA this CPU lacks",
            Error::IsaUnavailable(_),
            rms_update(&Ctx::for_isa(missing_isa()), &r, &mut z(4), &z(4), &mut z(4))
        ),
        case!(
            "rms summed: gradient length",
            Error::ShapeMismatch { .. },
            rms_update_summed(&Ctx::new(), &r, &mut z(4), &mut z(3), &[], &mut z(4))
        ),
        case!(
            "rms summed: a part's length",
            Error::ShapeMismatch { .. },
            rms_update_summed(&Ctx::new(), &r, &mut z(4), &mut z(4), &[&z(4), &z(5)], &mut z(4))
        ),
        case!(
            "rms summed: running sum length",
            Error::ShapeMismatch { .. },
            rms_update_summed(&Ctx::new(), &r, &mut z(4), &mut z(4), &[&z(4)], &mut z(3))
        ),
        case!(
            "rms summed: ISA this CPU lacks",
            Error::IsaUnavailable(_),
            rms_update_summed(&Ctx::for_isa(missing_isa()), &r, &mut z(4), &mut z(4), &[], &mut z(4))
        ),
        case!(
            "sgd: gradient length",
            Error::ShapeMismatch { .. },
            sgd_update(&Ctx::new(), &sg, &mut z(4), &z(3), Some(&mut z(4)))
        ),
        case!(
            "sgd: velocity length",
            Error::ShapeMismatch { .. },
            sgd_update(&Ctx::new(), &sg, &mut z(4), &z(4), Some(&mut z(5)))
        ),
        case!(
            "sgd: momentum without a velocity",
            Error::InvalidArgument(_),
            sgd_update(&Ctx::new(), &sg, &mut z(4), &z(4), None)
        ),
        case!(
            "sgd: momentum over 1",
            Error::InvalidArgument(_),
            sgd_update(&Ctx::new(), &SgdParams { momentum: 1.5, ..sg }, &mut z(4), &z(4), Some(&mut z(4)))
        ),
        case!(
            "sgd: NaN momentum",
            Error::InvalidArgument(_),
            sgd_update(&Ctx::new(), &SgdParams { momentum: f32::NAN, ..sg }, &mut z(4), &z(4), Some(&mut z(4)))
        ),
        case!(
            "sgd: ISA this CPU lacks",
            Error::IsaUnavailable(_),
            sgd_update(&Ctx::for_isa(missing_isa()), &sg, &mut z(4), &z(4), Some(&mut z(4)))
        ),
        case!(
            "sgd summed: gradient length",
            Error::ShapeMismatch { .. },
            sgd_update_summed(&Ctx::new(), &sg, &mut z(4), &mut z(3), &[], Some(&mut z(4)))
        ),
        case!(
            "sgd summed: a part's length",
            Error::ShapeMismatch { .. },
            sgd_update_summed(&Ctx::new(), &sg, &mut z(4), &mut z(4), &[&z(4), &z(5)], None)
        ),
        case!(
            "sgd summed: velocity length",
            Error::ShapeMismatch { .. },
            sgd_update_summed(&Ctx::new(), &sg, &mut z(4), &mut z(4), &[&z(4)], Some(&mut z(3)))
        ),
        case!(
            "sgd summed: ISA this CPU lacks",
            Error::IsaUnavailable(_),
            sgd_update_summed(&Ctx::for_isa(missing_isa()), &sg, &mut z(4), &mut z(4), &[], Some(&mut z(4)))
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
            "reference activation: output length",
            Error::ShapeMismatch { .. },
            reference::act_forward(Act::Elu, &z(4), &mut [0f64; 2])
        ),
    ]);
}

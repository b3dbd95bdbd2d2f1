//! Bad input to every public function of `ember-kernels`, table-driven: each row is a call
//! with one thing wrong (a length, a zero or overflowing dimension, strides that alias or
//! run out of bounds, an algorithm that cannot compute the shape, an ISA this CPU lacks)
//! and the error it must return. A row fails if the call panics, succeeds, or returns a
//! different error. The optimized kernels and their references are both covered.
//!
//! One file per op family; this one holds the harness (a row is a `Case`, `run`
//! reports every failing row at once) and the imports the families share. The families'
//! modules come last, after the `case!` macro they use.

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
    accumulate, accumulate_in_order, adam_update, adam_update_summed, add_forward, bias_add, bias_grad, relu_backward,
    rms_update, rms_update_summed, sgd_update, sgd_update_summed, softmax, softmax_cross_entropy,
    softmax_cross_entropy_sum, AdamParams, RmsParams, SgdParams,
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

/// A valid 1 x 6 x 6 x 2 -> 3x3x2x4 convolution (output 4 x 4 x 4) for the length rows.
fn conv() -> Conv2d {
    Conv2d::simple([1, 6, 6, 2], [3, 3, 2, 4], Padding::Valid).unwrap()
}

mod batchnorm;
mod conv;
mod elementwise;
mod fused;
mod gemm;
mod linear;
mod pool;

//! Naive references for every kernel, accumulating in f64. Tests, benchmarks and fuzz
//! targets all verify against these. A reference never calls optimized code.

mod activation;
mod batchnorm;
mod conv;
mod depthwise;
mod dropout;
mod fused;
mod gemm;
mod linear;
mod pool;

pub use activation::{act, act_forward};
pub use batchnorm::{batch_norm_add, batch_norm_training};
pub use conv::{conv2d_backward_data, conv2d_backward_filter, conv2d_forward};
pub use depthwise::{depthwise_backward_data, depthwise_backward_filter, depthwise_forward};
pub use dropout::dropout_mask;
pub use fused::{conv_relu_maxpool_backward_filter, conv_relu_maxpool_forward};
pub use gemm::sgemm;
pub use linear::{linear_backward_data, linear_backward_weights, linear_forward};
pub use pool::{avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward};

/// Deterministic pseudo-random values in [-1, 1) (xorshift64), the operand generator shared by
/// tests, benchmarks and fuzz targets so they all see the same data for a seed.
pub fn fill_uniform(seed: u64, len: usize) -> Vec<f32> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

//! Naive references for every kernel, accumulating in f64. Tests, benchmarks and fuzz
//! targets all verify against these. A reference never calls optimized code.

mod conv;
mod gemm;
mod pool;

pub use conv::{conv2d_backward_data, conv2d_backward_filter, conv2d_forward};
pub use gemm::sgemm;
pub use pool::{avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward};

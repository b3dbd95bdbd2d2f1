//! Naive references for every kernel, accumulating in f64. Tests, benchmarks and fuzz
//! targets all verify against these. A reference never calls optimized code.

mod gemm;

pub use gemm::sgemm;

//! Descriptors: the validated shapes every kernel, and its reference, works on. They live
//! here, apart from the optimized modules, so that `reference` imports descriptors and
//! never optimized code; each optimized module re-exports its own (`conv::Conv2d`,
//! `pool::Pool2d`, `gemm::MatRef`, ...).

mod act;
mod conv;
mod depthwise;
mod fused;
mod linear;
mod matrix;
mod pool;

pub use crate::geometry::Padding;
pub use act::Act;
pub use conv::Conv2d;
pub use depthwise::Depthwise2d;
pub use fused::ConvReluPool;
pub use linear::Linear;
pub use matrix::{MatMut, MatRef};
pub use pool::{Pool2d, NO_ARGMAX};

//! Fusion rules: one file per rule, each a function that looks at the graph around a node
//! and returns the fused op, or `None`. A rule fires only where the values it swallows have
//! a single consumer (nothing else reads them), so fusing never changes what the rest of the
//! graph sees. The kernels of a fused op live in `ember_kernels` beside their references.

pub(crate) mod add_relu;
pub(crate) mod bn_relu;
pub(crate) mod conv_bn_fold;
pub(crate) mod conv_relu_pool;
pub(crate) mod cross_entropy_logits;

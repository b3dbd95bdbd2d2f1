//! The elementwise activation kinds (the kernels are in `activation`).

/// An elementwise activation (softmax, which works on rows, is in `elementwise`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Act {
    /// The identity.
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// The logistic function.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Exponential linear unit, α = 1.
    Elu,
    /// Scaled ELU (Klambauer et al.).
    Selu,
    /// Gaussian error linear unit, the exact form (Keras's default, `approximate=False`).
    Gelu,
    /// `x σ(x)` (Keras's `silu`, also `swish`).
    Silu,
    /// Leaky ReLU with Keras's default negative slope 0.2.
    LeakyRelu,
    /// `ln(1 + e^x)`.
    Softplus,
}

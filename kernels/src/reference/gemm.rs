use crate::desc::{MatMut, MatRef};
use crate::error::{Error, Result};

/// Naive `C = alpha * A * B + beta * C`, each dot product accumulated in f64 and rounded
/// once. `beta = 0` overwrites C without reading it (BLAS semantics).
pub fn sgemm(alpha: f32, a: MatRef, b: MatRef, beta: f32, c: &mut MatMut) -> Result<()> {
    let (m, k, n) = (a.rows(), a.cols(), b.cols());
    if b.rows() != k {
        return Err(Error::ShapeMismatch { what: "A.cols vs B.rows", expected: k, got: b.rows() });
    }
    if c.rows() != m || c.cols() != n {
        return Err(Error::ShapeMismatch {
            what: "C shape vs A.rows x B.cols",
            expected: m * n,
            got: c.rows() * c.cols(),
        });
    }
    c.for_each(|i, j, cij| {
        let dot: f64 = (0..k).map(|p| f64::from(a.at(i, p)) * f64::from(b.at(p, j))).sum();
        let prev = if beta == 0.0 { 0.0 } else { f64::from(beta) * f64::from(*cij) };
        *cij = (f64::from(alpha) * dot + prev) as f32;
    });
    Ok(())
}

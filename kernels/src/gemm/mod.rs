//! Single-precision GEMM: `C = alpha * A * B + beta * C`, BLIS-style (packed panels, cache
//! blocking, register-tiled microkernels per ISA, rayon threads).
//!
//! Operands are strided views ([`MatRef`], [`MatMut`]), so transposes are free. `beta = 0`
//! has BLAS semantics: C is overwritten and never read (NaN in C is ignored). A weight matrix
//! used many times can be packed once into a [`PackedB`]. An [`Epilogue`] adds a per-column
//! bias and applies ReLU in the same pass that stores C.
//!
//! ```
//! use ember_kernels::gemm::{sgemm, MatMut, MatRef};
//! use ember_kernels::Ctx;
//! let a = [1.0, 2.0, 3.0, 4.0]; // 2x2, row-major
//! let b = [1.0, 0.0, 0.0, 1.0];
//! let mut c = [0.0; 4];
//! sgemm(&Ctx::new(), 1.0, MatRef::row_major(&a, 2, 2)?, MatRef::row_major(&b, 2, 2)?, 0.0,
//!       MatMut::row_major(&mut c, 2, 2)?)?;
//! assert_eq!(c, a);
//! # Ok::<(), ember_kernels::Error>(())
//! ```

mod driver;
pub(crate) mod kernel;
mod pack;
mod ukr;

pub use crate::desc::{MatMut, MatRef};

use crate::arch::Isa;
use crate::error::{Error, Result, MAX_ELEMENTS};
use crate::Ctx;
use driver::{BSource, Epi};

/// Optional work fused into the store of C: `C[i][j] = relu?(alpha*AB + beta*C + bias[j])`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// Per-column bias, `n` floats.
    pub bias: Option<&'a [f32]>,
    /// Clamp at zero after the bias.
    pub relu: bool,
}

impl Epilogue<'_> {
    /// No epilogue.
    pub const NONE: Epilogue<'static> = Epilogue { bias: None, relu: false };
}

/// The right-hand operand of [`sgemm`]: a view (`MatRef`) or a prepacked `&PackedB`
/// (both convert into it).
#[derive(Debug, Clone, Copy)]
pub enum Rhs<'a> {
    /// A strided view, packed block by block during the call.
    View(MatRef<'a>),
    /// A B packed once ahead of time (for `ctx.isa`).
    Packed(&'a PackedB),
}

impl<'a> From<MatRef<'a>> for Rhs<'a> {
    fn from(v: MatRef<'a>) -> Self {
        Rhs::View(v)
    }
}

impl<'a> From<&'a PackedB> for Rhs<'a> {
    fn from(p: &'a PackedB) -> Self {
        Rhs::Packed(p)
    }
}

/// `C = alpha * A * B + beta * C` on `ctx.isa`. A is `m x k`, B `k x n` (a view, or packed
/// for the same ISA), C `m x n`. Uses the current rayon pool's threads for large products;
/// results do not depend on the thread count.
pub fn sgemm<'b>(ctx: &Ctx, alpha: f32, a: MatRef, b: impl Into<Rhs<'b>>, beta: f32, c: MatMut) -> Result<()> {
    sgemm_epilogue(ctx, alpha, a, b, beta, c, Epilogue::NONE)
}

/// [`sgemm`] with an epilogue fused into the store of C (bias, ReLU).
pub fn sgemm_epilogue<'b>(
    ctx: &Ctx,
    alpha: f32,
    a: MatRef,
    b: impl Into<Rhs<'b>>,
    beta: f32,
    c: MatMut,
    epilogue: Epilogue,
) -> Result<()> {
    sgemm_threads(ctx.isa, alpha, a, b.into(), beta, c, epilogue, rayon::current_num_threads(), false)
}

/// [`sgemm_epilogue`] on at most `threads` threads (1: on the calling thread only), for callers
/// that already run in parallel at a coarser grain. `unpacked` asks for the kernels that
/// read A and B in place whenever the ISA has them, for operands too small to repay packing.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm_threads(
    isa: Isa,
    alpha: f32,
    a: MatRef,
    b: Rhs,
    beta: f32,
    mut c: MatMut,
    epilogue: Epilogue,
    threads: usize,
    unpacked: bool,
) -> Result<()> {
    isa.check()?;
    let (k, n) = match b {
        Rhs::View(v) => (v.rows(), v.cols()),
        Rhs::Packed(p) => {
            if p.isa != isa {
                return Err(Error::PackedForOtherIsa { packed_for: p.isa, requested: isa });
            }
            (p.k, p.n)
        }
    };
    if a.cols() != k {
        return Err(Error::ShapeMismatch { what: "A.cols vs B.rows", expected: k, got: a.cols() });
    }
    if c.rows() != a.rows() {
        return Err(Error::ShapeMismatch { what: "C.rows vs A.rows", expected: a.rows(), got: c.rows() });
    }
    if c.cols() != n {
        return Err(Error::ShapeMismatch { what: "C.cols vs B.cols", expected: n, got: c.cols() });
    }
    if let Some(bias) = epilogue.bias {
        if bias.len() != n {
            return Err(Error::ShapeMismatch { what: "bias length vs C.cols", expected: n, got: bias.len() });
        }
    }
    let m = a.rows();
    // Zero-stride (broadcast) views do not bound their shape by a buffer: refuse products
    // whose operands could not exist as dense f32 arrays (the packing scratch is sized from
    // them, and such a product would not finish anyway).
    for (name, r, c) in [("A (m x k)", m, k), ("B (k x n)", k, n), ("C (m x n)", m, n)] {
        if r.checked_mul(c).is_none_or(|e| e > MAX_ELEMENTS) {
            return Err(Error::SizeOverflow { name });
        }
    }
    let epi = Epi { bias: epilogue.bias, relu: epilogue.relu };
    let (src, nr) = match b {
        Rhs::View(v) => {
            let nopack = kernel::nopack_kernels_for(isa);
            if !nopack.is_empty() && (v.col_stride() == 1 || n == 1) && (unpacked || kernel::prefers_nopack(m, n, k)) {
                let kern = kernel::select_nopack(nopack, m, n);
                debug_assert_eq!(kern.isa, isa);
                driver::gemm_nopack(kern, alpha, &a, &v, beta, &mut c, epi, threads);
                return Ok(());
            }
            (BSource::View(v), None)
        }
        Rhs::Packed(p) => (BSource::Packed(p), Some(p.nr)),
    };
    let kern = kernel::select(isa, m, n, nr);
    debug_assert!(kern.isa == isa || kern.isa == Isa::Scalar);
    driver::gemm(kern, alpha, &a, src, beta, &mut c, epi, threads);
    Ok(())
}

/// A strided batch of products (BLAS's `gemm_strided_batched`): product `i` is
/// `C_i = alpha A_i B_i + beta C_i`, where `A_i` is the view `a` moved `i * steps[0]`
/// elements further into its buffer, `B_i` the view `b` moved `i * steps[1]`, and `C_i`
/// the `m x n` output with rows `rs_c` apart (columns adjacent) at `c[i * steps[2]..]`.
/// The products run one after another on the calling thread, on the kernels that read A
/// and B in place where the ISA has them ([`sgemm_threads`] with `unpacked`); shapes, the
/// ISA and the kernel are checked and chosen once for the batch, not per product: for
/// callers that run many small products of one shape, where the per-call work of
/// [`sgemm_threads`] is a visible share of the arithmetic. Where the kernel reads A in
/// place, every product's tiles run in one loop ([`driver::gemm_nopack_batch`]). A batch
/// with any product's view past its buffer is refused before anything is written.
pub(crate) fn sgemm_strided_batch(
    isa: Isa,
    count: usize,
    alpha: f32,
    (a, b): (MatRef, MatRef),
    beta: f32,
    (m, n, rs_c, c): (usize, usize, usize, &mut [f32]),
    steps: [usize; 3],
) -> Result<()> {
    isa.check()?;
    let k = a.cols();
    if b.rows() != k {
        return Err(Error::ShapeMismatch { what: "A.cols vs B.rows", expected: k, got: b.rows() });
    }
    if a.rows() != m {
        return Err(Error::ShapeMismatch { what: "C.rows vs A.rows", expected: a.rows(), got: m });
    }
    if b.cols() != n {
        return Err(Error::ShapeMismatch { what: "C.cols vs B.cols", expected: n, got: b.cols() });
    }
    // Where the ISA has no unpacked kernel for these operands, each product takes the
    // general path (which packs).
    let nopack = kernel::nopack_kernels_for(isa);
    let unpacked = !nopack.is_empty() && (b.col_stride() == 1 || n == 1);
    let kern = unpacked.then(|| kernel::select_nopack(nopack, m, n));
    let offset = |i: usize, len: usize, step: usize| -> Result<usize> {
        let needed = i.saturating_mul(step);
        (needed <= len).then_some(needed).ok_or(Error::BufferTooSmall { name: "strided batch", needed, len })
    };
    if count == 0 {
        return Ok(());
    }
    // The last product lies furthest into each buffer: where its views fit, every earlier
    // product's (the same shape, nearer the start) fit too. Checked first, so that a batch
    // that does not fit writes nothing.
    let last = count - 1;
    let (oa, ob, oc) = (
        offset(last, a.data().len(), steps[0])?,
        offset(last, b.data().len(), steps[1])?,
        offset(last, c.len(), steps[2])?,
    );
    MatRef::new(&a.data()[oa..], m, k, a.row_stride(), a.col_stride())?;
    MatRef::new(&b.data()[ob..], k, n, b.row_stride(), b.col_stride())?;
    MatMut::new(&mut c[oc..], m, n, rs_c, 1)?;
    // One unpacked kernel over the whole batch, tile after tile, where it reads A in place
    // (one column panel, or a kernel without a packed-A twin) and there is arithmetic to
    // do: the per-product views and dispatch were ~7% of Winograd's 32-deep products.
    if let Some(kern) = kern.filter(|kr| (n <= kr.nr || kr.packed_a.is_none()) && k > 0 && alpha != 0.0) {
        if m == 0 || n == 0 {
            return Ok(());
        }
        let mut c = MatMut::new(c, m, n, rs_c, 1)?;
        driver::gemm_nopack_batch(kern, alpha, (&a, &b), beta, &mut c, steps, count);
        return Ok(());
    }
    for i in 0..count {
        let ai = MatRef::new(&a.data()[offset(i, a.data().len(), steps[0])?..], m, k, a.row_stride(), a.col_stride())?;
        let bi = MatRef::new(&b.data()[offset(i, b.data().len(), steps[1])?..], k, n, b.row_stride(), b.col_stride())?;
        let oc = offset(i, c.len(), steps[2])?;
        let mut ci = MatMut::new(&mut c[oc..], m, n, rs_c, 1)?;
        match kern {
            Some(kern) => driver::gemm_nopack(kern, alpha, &ai, &bi, beta, &mut ci, Epi { bias: None, relu: false }, 1),
            None => sgemm_threads(isa, alpha, ai, Rhs::View(bi), beta, ci, Epilogue::NONE, 1, true)?,
        }
    }
    Ok(())
}

/// A `k x n` B matrix packed once into the panel layout of one ISA's microkernels, for
/// reuse across many products (convolution filters, dense weights). [`PackedB::repack`]
/// refreshes it after the weights change without reallocating.
#[derive(Debug)]
pub struct PackedB {
    isa: Isa,
    k: usize,
    n: usize,
    nr: usize,
    buf: Vec<f32>,
}

/// A clone copies the panels into an allocation of its own, at that allocation's 64-byte
/// aligned offset (a derived `Clone` would copy the buffer verbatim, and `panels()` would
/// then read it from the new allocation's offset: shifted panels, wrong products).
impl Clone for PackedB {
    fn clone(&self) -> Self {
        let mut buf = Vec::new();
        let len = self.n.div_ceil(self.nr) * self.k * self.nr;
        crate::scratch::aligned_window(&mut buf, len).copy_from_slice(self.panels());
        PackedB { isa: self.isa, k: self.k, n: self.n, nr: self.nr, buf }
    }
}

impl PackedB {
    /// Packs `b` for `ctx.isa`'s microkernels.
    pub fn new(ctx: &Ctx, b: MatRef) -> Result<Self> {
        let isa = ctx.isa.check()?;
        let mut p = PackedB { isa, k: 0, n: 0, nr: 1, buf: Vec::new() };
        p.repack(b)?;
        Ok(p)
    }

    /// Packs new contents (any shape) into this buffer, reusing its allocation.
    pub fn repack(&mut self, b: MatRef) -> Result<()> {
        let (k, n) = (b.rows(), b.cols());
        // The panel width depends only on n (m is not known yet): ask for a tall product.
        let nr = kernel::select(self.isa, 1 << 12, n, None).nr;
        let len = k
            .checked_mul(nr)
            .and_then(|p| p.checked_mul(n.div_ceil(nr)))
            .filter(|&l| l <= MAX_ELEMENTS)
            .ok_or(Error::SizeOverflow { name: "PackedB" })?;
        let panels = crate::scratch::aligned_window(&mut self.buf, len);
        if len > 0 {
            pack::pack_b(&b, 0, k, 0, n, nr, k * nr, panels);
        }
        (self.k, self.n, self.nr) = (k, n, nr);
        Ok(())
    }

    /// Rows (the product's depth).
    pub fn rows(&self) -> usize {
        self.k
    }
    /// Columns.
    pub fn cols(&self) -> usize {
        self.n
    }
    /// The ISA this was packed for.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The packed panels, 64-byte aligned: `ceil(n/nr)` panels of `k x nr`.
    fn panels(&self) -> &[f32] {
        let len = self.n.div_ceil(self.nr) * self.k * self.nr;
        let off = self.buf.as_ptr().align_offset(64).min(16);
        &self.buf[off..off + len]
    }
}

/// The name of the microkernel [`sgemm`] would use for an `m x n` output on `isa`
/// with a row-major B (for benchmarks and reports), e.g. `f32-gemm-14x32-avx512`.
pub fn kernel_name(isa: Isa, m: usize, n: usize, k: usize) -> &'static str {
    let nopack = kernel::nopack_kernels_for(isa);
    if !nopack.is_empty() && kernel::prefers_nopack(m, n, k) {
        return kernel::select_nopack(nopack, m, n).name;
    }
    kernel::select(isa, m, n, None).name
}

#[cfg(test)]
mod strided_batch_tests {
    use super::*;

    /// Fills `len` floats with a fixed pattern of small values (exact sums are not needed:
    /// the batch is compared bit for bit with the per-product path).
    fn pattern(seed: usize, len: usize) -> Vec<f32> {
        (0..len).map(|i| ((i * 7919 + seed * 104_729) % 1013) as f32 / 512.0 - 1.0).collect()
    }

    /// Each product of the batch is the per-product path's (`sgemm_threads`, unpacked, one
    /// thread: the kernels and tiles the batch used before it ran them in one loop), bit for
    /// bit, on every ISA here, with operands interleaved as Winograd's are (product `i`'s
    /// rows `count` products apart).
    #[test]
    fn batch_is_the_per_product_path() {
        // (m, n, k): Winograd's shapes (one panel, a packed-A twin with two panels), edges.
        let shapes =
            [(42, 32, 32), (24, 64, 64), (8, 64, 64), (32, 32, 112), (13, 5, 7), (1, 1, 1), (30, 17, 3), (5, 40, 0)];
        for isa in Isa::available() {
            for (m, n, k) in shapes {
                for (alpha, beta) in [(1.0, 0.0), (0.5, 2.0), (0.0, 1.5)] {
                    let count = 4;
                    // Interleaved: row r of product i at (r * count + i) * width.
                    let a = pattern(1, m * count * k.max(1));
                    let b = pattern(2, k.max(1) * count * n);
                    let c0 = pattern(3, m * count * n);
                    let av = MatRef::new(&a, m, k, count * k, 1).unwrap();
                    let bv = MatRef::new(&b, k, n, count * n, 1).unwrap();
                    let mut got = c0.clone();
                    sgemm_strided_batch(isa, count, alpha, (av, bv), beta, (m, n, count * n, &mut got), [k, n, n])
                        .unwrap();
                    let mut want = c0.clone();
                    for i in 0..count {
                        let ai = MatRef::new(&a[i * k..], m, k, count * k, 1).unwrap();
                        let bi = MatRef::new(&b[i * n..], k, n, count * n, 1).unwrap();
                        let ci = MatMut::new(&mut want[i * n..], m, n, count * n, 1).unwrap();
                        sgemm_threads(isa, alpha, ai, Rhs::View(bi), beta, ci, Epilogue::NONE, 1, true).unwrap();
                    }
                    let same = got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits());
                    assert!(same, "{isa:?} {m}x{n}x{k} alpha {alpha} beta {beta}");
                }
            }
        }
    }

    /// A batch whose last product would leave a buffer is refused before anything is
    /// written.
    #[test]
    fn batch_past_a_buffer_is_refused() {
        let (m, n, k, count) = (14, 32, 32, 3);
        for isa in Isa::available() {
            let a = pattern(1, m * count * k);
            let b = pattern(2, k * count * n);
            let av = MatRef::new(&a, m, k, count * k, 1).unwrap();
            let bv = MatRef::new(&b, k, n, count * n, 1).unwrap();
            // C one float short of the last product's last row.
            let mut c = vec![7.0f32; m * count * n - 1];
            let r = sgemm_strided_batch(isa, count, 1.0, (av, bv), 0.0, (m, n, count * n, &mut c), [k, n, n]);
            assert!(r.is_err(), "{isa:?}");
            assert!(c.iter().all(|&v| v == 7.0), "{isa:?}: written before the refusal");
            // A one product too far: its rows start past its buffer's end.
            let mut c = vec![0.0f32; m * count * n];
            let r = sgemm_strided_batch(isa, count + 1, 1.0, (av, bv), 0.0, (m, n, count * n, &mut c), [k, n, n]);
            assert!(r.is_err(), "{isa:?}");
        }
    }
}

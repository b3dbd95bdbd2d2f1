//! Convolution lowered onto the GEMM (im2col): the input patches of a block of output pixels
//! are copied into rows of a matrix (`[pixels, kh*kw*cin]`, NHWC makes each tap a contiguous
//! run of `cin`), which multiplies the filter, already a `[kh*kw*cin, cout]` matrix in HWIO.
//! A 1x1, stride-1, unpadded convolution needs no copy at all: the input *is* that matrix.
//!
//! Work is split into blocks of output pixels sized to keep the lowered block in L2; the
//! block size depends only on the shape, never on the thread count, so results are
//! bit-identical for any number of threads.

use super::Conv2d;
use crate::arch::Isa;
use crate::error::Result;
use crate::gemm::{sgemm_epilogue, Epilogue, MatMut, MatRef, Rhs};
use crate::scratch::{with_scratch, Slot};
use crate::Ctx;
use rayon::prelude::*;

/// Floats of lowered input per block (256 KiB: half of a typical L2).
const LOWERED_BUDGET: usize = 64 * 1024;

/// Rows (output pixels) per lowered block.
fn block_rows(c: &Conv2d) -> usize {
    (LOWERED_BUDGET / c.patch_len()).max(16)
}

/// Whether the input is already the lowered matrix.
fn is_pointwise(c: &Conv2d) -> bool {
    c.kh == 1 && c.kw == 1 && c.sh == 1 && c.sw == 1 && c.ho == c.h && c.wo == c.w
}

/// Writes the patches of output pixels `p0..p0 + rows` (flat over n, oy, ox) into `out`,
/// one row of `kh*kw*cin` per pixel; taps in the padding are zeros.
fn lower(c: &Conv2d, x: &[f32], p0: usize, out: &mut [f32]) {
    let (cin, plane) = (c.cin, c.ho * c.wo);
    for (r, row) in out.chunks_exact_mut(c.patch_len()).enumerate() {
        let p = p0 + r;
        let (n, oy, ox) = (p / plane, p % plane / c.wo, p % c.wo);
        for (ky, row_ky) in row.chunks_exact_mut(c.kw * cin).enumerate() {
            let iy = c.in_y(oy, ky);
            for (kx, dst) in row_ky.chunks_exact_mut(cin).enumerate() {
                match (iy, c.in_x(ox, kx)) {
                    // A single channel (first layers) is one load: a memcpy call per tap
                    // would cost more than the copy.
                    (Some(iy), Some(ix)) => {
                        let at = ((n * c.h + iy) * c.w + ix) * cin;
                        if cin == 1 {
                            dst[0] = x[at];
                        } else {
                            dst.copy_from_slice(&x[at..at + cin]);
                        }
                    }
                    _ => dst.fill(0.0),
                }
            }
        }
    }
}

/// Adds the rows of `cols` (patch gradients of pixels `p0..`, all in image `n`) back into
/// the input gradient `dx_img` of that image: the adjoint of [`lower`].
fn unlower_add(c: &Conv2d, cols: &[f32], p0: usize, dx_img: &mut [f32]) {
    let (cin, plane) = (c.cin, c.ho * c.wo);
    for (r, row) in cols.chunks_exact(c.patch_len()).enumerate() {
        let p = (p0 + r) % plane;
        let (oy, ox) = (p / c.wo, p % c.wo);
        for (ky, row_ky) in row.chunks_exact(c.kw * cin).enumerate() {
            let Some(iy) = c.in_y(oy, ky) else { continue };
            for (kx, src) in row_ky.chunks_exact(cin).enumerate() {
                let Some(ix) = c.in_x(ox, kx) else { continue };
                let dst = &mut dx_img[(iy * c.w + ix) * cin..][..cin];
                dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
            }
        }
    }
}

/// `y = relu?(lower(x) * w + bias)`.
pub(crate) fn forward(
    isa: Isa,
    c: &Conv2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) -> Result<()> {
    let (m, k, n) = (c.pixels(), c.patch_len(), c.cout);
    let wv = Rhs::View(MatRef::row_major(w, k, n)?);
    let epi = Epilogue { bias, relu };
    if is_pointwise(c) {
        return sgemm_epilogue(
            &Ctx::for_isa(isa),
            1.0,
            MatRef::row_major(x, m, k)?,
            wv,
            0.0,
            MatMut::row_major(y, m, n)?,
            epi,
        );
    }
    let rows = block_rows(c);
    y.par_chunks_mut(rows * n).enumerate().try_for_each(|(b, yb)| {
        let rb = yb.len() / n;
        with_scratch(Slot::Lowered, rb * k, |buf| {
            lower(c, x, b * rows, buf);
            sgemm_epilogue(
                &Ctx::for_isa(isa),
                1.0,
                MatRef::row_major(buf, rb, k)?,
                wv,
                0.0,
                MatMut::row_major(yb, rb, n)?,
                epi,
            )
        })
    })
}

/// `dx = unlower(dy * wᵀ)`. Images are independent (their windows never overlap), so they
/// run in parallel; blocks within an image run in order.
pub(crate) fn backward_data(isa: Isa, c: &Conv2d, dy: &[f32], w: &[f32], dx: &mut [f32]) -> Result<()> {
    let (m, k, n) = (c.pixels(), c.patch_len(), c.cout);
    // wᵀ as a view: [cout, kh*kw*cin].
    let wt = Rhs::View(MatRef::new(w, n, k, 1, n)?);
    if is_pointwise(c) {
        return sgemm_epilogue(
            &Ctx::for_isa(isa),
            1.0,
            MatRef::row_major(dy, m, n)?,
            wt,
            0.0,
            MatMut::row_major(dx, m, k)?,
            Epilogue::NONE,
        );
    }
    let plane = c.ho * c.wo;
    let rows = block_rows(c).min(plane);
    let img_len = c.h * c.w * c.cin;
    if img_len == 0 || dx.is_empty() {
        return Ok(());
    }
    dx.par_chunks_mut(img_len).enumerate().try_for_each(|(img, dx_img)| {
        dx_img.fill(0.0);
        for p in (0..plane).step_by(rows) {
            let rb = rows.min(plane - p);
            let p0 = img * plane + p;
            let dyb = MatRef::row_major(&dy[p0 * n..(p0 + rb) * n], rb, n)?;
            with_scratch(Slot::Lowered, rb * k, |buf| {
                sgemm_epilogue(&Ctx::for_isa(isa), 1.0, dyb, wt, 0.0, MatMut::row_major(buf, rb, k)?, Epilogue::NONE)?;
                unlower_add(c, buf, p0, dx_img);
                Ok(())
            })?;
        }
        Ok(())
    })
}

/// `dw = Σ_blocks lower(x)ᵀ * dy`, blocks accumulated in a fixed order.
pub(crate) fn backward_filter(isa: Isa, c: &Conv2d, x: &[f32], dy: &[f32], dw: &mut [f32]) -> Result<()> {
    let (m, k, n) = (c.pixels(), c.patch_len(), c.cout);
    if is_pointwise(c) {
        let xt = MatRef::row_major(x, m, k)?.t();
        let dyv = Rhs::View(MatRef::row_major(dy, m, n)?);
        return sgemm_epilogue(&Ctx::for_isa(isa), 1.0, xt, dyv, 0.0, MatMut::row_major(dw, k, n)?, Epilogue::NONE);
    }
    if m == 0 {
        dw.fill(0.0);
        return Ok(());
    }
    let rows = block_rows(c);
    for p0 in (0..m).step_by(rows) {
        let rb = rows.min(m - p0);
        with_scratch(Slot::Lowered, rb * k, |buf| {
            lower(c, x, p0, buf);
            let at = MatRef::row_major(buf, rb, k)?.t();
            let dyb = Rhs::View(MatRef::row_major(&dy[p0 * n..(p0 + rb) * n], rb, n)?);
            let beta = if p0 == 0 { 0.0 } else { 1.0 };
            sgemm_epilogue(&Ctx::for_isa(isa), 1.0, at, dyb, beta, MatMut::row_major(dw, k, n)?, Epilogue::NONE)
        })?;
    }
    Ok(())
}

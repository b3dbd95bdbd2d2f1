//! Packing: copies blocks of A and B into the panel layouts the microkernels read
//! (see [`super::kernel`]), padding partial panels with zeros.

use crate::desc::MatRef;

/// Packs rows `i0..i0+mc`, columns `p0..p0+kc` of `a` into `ceil(mc/mr)` panels of
/// `kc x mr` (column `p` of panel `q` at `out[q*mr*kc + p*mr..][..mr]`).
pub(crate) fn pack_a(a: &MatRef, i0: usize, mc: usize, p0: usize, kc: usize, mr: usize, out: &mut [f32]) {
    let (data, rs, cs) = (a.data(), a.row_stride(), a.col_stride());
    for (q, panel) in out.chunks_exact_mut(mr * kc).take(mc.div_ceil(mr)).enumerate() {
        let ib = i0 + q * mr;
        let rows = mr.min(i0 + mc - ib);
        if rows < mr {
            panel.fill(0.0);
        }
        if cs == 1 {
            // Row-major A: a transpose. Read 8 consecutive values of each row, write them to
            // 8 packed columns; fixed-size chunks let LLVM drop the bounds checks.
            const W: usize = 8;
            let full = kc / W * W;
            for i in 0..rows {
                let src = &data[(ib + i) * rs + p0..][..kc];
                for (pb, chunk) in src[..full].chunks_exact(W).enumerate() {
                    let dst = &mut panel[pb * W * mr..][..W * mr];
                    for (t, &x) in chunk.iter().enumerate() {
                        dst[t * mr + i] = x;
                    }
                }
                for p in full..kc {
                    panel[p * mr + i] = src[p];
                }
            }
        } else if rs == 1 {
            // Column-major A: each packed column is a contiguous copy.
            for (p, dst) in panel.chunks_exact_mut(mr).enumerate() {
                dst[..rows].copy_from_slice(&data[ib + (p0 + p) * cs..][..rows]);
            }
        } else {
            for (p, dst) in panel.chunks_exact_mut(mr).enumerate() {
                for (i, d) in dst[..rows].iter_mut().enumerate() {
                    *d = data[(ib + i) * rs + (p0 + p) * cs];
                }
            }
        }
    }
}

/// Packs rows `p0..p0+kc`, columns `j0..j0+nc` of `b` into `ceil(nc/nr)` panels of
/// `kc x nr`, panel `q` starting at `out[q * panel_stride]` (row `p` at `+ p*nr`).
/// `panel_stride >= kc * nr`; a prepacked B uses `k * nr` so any depth block is contiguous.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pack_b(
    b: &MatRef,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    nr: usize,
    panel_stride: usize,
    out: &mut [f32],
) {
    let (data, rs, cs) = (b.data(), b.row_stride(), b.col_stride());
    for (q, panel) in out.chunks_mut(panel_stride).take(nc.div_ceil(nr)).enumerate() {
        let jb = j0 + q * nr;
        let cols = nr.min(j0 + nc - jb);
        let panel = &mut panel[..kc * nr];
        if cols < nr {
            panel.fill(0.0);
        }
        if cs == 1 {
            for (p, dst) in panel.chunks_exact_mut(nr).enumerate() {
                dst[..cols].copy_from_slice(&data[(p0 + p) * rs + jb..][..cols]);
            }
        } else if rs == 1 {
            // Column-major B: read each column contiguously, scatter with stride nr.
            for j in 0..cols {
                let src = &data[(jb + j) * cs + p0..][..kc];
                for (dst, &x) in panel[j..].iter_mut().step_by(nr).zip(src) {
                    *dst = x;
                }
            }
        } else {
            for (p, dst) in panel.chunks_exact_mut(nr).enumerate() {
                for (j, d) in dst[..cols].iter_mut().enumerate() {
                    *d = data[(p0 + p) * rs + (jb + j) * cs];
                }
            }
        }
    }
}

//! Padded copies of activations, so that the direct kernels read every tap of every output
//! pixel from memory without bounds checks (Winograd reads its input in place and loads
//! zeros past the edges itself), and the transposed problem that turns backward-data into a
//! forward convolution.

use super::Conv2d;
use crate::arch::simd::{simd_dispatch, F32x};
use crate::arch::Isa;
use crate::scratch::{with_scratch, Slot};
use rayon::prelude::*;

/// An NHWC batch in which every tap the kernels read is in bounds: `n` images of
/// `h x w` pixels (the physical row and image strides) of `c` channels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Src<'a> {
    pub data: &'a [f32],
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

/// How to place a source batch `[n, h, w, c]` inside a zero canvas of `hp x wp` pixels:
/// source pixel `(y, x)` goes to `(top + y, left + x)` (a negative `top`/`left` crops).
/// Canvas cells with no source pixel are zero.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement {
    pub top: isize,
    pub left: isize,
    pub hp: usize,
    pub wp: usize,
}

impl Placement {
    /// Whether the source itself already satisfies the placement (no copy needed).
    fn is_identity(&self, h: usize, w: usize) -> bool {
        self.top == 0 && self.left == 0 && self.hp <= h && self.wp <= w
    }
}

/// Runs `f` on `x` (`[n, h, w, c]`) placed per `pl`: `x` itself when it already fits, else a
/// padded copy in this thread's scratch.
pub(crate) fn with_placed<R>(x: &[f32], [n, h, w, c]: [usize; 4], pl: Placement, f: impl FnOnce(Src) -> R) -> R {
    if pl.is_identity(h, w) {
        return f(Src { data: x, h, w, c });
    }
    let img = pl.hp * pl.wp * c;
    with_scratch(Slot::Aux, n * img, |buf| {
        if img > 0 {
            buf.par_chunks_mut(img)
                .enumerate()
                .for_each(|(i, dst)| place_image(&x[i * h * w * c..][..h * w * c], [h, w, c], pl, dst));
        }
        f(Src { data: buf, h: pl.hp, w: pl.wp, c })
    })
}

fn place_image(x: &[f32], [h, w, c]: [usize; 3], pl: Placement, dst: &mut [f32]) {
    for (r, row) in dst.chunks_exact_mut(pl.wp * c).enumerate() {
        let sy = r as isize - pl.top;
        if sy < 0 || sy as usize >= h {
            row.fill(0.0);
            continue;
        }
        place_row(&x[sy as usize * w * c..][..w * c], c, pl.left, row);
    }
}

/// `dst` (canvas columns `0..`, `c` channels each) from the image row `src`, whose column
/// `x` sits at canvas column `left + x`; canvas columns off the image are zero.
pub(crate) fn place_row(src: &[f32], c: usize, left: isize, dst: &mut [f32]) {
    let (w, wp) = ((src.len() / c) as isize, (dst.len() / c) as isize);
    // Canvas columns [d0, d1) come from image columns [d0 - left, d1 - left).
    let (d0, d1) = (left.clamp(0, wp), (left + w).clamp(0, wp));
    let (d0, d1) = (d0 as usize, d1.max(d0) as usize);
    dst[..d0 * c].fill(0.0);
    if d1 > d0 {
        let x0 = (d0 as isize - left) as usize;
        dst[d0 * c..d1 * c].copy_from_slice(&src[x0 * c..(x0 + d1 - d0) * c]);
    }
    dst[d1 * c..].fill(0.0);
}

/// The canvas a forward convolution reads: padding on top/left, and enough rows/columns on
/// the bottom/right for every tap of `rows x cols` output pixels (more than `ho x wo` when an
/// algorithm computes whole tiles).
pub(crate) fn forward_placement(c: &Conv2d, rows: usize, cols: usize) -> Placement {
    Placement {
        top: c.pad_top as isize,
        left: c.pad_left as isize,
        hp: (rows - 1) * c.sh + (c.kh - 1) * c.dh + 1,
        wp: (cols - 1) * c.sw + (c.kw - 1) * c.dw + 1,
    }
}

/// Backward-data of a stride-1 convolution as a forward convolution: `dx = conv(dy, flip(w)ᵀ)`,
/// the filter rotated by 180° with its channel axes swapped. Returns the geometry of that
/// forward problem (input channels = `cout`, output = `[n, h, w, cin]`) and where `dy` goes
/// in its canvas for an output of `rows x cols` pixels. (Strided convolutions go by stride
/// phases instead: `direct::strided`.)
pub(crate) fn transposed(c: &Conv2d, rows: usize, cols: usize) -> (Conv2d, Placement) {
    debug_assert_eq!((c.sh, c.sw), (1, 1), "transposed() is for stride-1 convolutions");
    let ext_h = (c.kh - 1) * c.dh;
    let ext_w = (c.kw - 1) * c.dw;
    let g = Conv2d {
        n: c.n,
        h: c.ho,
        w: c.wo,
        cin: c.cout,
        cout: c.cin,
        kh: c.kh,
        kw: c.kw,
        sh: 1,
        sw: 1,
        dh: c.dh,
        dw: c.dw,
        pad_top: 0,
        pad_left: 0,
        ho: c.h,
        wo: c.w,
    };
    let pl = Placement {
        top: ext_h as isize - c.pad_top as isize,
        left: ext_w as isize - c.pad_left as isize,
        hp: rows + ext_h,
        wp: cols + ext_w,
    };
    (g, pl)
}

/// The filter of the transposed problem: `w'[ky][kx][co][ci] = w[kh-1-ky][kw-1-kx][ci][co]`,
/// written into `out` (HWIO of the transposed problem).
pub(crate) fn flip_filter(isa: Isa, c: &Conv2d, w: &[f32], out: &mut [f32]) {
    let (taps, tap) = (c.kh * c.kw, c.cin * c.cout);
    for (t, dst) in out[..taps * tap].chunks_exact_mut(tap).enumerate() {
        transpose(isa, &w[(taps - 1 - t) * tap..][..tap], c.cin, c.cout, dst);
    }
}

/// `dst[j][i] = src[i][j]` for `src` `[rows, cols]` and `dst` `[cols, rows]`, in
/// `LANES x LANES` blocks transposed in registers ([`F32x::transpose_square`]), the rows and
/// columns past the last whole block a value at a time. The loop a value at a time over
/// bands of eight rows that this replaced ran at ~1.2 cycles a float and took 2% of the
/// CIFAR network's step at two threads (BENCHMARKS.md, session 61), where each thread
/// transposes every filter its backward-data reads.
///
/// # Panics
/// If `src` or `dst` holds fewer than `rows * cols` floats (a caller's bug: every caller
/// sizes both from the same shape).
pub(crate) fn transpose(isa: Isa, src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols, "transpose: {rows}x{cols} past a buffer");
    // SAFETY: both buffers hold rows x cols floats (asserted); `isa` was checked by the
    // public entry that reached here.
    unsafe { transpose_isa(isa, src, rows, cols, dst) }
}

/// [`transpose`] with the vectors of `V`.
///
/// # Safety
/// `src` and `dst` hold `rows * cols` floats; the ISA of `V` is enabled.
#[inline(always)]
unsafe fn transpose_body<V: F32x>(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    let l = V::LANES;
    let (whole_rows, whole_cols) = (rows / l * l, cols / l * l);
    for i in (0..whole_rows).step_by(l) {
        for j in (0..whole_cols).step_by(l) {
            // SAFETY: rows i..i + l of src at columns j..j + l, and rows j..j + l of dst at
            // columns i..i + l, lie inside the rows x cols buffers (the contract).
            unsafe {
                V::transpose_square(src.as_ptr().add(i * cols + j), cols, dst.as_mut_ptr().add(j * rows + i), rows)
            };
        }
    }
    for i in 0..whole_rows {
        for j in whole_cols..cols {
            dst[j * rows + i] = src[i * cols + j];
        }
    }
    for i in whole_rows..rows {
        for (j, &v) in src[i * cols..][..cols].iter().enumerate() {
            dst[j * rows + i] = v;
        }
    }
}

simd_dispatch! {
    /// [`transpose_body`] on `isa`.
    unsafe fn transpose_isa(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) => transpose_body
}

#[cfg(test)]
mod tests {
    #[test]
    fn transpose_moves_every_value_once() {
        // Whole blocks of every ISA's width (4, 8, 16), partial ones alone and beside whole
        // ones, non-square shapes, against the plain double loop; the destination prefilled
        // with NaN so that a value never written shows.
        for isa in crate::arch::Isa::available() {
            for rows in [0, 1, 3, 4, 8, 13, 16, 17, 27, 64] {
                for cols in [0, 1, 5, 8, 16, 19, 32, 64] {
                    let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
                    let mut got = vec![f32::NAN; rows * cols];
                    super::transpose(isa, &src, rows, cols, &mut got);
                    for i in 0..rows {
                        for j in 0..cols {
                            assert_eq!(got[j * rows + i], src[i * cols + j], "{isa:?} {rows}x{cols} at ({i}, {j})");
                        }
                    }
                }
            }
        }
    }
}

//! Padded copies of activations, so that the direct and Winograd kernels read every tap of
//! every output pixel from memory without bounds checks, and the transposed problem that
//! turns backward-data into a forward convolution.

use super::Conv2d;
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
/// source pixel `(y, x)` goes to `(top + y * up_y, left + x * up_x)` (so `up > 1` inserts
/// zeros between pixels, and a negative `top`/`left` crops). Canvas cells with no source
/// pixel are zero.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement {
    pub top: isize,
    pub left: isize,
    pub up: (usize, usize),
    pub hp: usize,
    pub wp: usize,
}

impl Placement {
    /// Whether the source itself already satisfies the placement (no copy needed).
    fn is_identity(&self, h: usize, w: usize) -> bool {
        self.top == 0 && self.left == 0 && self.up == (1, 1) && self.hp <= h && self.wp <= w
    }

    /// The canvas coordinate `p` maps back to source index `(p - off) / up` when that is exact.
    fn source(p: usize, off: isize, up: usize, len: usize) -> Option<usize> {
        let d = p as isize - off;
        (d >= 0 && (d as usize).is_multiple_of(up) && (d as usize / up) < len).then(|| d as usize / up)
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
        let Some(sy) = Placement::source(r, pl.top, pl.up.0, h) else {
            row.fill(0.0);
            continue;
        };
        let src_row = &x[sy * w * c..][..w * c];
        if pl.up.1 == 1 {
            // One contiguous run of source pixels, zeros around it.
            let x0 = (-pl.left).max(0) as usize; // first source column used
            let d0 = pl.left.max(0) as usize; // where it lands
            let run = w.saturating_sub(x0).min(pl.wp.saturating_sub(d0));
            let len = row.len();
            row[..(d0 * c).min(len)].fill(0.0);
            if run > 0 {
                row[d0 * c..(d0 + run) * c].copy_from_slice(&src_row[x0 * c..(x0 + run) * c]);
            }
            row[((d0 + run) * c).min(len)..].fill(0.0);
        } else {
            for (col, px) in row.chunks_exact_mut(c).enumerate() {
                match Placement::source(col, pl.left, pl.up.1, w) {
                    Some(sx) => px.copy_from_slice(&src_row[sx * c..][..c]),
                    None => px.fill(0.0),
                }
            }
        }
    }
}

/// The canvas a forward convolution reads: padding on top/left, and enough rows/columns on
/// the bottom/right for every tap of `rows x cols` output pixels (more than `ho x wo` when an
/// algorithm computes whole tiles).
pub(crate) fn forward_placement(c: &Conv2d, rows: usize, cols: usize) -> Placement {
    Placement {
        top: c.pad_top as isize,
        left: c.pad_left as isize,
        up: (1, 1),
        hp: (rows - 1) * c.sh + (c.kh - 1) * c.dh + 1,
        wp: (cols - 1) * c.sw + (c.kw - 1) * c.dw + 1,
    }
}

/// Backward-data as a forward convolution: `dx = conv(up(dy), flip(w)ᵀ)` with stride 1, where
/// `up` inserts `stride - 1` zeros between the pixels of `dy` and the filter is rotated by
/// 180° with its channel axes swapped. Returns the geometry of that forward problem (input
/// channels = `cout`, output = `[n, h, w, cin]`) and where `dy` goes in its canvas for an
/// output of `rows x cols` pixels.
pub(crate) fn transposed(c: &Conv2d, rows: usize, cols: usize) -> (Conv2d, Placement) {
    let ext_h = (c.kh - 1) * c.dh;
    let ext_w = (c.kw - 1) * c.dw;
    let g = Conv2d {
        n: c.n,
        h: (c.ho - 1) * c.sh + 1,
        w: (c.wo - 1) * c.sw + 1,
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
        up: (c.sh, c.sw),
        hp: rows + ext_h,
        wp: cols + ext_w,
    };
    (g, pl)
}

/// The filter of the transposed problem: `w'[ky][kx][co][ci] = w[kh-1-ky][kw-1-kx][ci][co]`,
/// written into `out` (HWIO of the transposed problem).
pub(crate) fn flip_filter(c: &Conv2d, w: &[f32], out: &mut [f32]) {
    let taps = c.kh * c.kw;
    for t in 0..taps {
        let src = &w[(taps - 1 - t) * c.cin * c.cout..][..c.cin * c.cout];
        let dst = &mut out[t * c.cin * c.cout..][..c.cin * c.cout];
        for ci in 0..c.cin {
            for co in 0..c.cout {
                dst[co * c.cin + ci] = src[ci * c.cout + co];
            }
        }
    }
}

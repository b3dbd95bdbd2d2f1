//! Backward-data of a strided convolution without the zeros of the upsampled gradient.
//!
//! Input pixel `iy` receives `dy[oy] · w[ky]` for every `oy * sh + ky * dh = iy + pad_top`.
//! With `iy + pad_top = a * sh + r`, the taps that reach it are the `ky` with
//! `ky * dh ≡ r (mod sh)`, each reading `dy` row `a - (ky * dh - r) / sh`. So the input pixels
//! split into `sh x sw` phases; within a phase, consecutive pixels (`sw` apart in `dx`) read
//! consecutive `dy` pixels through the phase's own taps: a stride-1 correlation, which the
//! forward tile kernel computes with an output pixel stride of `sw`.

use super::ukr::FwdTile;
use super::{balanced, family};
use crate::arch::{simd::lanes, Isa};
use crate::conv::pad::{with_placed, Placement};
use crate::conv::Conv2d;
use crate::scratch::{with_scratch, Slot};
use rayon::prelude::*;

/// The taps of one phase and where its packed filter starts.
struct Phase {
    /// `(ky, kx)` of each tap.
    taps: Vec<(usize, usize)>,
    /// Offset of the phase's packed panels.
    at: usize,
}

/// `dx` from `dy` and `w` for a convolution with stride > 1; with `add`, added to what `dx`
/// holds (the tiles add as they store; a phase no tap reaches adds nothing).
pub(super) fn backward_data(isa: Isa, c: &Conv2d, dy: &[f32], w: &[f32], dx: &mut [f32], add: bool) {
    if dx.is_empty() {
        return;
    }
    // An axis with one output pixel never takes a second step, so its stride does not
    // matter; taking it as 1 keeps the phase count `sh * sw` (and the per-row phase loop)
    // bounded by the image instead of by the stride, which may be as large as 2^63.
    let sh = if c.ho == 1 { 1 } else { c.sh };
    let sw = if c.wo == 1 { 1 } else { c.sw };
    // dy sits in a canvas with room for the largest backward shift of any tap.
    let (py, px) = (((c.kh - 1) * c.dh).div_ceil(sh), ((c.kw - 1) * c.dw).div_ceil(sw));
    let pl = Placement {
        top: py as isize,
        left: px as isize,
        hp: (c.h - 1 + c.pad_top) / sh + py + 1,
        wp: (c.w - 1 + c.pad_left) / sw + px + 1,
    };
    let fam = family(isa, c.cin);
    let nr = fam.nv * lanes(isa);
    let panels = c.cin.div_ceil(nr);
    let mut phases = Vec::with_capacity(sh * sw);
    let mut at = 0;
    for ry in 0..sh {
        for rx in 0..sw {
            let taps: Vec<(usize, usize)> = (0..c.kh)
                .filter(|ky| (ky * c.dh) % sh == ry)
                .flat_map(|ky| (0..c.kw).filter(|kx| (kx * c.dw) % sw == rx).map(move |kx| (ky, kx)))
                .collect();
            let len = panels * taps.len() * c.cout * nr;
            phases.push(Phase { taps, at });
            at += len;
        }
    }
    with_scratch(Slot::PackB, at, |packed| {
        // Phase panels: [panel][tap][co][nr], element w[ky][kx][p*nr + j][co], zero-padded.
        for ph in &phases {
            let k = ph.taps.len() * c.cout;
            for p in 0..panels {
                let (c0, cols) = (p * nr, nr.min(c.cin - p * nr));
                let panel = &mut packed[ph.at + p * k * nr..][..k * nr];
                for (t, &(ky, kx)) in ph.taps.iter().enumerate() {
                    let wt = &w[(ky * c.kw + kx) * c.cin * c.cout..][..c.cin * c.cout];
                    for co in 0..c.cout {
                        let dst = &mut panel[(t * c.cout + co) * nr..][..nr];
                        for (j, d) in dst.iter_mut().enumerate() {
                            *d = if j < cols { wt[(c0 + j) * c.cout + co] } else { 0.0 };
                        }
                    }
                }
            }
        }
        let packed: &[f32] = packed;
        with_placed(dy, c.output_shape(), pl, |src| {
            let img = src.h * src.w * c.cout;
            // Tap (ky, kx) of phase (ry, rx) reads canvas row ay + py - sy and column
            // ax + px - sx for the dx pixel whose dy position is (ay, ax), with
            // sy = (ky*dh - ry)/sh and sx = (kx*dw - rx)/sw: offsets from the tile base
            // (ay, ax0 + j0), per phase. The canvas may be dy itself: its row is src.w long.
            let offsets: Vec<Vec<usize>> = phases
                .iter()
                .enumerate()
                .map(|(i, ph)| {
                    let (ry, rx) = (i / sw, i % sw);
                    let shift = |&(ky, kx): &(usize, usize)| ((ky * c.dh - ry) / sh, (kx * c.dw - rx) / sw);
                    ph.taps.iter().map(shift).map(|(sy, sx)| ((py - sy) * src.w + px - sx) * c.cout).collect()
                })
                .collect();
            // The first column of phase column rx, if the image has it.
            let first_col = |rx: usize| Some((rx + sw - c.pad_left % sw) % sw).filter(|&ix0| ix0 < c.w);
            // Rows of phase row ry whose pixels some phase reaches with no tap (a 1x1 filter
            // at stride 2: three pixels in four) get zeros there: written for the whole row
            // in one call before the tiles overwrite the rest (a call per pixel, 32 floats
            // each, was 1% of the residual network's step).
            let zero_rows: Vec<bool> = (0..sh)
                .map(|ry| !add && (0..sw).any(|rx| first_col(rx).is_some() && phases[ry * sw + rx].taps.is_empty()))
                .collect();
            dx.par_chunks_mut(c.w * c.cin).enumerate().for_each(|(row, dxr)| {
                let (n, iy) = (row / c.h, row % c.h);
                let (ry, ay) = ((iy + c.pad_top) % sh, (iy + c.pad_top) / sh);
                if zero_rows[ry] {
                    dxr.fill(0.0);
                }
                for rx in 0..sw {
                    // The first column of this phase and how many it has.
                    let Some(ix0) = first_col(rx) else { continue };
                    let count = (c.w - ix0).div_ceil(sw);
                    let ph = &phases[ry * sw + rx];
                    if ph.taps.is_empty() {
                        continue;
                    }
                    let taps = &offsets[ry * sw + rx];
                    let ax0 = (ix0 + c.pad_left) / sw;
                    let k = taps.len() * c.cout;
                    let mt = balanced(count, fam.max_mr);
                    for p in 0..panels {
                        for j0 in (0..count).step_by(mt) {
                            let m = mt.min(count - j0);
                            let t = FwdTile {
                                x: src.data[n * img + (ay * src.w + ax0 + j0) * c.cout..].as_ptr(),
                                xps: c.cout,
                                taps: taps.as_ptr(),
                                ntaps: taps.len(),
                                cin: c.cout,
                                w: packed[ph.at + p * k * nr..].as_ptr(),
                                y: dxr[(ix0 + j0 * sw) * c.cin + p * nr..].as_mut_ptr(),
                                yps: sw * c.cin,
                                n: nr.min(c.cin - p * nr),
                                bias: core::ptr::null(),
                                relu: false,
                                add,
                            };
                            // SAFETY: the canvas has rows up to (h-1+pad_top)/sh + py and
                            // columns up to (w-1+pad_left)/sw + px, so every tap of the m
                            // pixels (sy <= py, sx <= px) lies in image n of it; the panel
                            // holds k*nr floats; the m output pixels, sw*cin apart from
                            // ix0 + j0*sw, are in this row of dx (read with add); `isa`
                            // was checked.
                            unsafe { (fam.fwd[m - 1])(isa, &t) };
                        }
                    }
                }
            });
        });
    });
}

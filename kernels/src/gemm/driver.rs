//! The BLIS framework loops, written once for every ISA: `jc` (NC columns of B) → `pc`
//! (KC deep: pack B) → `ic` (MC rows: pack A) → `jr` (NR) → `ir` (MR) → microkernel.
//!
//! Threads split the `ic` x `jr` work of each block; the depth (`pc`) loop is never split,
//! so every element of C is accumulated in the same order whatever the thread count:
//! results are bit-identical for 1 or N threads.

use super::kernel::{blocking_for, MicroKernel};
use super::pack::{pack_a, pack_b};
use super::ukr::UkrArgs;
use super::PackedB;
use crate::desc::{MatMut, MatRef};
use crate::scratch::{with_scratch, Slot};
use rayon::prelude::*;

/// Below this many multiply-adds a GEMM stays on the calling thread: forking costs more.
const PAR_MIN_MACS: usize = 1 << 21;

/// The right-hand operand: a view to pack block by block, or a prepacked B.
#[derive(Clone, Copy)]
pub(crate) enum BSource<'a> {
    View(MatRef<'a>),
    Packed(&'a PackedB),
}

/// C's base pointer and strides, shared by the tasks that write its disjoint tiles.
#[derive(Clone, Copy)]
struct SharedC {
    ptr: *mut f32,
    rs: usize,
    cs: usize,
}
// SAFETY: tasks only write disjoint tiles of C (each (ic, jr) pair is owned by one task),
// and the `MatMut` it came from is mutably borrowed for the whole call.
unsafe impl Send for SharedC {}
// SAFETY: as above; no two tasks touch the same element.
unsafe impl Sync for SharedC {}

/// Epilogue applied on the last depth block: per-column bias, then ReLU.
#[derive(Clone, Copy)]
pub(crate) struct Epi<'a> {
    pub bias: Option<&'a [f32]>,
    pub relu: bool,
}

/// `C = alpha * A * B + beta * C`, then the epilogue. Shapes were checked by the caller.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    kern: &MicroKernel,
    alpha: f32,
    a: &MatRef,
    b: BSource,
    beta: f32,
    c: &mut MatMut,
    epi: Epi,
    threads: usize,
) {
    let (m, n) = (c.rows(), c.cols());
    let k = a.cols();
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || alpha == 0.0 {
        scale_c(c, beta, epi);
        return;
    }
    let nr = kern.nr;
    let blk = blocking_for(kern);
    let threads = if m * n * k >= PAR_MIN_MACS { threads.max(1) } else { 1 };
    let (ptr, rs, cs) = c.raw_parts();
    let shared_c = SharedC { ptr, rs, cs };

    for jc in (0..n).step_by(blk.nc) {
        let ncb = blk.nc.min(n - jc);
        for pc in (0..k).step_by(blk.kc) {
            let kcb = blk.kc.min(k - pc);
            let last = pc + kcb == k;
            let block = Block {
                kern,
                alpha,
                beta: if pc == 0 { beta } else { 1.0 },
                a,
                pc,
                kcb,
                jc,
                ncb,
                m,
                n,
                mc: blk.mc,
                epi: if last { epi } else { Epi { bias: None, relu: false } },
                c: shared_c,
                threads,
            };
            match b {
                BSource::View(bv) => {
                    let panels = ncb.div_ceil(nr);
                    with_scratch(Slot::PackB, panels * kcb * nr, |buf| {
                        if threads > 1 && panels > 1 {
                            let per = panels.div_ceil(threads);
                            buf.par_chunks_mut(per * kcb * nr).enumerate().for_each(|(t, chunk)| {
                                let j0 = jc + t * per * nr;
                                pack_b(&bv, pc, kcb, j0, (per * nr).min(jc + ncb - j0), nr, kcb * nr, chunk);
                            });
                        } else {
                            pack_b(&bv, pc, kcb, jc, ncb, nr, kcb * nr, buf);
                        }
                        block.run(buf, kcb * nr);
                    });
                }
                BSource::Packed(pb) => {
                    let stride = pb.k * nr;
                    block.run(&pb.panels()[(jc / nr) * stride + pc * nr..], stride);
                }
            }
        }
    }
}

/// One (jc, pc) block: everything needed to run the `ic x jr x ir` loops over it.
struct Block<'a> {
    kern: &'a MicroKernel,
    alpha: f32,
    beta: f32,
    a: &'a MatRef<'a>,
    pc: usize,
    kcb: usize,
    jc: usize,
    ncb: usize,
    m: usize,
    n: usize,
    mc: usize,
    epi: Epi<'a>,
    c: SharedC,
    threads: usize,
}

impl Block<'_> {
    /// Runs the block against packed B panels (`panel_stride` apart in `bpack`).
    fn run(&self, bpack: &[f32], panel_stride: usize) {
        let n_ic = self.m.div_ceil(self.mc);
        let panels = self.ncb.div_ceil(self.kern.nr);
        if self.threads > 1 && n_ic >= self.threads {
            // Even row blocks, a multiple of the thread count: every thread gets equal work
            // and A is packed once. (Row blocking never changes results; only depth does.)
            let n_ic = n_ic.div_ceil(self.threads) * self.threads;
            let mc = self.m.div_ceil(n_ic).div_ceil(self.kern.mr) * self.kern.mr;
            let blocks = self.m.div_ceil(mc);
            (0..blocks).into_par_iter().for_each(|ic| self.tile_loops(ic * mc, mc, 0..panels, bpack, panel_stride));
            return;
        }
        // Enough tasks to keep every thread busy; split columns too when rows are few.
        let jparts = if self.threads > 1 { (2 * self.threads).div_ceil(n_ic).min(panels) } else { 1 };
        let per = panels.div_ceil(jparts);
        let tasks = n_ic * jparts;
        let task = |t: usize| {
            let (ic, jp) = (t / jparts, t % jparts);
            let (q0, q1) = (jp * per, ((jp + 1) * per).min(panels));
            if q0 < q1 {
                self.tile_loops(ic * self.mc, self.mc, q0..q1, bpack, panel_stride);
            }
        };
        if self.threads > 1 && tasks > 1 {
            (0..tasks).into_par_iter().for_each(task);
        } else {
            (0..tasks).for_each(task);
        }
    }

    /// Packs rows `i0..i0+mc` of A, then runs the microkernel over B panels `qs` x all
    /// MR strips.
    fn tile_loops(&self, i0: usize, mc: usize, qs: core::ops::Range<usize>, bpack: &[f32], panel_stride: usize) {
        let (mr, nr, kcb) = (self.kern.mr, self.kern.nr, self.kcb);
        let mcb = mc.min(self.m - i0);
        let strips = mcb.div_ceil(mr);
        with_scratch(Slot::PackA, strips * mr * kcb, |apack| {
            pack_a(self.a, i0, mcb, self.pc, kcb, mr, apack);
            for q in qs {
                let j0 = self.jc + q * nr;
                let bpanel = &bpack[q * panel_stride..][..kcb * nr];
                let bias = self.epi.bias.map_or(core::ptr::null(), |b| b[j0..].as_ptr());
                for (s, apanel) in apack.chunks_exact(mr * kcb).enumerate() {
                    let ib = i0 + s * mr;
                    let args = UkrArgs {
                        kc: kcb,
                        a: apanel.as_ptr(),
                        b: bpanel.as_ptr(),
                        c: self.c.ptr.wrapping_add(ib * self.c.rs + j0 * self.c.cs),
                        rsc: self.c.rs,
                        csc: self.c.cs,
                        m: mr.min(self.m - ib),
                        n: nr.min(self.n - j0),
                        alpha: self.alpha,
                        beta: self.beta,
                        bias,
                        relu: self.epi.relu,
                        rsa: 0,
                        csa: 0,
                        rsb: 0,
                    };
                    // SAFETY: `apanel` holds kcb*mr floats and `bpanel` kcb*nr floats (sliced
                    // above; B buffers are 64-byte aligned and panel offsets are multiples of
                    // nr floats, a whole number of vectors); the m x n tile at (ib, j0) lies
                    // inside C (checked by the public entry) and belongs to this task alone;
                    // `bias` has n - j0 >= args.n floats; the kernel's ISA was checked.
                    unsafe { (self.kern.func)(&args) };
                }
            }
        });
    }
}

/// `C = alpha * A * B + beta * C` with an unpacked kernel: no packing, whole depth per call.
/// B must have unit column stride. Tiles are independent, so threads just split them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_nopack(
    kern: &MicroKernel,
    alpha: f32,
    a: &MatRef,
    b: &MatRef,
    beta: f32,
    c: &mut MatMut,
    epi: Epi,
    threads: usize,
) {
    let (m, n, k) = (c.rows(), c.cols(), a.cols());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || alpha == 0.0 {
        scale_c(c, beta, epi);
        return;
    }
    debug_assert!(b.col_stride() == 1 || n == 1);
    let (mr, nr) = (kern.mr, kern.nr);
    let (ptr, rsc, csc) = c.raw_parts();
    let shared_c = SharedC { ptr, rs: rsc, cs: csc };
    let (strips, panels) = (m.div_ceil(mr), n.div_ceil(nr));
    // With several column panels each A strip is read `panels` times: pack it once (cheap
    // next to the arithmetic it then feeds). With one panel, read A in place.
    match kern.packed_a.filter(|_| panels > 1) {
        Some(func) => with_scratch(Slot::PackA, strips * mr * k, |apack| {
            pack_a(a, 0, m, 0, k, mr, apack);
            let a_of = |ib: usize| (apack[ib * k..].as_ptr(), 1, mr);
            nopack_tiles(func, kern, alpha, a_of, b, beta, shared_c, (m, n, k), epi, threads)
        }),
        None => {
            let a_of = |ib: usize| (a.data()[ib * a.row_stride()..].as_ptr(), a.row_stride(), a.col_stride());
            nopack_tiles(kern.func, kern, alpha, a_of, b, beta, shared_c, (m, n, k), epi, threads)
        }
    }
}

/// The strided batch of [`super::sgemm_strided_batch`] on one unpacked kernel that reads A
/// in place: product `i` reads `a` and `b` moved `steps[0]` and `steps[1]` elements on per
/// product and writes `c` moved `steps[2]`, tile by tile on the calling thread (the same
/// tiles, in the same order, as [`gemm_nopack`] per product). The caller checked that
/// every product's views lie in their buffers (`c`'s buffer holds all of them), that
/// `k > 0`, `alpha != 0`, and that the kernel needs no packed A (`n <= NR`, or it has no
/// packed-A twin).
pub(crate) fn gemm_nopack_batch(
    kern: &MicroKernel,
    alpha: f32,
    (a, b): (&MatRef, &MatRef),
    beta: f32,
    c: &mut MatMut,
    steps: [usize; 3],
    count: usize,
) {
    let (m, n, k) = (c.rows(), c.cols(), a.cols());
    let (mr, nr) = (kern.mr, kern.nr);
    let (ptr, rsc, csc) = c.raw_parts();
    let mut args = UkrArgs {
        kc: k,
        a: a.data().as_ptr(),
        b: b.data().as_ptr(),
        c: ptr,
        rsc,
        csc,
        m: 0,
        n: 0,
        alpha,
        beta,
        bias: core::ptr::null(),
        relu: false,
        rsa: a.row_stride(),
        csa: a.col_stride(),
        rsb: b.row_stride(),
    };
    for i in 0..count {
        let (a0, b0, c0) = (i * steps[0], i * steps[1], i * steps[2]);
        for j0 in (0..n).step_by(nr) {
            args.n = nr.min(n - j0);
            args.b = b.data().as_ptr().wrapping_add(b0 + j0 * b.col_stride());
            for ib in (0..m).step_by(mr) {
                args.m = mr.min(m - ib);
                args.a = a.data().as_ptr().wrapping_add(a0 + ib * a.row_stride());
                args.c = ptr.wrapping_add(c0 + ib * rsc + j0 * csc);
                // SAFETY: product i's views of A, B and C lie in their buffers (checked by
                // the caller), so rows ib..ib+args.m of A, columns j0..j0+args.n of B at
                // every depth p < k, and the C tile at (ib, j0) are elements of them; C is
                // mutably borrowed for the whole call and written by this thread alone; no
                // bias; the kernel's ISA was checked by the caller.
                unsafe { (kern.func)(&args) };
            }
        }
    }
}

/// Runs `func` over every `MR x NR` tile of C; `a_of(ib)` gives the A pointer and strides
/// for the strip starting at row `ib`.
#[allow(clippy::too_many_arguments)]
fn nopack_tiles(
    func: super::ukr::UkrFn,
    kern: &MicroKernel,
    alpha: f32,
    a_of: impl Fn(usize) -> (*const f32, usize, usize) + Sync,
    b: &MatRef,
    beta: f32,
    shared_c: SharedC,
    (m, n, k): (usize, usize, usize),
    epi: Epi,
    threads: usize,
) {
    let (mr, nr) = (kern.mr, kern.nr);
    let (strips, panels) = (m.div_ceil(mr), n.div_ceil(nr));
    let tile_at = |s: usize, q: usize| {
        let (ib, j0) = (s * mr, q * nr);
        let (a, rsa, csa) = a_of(ib);
        let shared_c = &shared_c;
        let args = UkrArgs {
            kc: k,
            a,
            b: b.data()[j0 * b.col_stride()..].as_ptr(),
            c: shared_c.ptr.wrapping_add(ib * shared_c.rs + j0 * shared_c.cs),
            rsc: shared_c.rs,
            csc: shared_c.cs,
            m: mr.min(m - ib),
            n: nr.min(n - j0),
            alpha,
            beta,
            bias: epi.bias.map_or(core::ptr::null(), |bb| bb[j0..].as_ptr()),
            relu: epi.relu,
            rsa,
            csa,
            rsb: b.row_stride(),
        };
        // SAFETY: rows ib..ib+args.m of A (in place, or its packed strip of k*mr floats) and
        // columns j0..j0+args.n of B lie inside their validated views for every depth p < k
        // (the kernel clamps rows and masks columns to exactly that); the C tile at (ib, j0)
        // is inside C and owned by this task alone; bias holds n - j0 >= args.n floats; the
        // kernel's ISA was checked by the caller.
        unsafe { func(&args) };
    };
    let tiles = strips * panels;
    if threads > 1 && m * n * k >= PAR_MIN_MACS {
        let tile = |t: usize| tile_at(t % strips, t / strips);
        (0..tiles).into_par_iter().with_min_len(tiles.div_ceil(8 * threads)).for_each(tile);
    } else {
        // Nested loops, not a division per tile: Winograd's small products run thousands
        // of 6x16 tiles of ~200 cycles each, where the division showed in the profile.
        (0..panels).for_each(|q| (0..strips).for_each(|s| tile_at(s, q)));
    }
}

/// `C = beta * C` (BLAS: beta = 0 writes zeros, ignoring NaN), then the epilogue.
fn scale_c(c: &mut MatMut, beta: f32, epi: Epi) {
    c.for_each(|_, j, x| {
        let mut v = if beta == 0.0 { 0.0 } else { beta * *x };
        if let Some(b) = epi.bias {
            v += b[j];
        }
        if epi.relu {
            v = v.max(0.0);
        }
        *x = v;
    });
}

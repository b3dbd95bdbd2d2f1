//! The one place that says which microkernels each ISA has and how to block for them
//! (selection is data: [`kernels_for`]). The microkernel contract itself ([`super::ukr::UkrArgs`],
//! [`UkrFn`]) lives beside the microkernels, in `ukr`.

use super::ukr::UkrFn;
use crate::arch::Isa;

/// A register-tiled microkernel and what it needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MicroKernel {
    /// XNNPACK-style name: `f32-gemm-14x32-avx512`.
    pub name: &'static str,
    pub isa: Isa,
    pub mr: usize,
    pub nr: usize,
    /// Relative throughput on full tiles, percent of the ISA's best kernel (measured).
    pub eff: usize,
    pub func: UkrFn,
    /// Unpacked kernels only: the variant that reads A from a packed `kc x mr` panel.
    pub packed_a: Option<UkrFn>,
}

/// Cache blocking for one kernel (BLIS's KC/MC/NC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Blocking {
    /// Depth of a packed block: each call runs `KC` deep over a `KC x NR` micro-panel of B,
    /// the same panel for every `MR` strip of the block.
    pub kc: usize,
    /// Rows of packed A per block (multiple of MR): `MC * KC` floats stay in L2.
    pub mc: usize,
    /// Columns of packed B per block (multiple of NR): `KC * NC` floats stay in L3.
    pub nc: usize,
}

macro_rules! ukr {
    ($name:literal, $isa:ident, $mr:literal, $nr:literal, $eff:literal, $f:expr) => {
        MicroKernel { name: $name, isa: Isa::$isa, mr: $mr, nr: $nr, eff: $eff, func: $f, packed_a: None }
    };
    ($name:literal, $isa:ident, $mr:literal, $nr:literal, $eff:literal, $f:expr, $pa:expr) => {
        MicroKernel { name: $name, isa: Isa::$isa, mr: $mr, nr: $nr, eff: $eff, func: $f, packed_a: Some($pa) }
    };
}

use super::ukr::scalar;
#[cfg(target_arch = "x86_64")]
use super::ukr::{avx2, avx512};

/// The kernels each ISA offers, main kernel first. Edit here to add a tile shape.
pub(crate) fn kernels_for(isa: Isa) -> &'static [MicroKernel] {
    static SCALAR: [MicroKernel; 1] = [ukr!("f32-gemm-4x8-scalar", Scalar, 4, 8, 100, scalar::ukr_4x8)];
    #[cfg(target_arch = "x86_64")]
    static AVX2: [MicroKernel; 2] = [
        ukr!("f32-gemm-6x16-avx2", Avx2, 6, 16, 100, avx2::ukr_6x16),
        ukr!("f32-gemm-12x8-avx2", Avx2, 12, 8, 95, avx2::ukr_12x8),
    ];
    #[cfg(target_arch = "x86_64")]
    static AVX512: [MicroKernel; 3] = [
        ukr!("f32-gemm-14x32-avx512", Avx512, 14, 32, 100, avx512::ukr_14x32),
        ukr!("f32-gemm-28x16-avx512", Avx512, 28, 16, 95, avx512::ukr_28x16),
        ukr!("f32-gemm-8x32-avx512", Avx512, 8, 32, 85, avx512::ukr_8x32),
    ];
    #[cfg(target_arch = "aarch64")]
    static NEON: [MicroKernel; 2] = [
        ukr!("f32-gemm-8x12-neon", Neon, 8, 12, 100, super::ukr::neon::ukr_8x12),
        ukr!("f32-gemm-12x8-neon", Neon, 12, 8, 95, super::ukr::neon::ukr_12x8),
    ];
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => &AVX2,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => &AVX512,
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => &NEON,
        _ => &SCALAR,
    }
}

/// Unpacked ("nopack") kernels of `isa`, which read A and B in place (see
/// `ukr::avx512::ukr_nopack_generic`), main kernel first; empty where an ISA has none.
pub(crate) fn nopack_kernels_for(isa: Isa) -> &'static [MicroKernel] {
    #[cfg(target_arch = "x86_64")]
    static AVX512: [MicroKernel; 6] = [
        ukr!("f32-gemm-14x32-avx512-nopack", Avx512, 14, 32, 100, avx512::nopack_14x32, avx512::packa_14x32),
        ukr!("f32-gemm-28x16-avx512-nopack", Avx512, 28, 16, 100, avx512::nopack_28x16, avx512::packa_28x16),
        ukr!("f32-gemm-6x64-avx512-nopack", Avx512, 6, 64, 95, avx512::nopack_6x64, avx512::packa_6x64),
        ukr!("f32-gemm-10x32-avx512-nopack", Avx512, 10, 32, 90, avx512::nopack_10x32, avx512::packa_10x32),
        ukr!("f32-gemm-16x16-avx512-nopack", Avx512, 16, 16, 90, avx512::nopack_16x16, avx512::packa_16x16),
        ukr!("f32-gemm-8x32-avx512-nopack", Avx512, 8, 32, 90, avx512::nopack_8x32, avx512::packa_8x32),
    ];
    // AVX2 (sixteen registers): tiles of at most 12 accumulators beside their B vectors
    // and one broadcast; 4x24 and 8x8 for outputs 24 or 8 wide and for short strips. They
    // read A in place even across column panels (no packed-A variant: see `ukr::avx2`).
    // The 6x16 is the reference (100); the others' relative throughputs are estimates from
    // their loads per FMA, not yet measured.
    #[cfg(target_arch = "x86_64")]
    static AVX2: [MicroKernel; 4] = [
        ukr!("f32-gemm-6x16-avx2-nopack", Avx2, 6, 16, 100, avx2::nopack_6x16),
        ukr!("f32-gemm-4x24-avx2-nopack", Avx2, 4, 24, 95, avx2::nopack_4x24),
        ukr!("f32-gemm-12x8-avx2-nopack", Avx2, 12, 8, 95, avx2::nopack_12x8),
        ukr!("f32-gemm-8x8-avx2-nopack", Avx2, 8, 8, 85, avx2::nopack_8x8),
    ];
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => &AVX512,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => &AVX2,
        _ => &[],
    }
}

/// Whether an `m x n x k` product is skinny enough that packing would cost about as much as
/// the arithmetic, so the unpacked kernels win (measured on the CNN's shapes).
pub(crate) fn prefers_nopack(m: usize, n: usize, k: usize) -> bool {
    n <= 32 || k <= 16 || m <= 16
}

/// Blocking for a kernel: KC = 512, MC so that the packed A block takes about half of a
/// 1 MiB L2, NC for a shared L3.
///
/// BLIS sizes KC so that the micro-panel reused across strips stays in L1. At KC = 512 the B
/// micro-panel is `KC * NR * 4` bytes: 32 KiB for AVX2's 16 columns (all of a Zen 3's L1)
/// and 64 KiB for AVX-512's 32 (more than a 48 KiB L1), so it streams from L2 beside the A
/// strip. That costs AVX2 nothing measurable: on a Zen 3, KC = 256 and 384 were no faster
/// than 512 at n = 512-2048 (BENCHMARKS.md, session 38). KC = 256 for AVX-512 did not
/// measure apart from 512 on a noisy Intel host (session 20), and a static model of the
/// 14x32 loop puts it at its FMA bound (session 38): where that class's 80% goes is open.
pub(crate) fn blocking_for(kern: &MicroKernel) -> Blocking {
    let kc = 512;
    let mc = (128 * 1024 / kc / kern.mr).max(1) * kern.mr;
    let nc = (4096 / kern.nr).max(1) * kern.nr;
    Blocking { kc, mc, nc }
}

/// Estimated time: padded tile area over the kernel's relative throughput.
fn padded_cost(m: usize, n: usize, k: &MicroKernel) -> usize {
    m.div_ceil(k.mr) * k.mr * n.div_ceil(k.nr) * k.nr * 100 / k.eff
}

/// The kernel of `isa` that wastes least on padding for an `m x n` output, preferring the
/// main (first) kernel on ties. `nr`, when given, restricts the choice to kernels of that
/// panel width (a prepacked B fixes it).
pub(crate) fn select(isa: Isa, m: usize, n: usize, nr: Option<usize>) -> &'static MicroKernel {
    select_from(kernels_for(isa), m, n, nr)
}

/// [`select`] over an explicit kernel list (non-empty).
pub(crate) fn select_from(ks: &'static [MicroKernel], m: usize, n: usize, nr: Option<usize>) -> &'static MicroKernel {
    let mut best = &ks[0];
    let mut best_cost = usize::MAX;
    for k in ks.iter().filter(|k| nr.is_none_or(|w| w == k.nr)) {
        let cost = padded_cost(m.max(1), n.max(1), k);
        if cost < best_cost {
            best = k;
            best_cost = cost;
        }
    }
    best
}

/// What packing A costs an unpacked kernel, per row and unit of depth, in the units of
/// [`padded_cost`] (output elements per unit of depth at 100% efficiency). The driver packs A
/// when B has more than one column panel; the pack is a scalar transpose for row-major A,
/// about 20 units a row (convnet's backward-data, m = 48, n = 32, k = 64 per position: the
/// 16x16 kernel spent 26% of the pass packing A against 47% multiplying).
const PACK_A_COST: usize = 20;

/// [`select_from`] over unpacked kernels, counting the packing of A that a kernel with more
/// than one column panel pays for.
pub(crate) fn select_nopack(ks: &'static [MicroKernel], m: usize, n: usize) -> &'static MicroKernel {
    // Winograd runs thousands of same-shaped small products per pass, where the cost model's
    // integer divisions showed up at 1% of a training step: the last choice of each thread
    // is kept.
    thread_local! {
        static LAST: std::cell::Cell<(usize, usize, usize, usize)> = const { std::cell::Cell::new((0, 0, 0, 0)) };
    }
    let key = ks.as_ptr() as usize;
    let (k0, m0, n0, i0) = LAST.get();
    if (k0, m0, n0) == (key, m, n) {
        return &ks[i0];
    }
    let (mm, nn) = (m.max(1), n.max(1));
    let cost = |k: &MicroKernel| {
        let pack = if nn > k.nr && k.packed_a.is_some() { mm.div_ceil(k.mr) * k.mr * PACK_A_COST } else { 0 };
        padded_cost(mm, nn, k) + pack
    };
    let costs = ks.iter().map(cost);
    // The first of equally cheap kernels (the table's order is its preference).
    let best = costs.enumerate().fold((0, usize::MAX), |b, (i, c)| if c < b.1 { (i, c) } else { b }).0;
    LAST.set((key, m, n, best));
    &ks[best]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for isa in Isa::ALL {
            let ks = kernels_for(isa);
            assert!(!ks.is_empty());
            for k in ks {
                // A table only lists its own ISA's kernels (scalar stands in where none exist).
                assert!(k.isa == isa || k.isa == Isa::Scalar, "{} under {isa:?}", k.name);
                assert!(k.name.contains(&format!("{}x{}", k.mr, k.nr)), "{}", k.name);
                assert!(k.eff > 0 && k.eff <= 100);
                let b = blocking_for(k);
                assert!(b.mc.is_multiple_of(k.mr) && b.nc.is_multiple_of(k.nr) && b.kc > 0);
            }
        }
    }

    #[test]
    fn unpacked_selection_counts_the_packing_of_a() {
        if Isa::Avx512.is_available() {
            let ks = nopack_kernels_for(Isa::Avx512);
            // By padding alone 16x16 wins 48 x 32, but it needs two panels (so packs A).
            assert_eq!(select_from(ks, 48, 32, None).nr, 16);
            assert!(select_nopack(ks, 48, 32).nr >= 32);
            assert_eq!(select_nopack(ks, 48, 64).name, "f32-gemm-6x64-avx512-nopack");
            // Winograd's filter gradient of a 32-channel layer: 32 rows (input channels) by
            // 32 (output channels); 14-row strips would pad 32 to 42.
            assert_eq!(select_nopack(ks, 32, 32).name, "f32-gemm-8x32-avx512-nopack");
        }
    }

    /// Every unpacked kernel of every available ISA, A in place (row- and column-major) and
    /// packed (more than one column panel), on full and edge tiles, against the f64
    /// reference: the selection alone would leave some kernels unexercised on some machines.
    #[test]
    fn every_unpacked_kernel_matches_the_reference() {
        use super::super::driver::{gemm_nopack, Epi};
        use crate::gemm::{MatMut, MatRef};
        let fill = |n: usize, seed: u32| -> Vec<f32> {
            (0..n)
                .map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 20) as f32 / 2048.0 - 1.0)
                .collect()
        };
        for isa in Isa::available() {
            for kern in nopack_kernels_for(isa) {
                let (mr, nr) = (kern.mr, kern.nr);
                for (m, n, k) in [(mr, nr, 7), (2 * mr + 1, nr - 1, 5), (mr - 1, 2 * nr + 3, 9), (3 * mr, 3 * nr, 33)] {
                    for (trans_a, beta, relu) in [(false, 0.0, false), (true, 0.5, true)] {
                        let a = fill(m * k, 1);
                        let (rsa, csa) = if trans_a { (1, m) } else { (k, 1) };
                        let av = MatRef::new(&a, m, k, rsa, csa).unwrap();
                        // B rows padded by 3 (row stride n + 3), unit column stride.
                        let b = fill(k * (n + 3), 2);
                        let bv = MatRef::new(&b, k, n, n + 3, 1).unwrap();
                        let bias = fill(n, 3);
                        let c0 = fill(m * n, 4);
                        let mut want = c0.clone();
                        let mut wv = MatMut::row_major(&mut want, m, n).unwrap();
                        crate::reference::sgemm(0.75, av, bv, beta, &mut wv).unwrap();
                        for (idx, w) in want.iter_mut().enumerate() {
                            *w += if relu { bias[idx % n] } else { 0.0 };
                            if relu {
                                *w = w.max(0.0);
                            }
                        }
                        let mut got = if beta == 0.0 { vec![f32::NAN; m * n] } else { c0.clone() };
                        let epi = Epi { bias: relu.then_some(&bias[..]), relu };
                        let mut gv = MatMut::row_major(&mut got, m, n).unwrap();
                        gemm_nopack(kern, 0.75, &av, &bv, beta, &mut gv, epi, 1);
                        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                            let tol = (k as f32 + 3.0) * f32::EPSILON * (k as f32 + 2.0);
                            assert!(
                                (g - w).abs() <= tol,
                                "{} m={m} n={n} k={k} trans_a={trans_a} at {i}: {g} vs {w}",
                                kern.name
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn selection_prefers_narrow_panels_for_narrow_outputs() {
        if Isa::Avx512.is_available() {
            assert_eq!(select(Isa::Avx512, 1024, 1024, None).name, "f32-gemm-14x32-avx512");
            assert_eq!(select(Isa::Avx512, 5408, 10, None).name, "f32-gemm-28x16-avx512");
        }
    }
}

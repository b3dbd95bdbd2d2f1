//! The FMA peak of this CPU: independent chains of vector FMAs on 1..n threads at once, so
//! kernel and network figures can be read as a fraction of what the machine can do.

use ember_kernels::Isa;
use std::time::Instant;

/// Independent accumulator chains: enough to cover FMA latency x throughput on any current core.
const CHAINS: usize = 12;
const ITERS: usize = 20_000_000;

#[cfg(target_arch = "x86_64")]
mod fma {
    use core::arch::x86_64::*;

    /// Runs `iters` rounds of CHAINS independent 256-bit FMAs; returns a value to keep it live.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2(iters: usize) -> f32 {
        let mut acc = [_mm256_set1_ps(1.0); super::CHAINS];
        let x = _mm256_set1_ps(0.999_999);
        let y = _mm256_set1_ps(1e-7);
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(*a, x, y);
            }
        }
        let mut s = [0.0f32; 8];
        let mut t = _mm256_setzero_ps();
        for a in acc {
            t = _mm256_add_ps(t, a);
        }
        // SAFETY: `s` holds 8 floats.
        unsafe { _mm256_storeu_ps(s.as_mut_ptr(), t) };
        s.iter().sum()
    }

    /// As [`avx2`] with 512-bit FMAs.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512(iters: usize) -> f32 {
        let mut acc = [_mm512_set1_ps(1.0); super::CHAINS];
        let x = _mm512_set1_ps(0.999_999);
        let y = _mm512_set1_ps(1e-7);
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(*a, x, y);
            }
        }
        let mut t = _mm512_setzero_ps();
        for a in acc {
            t = _mm512_add_ps(t, a);
        }
        _mm512_reduce_add_ps(t)
    }
}

/// GFLOP/s of `run` (which does `iters * CHAINS * lanes` FMAs) on `threads` threads at once.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn measure(threads: usize, lanes: usize, run: fn(usize) -> f32) -> f64 {
    run(ITERS / 20); // warm up clocks
    let t0 = Instant::now();
    let sink: f32 = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads).map(|_| s.spawn(move || run(ITERS))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let secs = t0.elapsed().as_secs_f64();
    std::hint::black_box(sink);
    (threads * ITERS * CHAINS * lanes * 2) as f64 / secs / 1e9
}

/// GFLOP/s of back-to-back `isa` FMAs on `threads` threads at once (AVX2 and AVX-512 on
/// x86-64); `None` where `isa` is not available or has no probe.
pub fn fma_peak(isa: Isa, threads: usize) -> Option<f64> {
    if !isa.is_available() {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        match isa {
            // SAFETY: AVX2 and FMA were detected.
            Isa::Avx2 => return Some(measure(threads, 8, |i| unsafe { fma::avx2(i) })),
            // SAFETY: AVX-512F was detected.
            Isa::Avx512 => return Some(measure(threads, 16, |i| unsafe { fma::avx512(i) })),
            _ => {}
        }
    }
    let _ = threads;
    None
}

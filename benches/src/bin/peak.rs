//! Measures this CPU's FMA peak (AVX2 and AVX-512, one thread and all threads) and its memory
//! bandwidth, so GEMM and convolution figures can be read as a fraction of what the machine
//! can do. `cargo run --release -p ember-benches --bin peak`

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

/// Sum with 16 independent lanes, so the loop is bound by loads, not by add latency.
fn sum_lanes(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    for c in x.chunks_exact(16) {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum()
}

/// Read and triad bandwidth (GB/s) over 256 MiB arrays on `threads` threads.
fn bandwidth(threads: usize) -> (f64, f64) {
    let n = 64 << 20; // floats per array
    let a = vec![1.0f32; n];
    let b = vec![2.0f32; n];
    let mut c = vec![0.0f32; n];
    let chunk = n.div_ceil(threads);
    let mut best = (0.0f64, 0.0f64);
    for _ in 0..3 {
        let t0 = Instant::now();
        let s: f32 = std::thread::scope(|s| {
            let hs: Vec<_> = a.chunks(chunk).map(|p| s.spawn(move || sum_lanes(p))).collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        std::hint::black_box(s);
        let read = (n * 4) as f64 / t0.elapsed().as_secs_f64() / 1e9;
        let t0 = Instant::now();
        std::thread::scope(|s| {
            for ((cc, aa), bb) in c.chunks_mut(chunk).zip(a.chunks(chunk)).zip(b.chunks(chunk)) {
                s.spawn(move || {
                    for ((x, y), z) in cc.iter_mut().zip(aa).zip(bb) {
                        *x = y + 3.0 * z;
                    }
                });
            }
        });
        let triad = (3 * n * 4) as f64 / t0.elapsed().as_secs_f64() / 1e9;
        best = (best.0.max(read), best.1.max(triad));
    }
    std::hint::black_box(&c);
    best
}

fn main() {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("threads: {threads}");
    #[cfg(target_arch = "x86_64")]
    {
        if ember_kernels::Isa::Avx2.is_available() {
            // SAFETY: AVX2 and FMA were detected.
            let f: fn(usize) -> f32 = |i| unsafe { fma::avx2(i) };
            println!("fma_peak avx2   1 thread : {:7.1} GFLOP/s", measure(1, 8, f));
            println!("fma_peak avx2   {threads} threads: {:7.1} GFLOP/s", measure(threads, 8, f));
        }
        if ember_kernels::Isa::Avx512.is_available() {
            // SAFETY: AVX-512F was detected.
            let f: fn(usize) -> f32 = |i| unsafe { fma::avx512(i) };
            println!("fma_peak avx512 1 thread : {:7.1} GFLOP/s", measure(1, 16, f));
            println!("fma_peak avx512 {threads} threads: {:7.1} GFLOP/s", measure(threads, 16, f));
        }
    }
    let (r1, t1) = bandwidth(1);
    let (rn, tn) = bandwidth(threads);
    println!("memory read  1 thread : {r1:6.1} GB/s   {threads} threads: {rn:6.1} GB/s");
    println!("memory triad 1 thread : {t1:6.1} GB/s   {threads} threads: {tn:6.1} GB/s");
}

//! Measures this CPU's FMA peak (AVX2 and AVX-512, one thread and all threads) and its memory
//! bandwidth, so GEMM and convolution figures can be read as a fraction of what the machine
//! can do. `cargo run --release -p ember-benches --bin peak`

use ember_benches::peak::fma_peak;
use ember_kernels::Isa;
use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Instant;

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

/// Measures and prints; a write error (a closed pipe, say) ends the run.
fn report(out: &mut impl Write) -> io::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    writeln!(out, "threads: {threads}")?;
    for (isa, name) in [(Isa::Avx2, "avx2  "), (Isa::Avx512, "avx512")] {
        if let (Some(one), Some(all)) = (fma_peak(isa, 1), fma_peak(isa, threads)) {
            writeln!(out, "fma_peak {name} 1 thread : {one:7.1} GFLOP/s")?;
            writeln!(out, "fma_peak {name} {threads} threads: {all:7.1} GFLOP/s")?;
        }
    }
    let (r1, t1) = bandwidth(1);
    let (rn, tn) = bandwidth(threads);
    writeln!(out, "memory read  1 thread : {r1:6.1} GB/s   {threads} threads: {rn:6.1} GB/s")?;
    writeln!(out, "memory triad 1 thread : {t1:6.1} GB/s   {threads} threads: {tn:6.1} GB/s")?;
    out.flush()
}

fn main() -> ExitCode {
    match report(&mut io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stopped early (`peak | head -3`) is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the report: {e}");
            ExitCode::FAILURE
        }
    }
}

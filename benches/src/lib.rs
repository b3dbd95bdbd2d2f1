//! Shared helpers for Ember's criterion benchmarks and the `peak` probe.

use criterion::{Criterion, Throughput};

pub mod networks;
pub mod peak;

/// Criterion's default configuration, with the font its plots need registered first. In a
/// workspace-wide build (`cargo bench` at the root) plotters draws text with `ab_glyph` (the
/// mnist example asks for it, and features unify), which knows only the fonts a program
/// registers; without one, criterion's first plot panicked and ended the run. The font is
/// the example's vendored DejaVu Sans, registered as the family criterion asks for.
pub fn criterion() -> Criterion {
    static FONT: std::sync::Once = std::sync::Once::new();
    FONT.call_once(|| {
        let font = include_bytes!("../../model/examples/mnist/assets/DejaVuSans.ttf");
        plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, font)
            .unwrap_or_else(|_| panic!("the vendored DejaVu Sans did not parse"));
    });
    Criterion::default()
}

/// Times `iters` calls of `step` on the model's own threads ([`ember_model::Model::in_threads`]),
/// as `fit` runs its steps: a call from outside would add a hand-off to the pool and back
/// per step (~10% of the seed's step in `perf`). For criterion's `iter_custom`.
pub fn time_on_model_threads(
    model: &mut ember_model::Model,
    iters: u64,
    mut step: impl FnMut(&mut ember_model::Model) + Send,
) -> std::time::Duration {
    model
        .in_threads(|m| {
            let start = std::time::Instant::now();
            for _ in 0..iters {
                step(m);
            }
            start.elapsed()
        })
        .expect("the model's threads")
}

/// A rayon pool of exactly `n` threads (benchmarks run inside `pool.install`).
pub fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(n).build().expect("rayon pool")
}

/// Criterion throughput of `flops` floating-point operations, reported as elements/s: read
/// "Gelem/s" in the reports as GFLOP/s.
pub fn flops(flops: u64) -> Throughput {
    Throughput::Elements(flops)
}

pub use ember_kernels::reference::fill_uniform as fill;

/// Sets matrixmultiply's thread count. It reads `MATMUL_NUM_THREADS` once, on first use, so
/// each bench binary calls this at start-up before any product.
pub fn set_matrixmultiply_threads(n: usize) {
    std::env::set_var("MATMUL_NUM_THREADS", n.to_string());
}

/// The ISA the benchmarks run on: `EMBER_ISA` if set (an error if the CPU lacks it), else
/// the best detected. Also made the process default.
pub fn bench_isa() -> ember_kernels::Isa {
    let isa = ember_kernels::Isa::from_env().unwrap_or_else(|e| panic!("EMBER_ISA: {e}"));
    ember_kernels::arch::set_default_isa(isa).expect("checked above");
    eprintln!("ember benchmarks on ISA {isa}");
    isa
}

#[cfg(test)]
mod tests {
    use plotters::style::{FontDesc, FontFamily, FontStyle};

    #[test]
    fn criterions_plots_find_their_font() {
        let text = || FontDesc::new(FontFamily::SansSerif, 12.0, FontStyle::Normal).box_size("time per step");
        let _ = super::criterion();
        let (w, h) = text().expect("criterion's font family is registered");
        assert!(w > 0 && h > 0);
    }
}

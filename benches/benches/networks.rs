//! Group `networks`: one training step (forward, loss, backward, Adam) of each network of
//! the suite (`ember_benches::networks`: seed, convnet, cifar, resnet) on 1 and 2 threads,
//! ids `<network>/{1t,2t}`, timed on the model's threads (`Model::in_threads`). Throughput
//! is the step's direct-count FLOPs (read "Gelem/s" as GFLOP/s). Before the runs it prints
//! each network's FLOP table and this CPU's FMA peak on the benchmark ISA at 1 and 2
//! threads, measured in the same process, so the rate can be read as a share of the peak
//! (`scripts/network-table.py` does the division).
//!
//! Group `networks_predict`: `Model::predict` of each network over [`PREDICT_SAMPLES`]
//! samples in batches of 128 (the inference plan, batch normalization folded into the
//! convolutions), same ids; throughput in samples.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ember_benches::networks::{batch, network, NAMES};
use ember_benches::{bench_isa, flops, time_on_model_threads};
use ember_model::data::Dataset;
use std::time::Duration;

fn networks(c: &mut Criterion) {
    let isa = bench_isa();
    for t in [1, 2] {
        match ember_benches::peak::fma_peak(isa, t) {
            Some(p) => eprintln!("peak {isa} {t}t: {p:.1} GFLOP/s"),
            None => eprintln!("peak {isa} {t}t: no probe for this ISA"),
        }
    }
    let mut g = c.benchmark_group("networks");
    g.sample_size(20).warm_up_time(Duration::from_secs(2));
    for name in NAMES {
        for (suffix, threads) in [("1t", 1), ("2t", 2)] {
            let mut net = network(name, threads).expect("a suite network");
            let (x, labels) = batch(&net);
            let (_, total) = net.model.training_flops(net.batch);
            if threads == 1 {
                eprintln!(
                    "{name}: batch {}, {:.3} GFLOP per step\n{}",
                    net.batch,
                    total as f64 / 1e9,
                    net.model.flops_summary(net.batch)
                );
                eprintln!("{name} plan:\n{}", net.model.plan());
            }
            g.throughput(flops(total));
            g.bench_function(BenchmarkId::new(name, suffix), |b| {
                b.iter_custom(|iters| {
                    time_on_model_threads(&mut net.model, iters, |m| {
                        m.train_on_batch(&x, &labels).expect("step");
                    })
                })
            });
        }
    }
    g.finish();
}

/// Samples per `predict` call in `networks_predict`.
const PREDICT_SAMPLES: usize = 512;

fn networks_predict(c: &mut Criterion) {
    let mut g = c.benchmark_group("networks_predict");
    g.sample_size(20).warm_up_time(Duration::from_secs(2));
    for name in NAMES {
        for (suffix, threads) in [("1t", 1), ("2t", 2)] {
            let mut net = network(name, threads).expect("a suite network");
            let data = predict_data(&net);
            g.throughput(Throughput::Elements(PREDICT_SAMPLES as u64));
            g.bench_function(BenchmarkId::new(name, suffix), |b| {
                b.iter_custom(|iters| {
                    time_on_model_threads(&mut net.model, iters, |m| {
                        m.predict(&data, 128).expect("predict");
                    })
                })
            });
        }
    }
    g.finish();
}

/// [`PREDICT_SAMPLES`] samples: the training batch's repeated.
fn predict_data(net: &ember_benches::networks::Network) -> Dataset {
    let (x, labels) = batch(net);
    let per = x.len() / net.batch;
    let x = x.iter().copied().cycle().take(PREDICT_SAMPLES * per).collect();
    let labels = labels.iter().copied().cycle().take(PREDICT_SAMPLES).collect();
    Dataset::from_f32(x, net.input.to_vec(), labels).expect("a dataset")
}

criterion_group! {
    name = benches;
    config = ember_benches::criterion();
    targets = networks, networks_predict
}
criterion_main!(benches);

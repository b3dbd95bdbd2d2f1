#!/usr/bin/env python3
"""The network suite's side-by-side table (BENCHMARKS.md) from one sitting's results.

    cargo bench -p ember-benches --bench networks 2> networks.log   # prints the peaks
    for m in seed convnet cifar; do for t in 1 2; do
        .venv/bin/python scripts/keras_seed.py --model $m --threads $t --bench 50 --json keras.jsonl
    done; done
    python3 scripts/network-table.py --peak1 G1 --peak2 G2 [--keras keras.jsonl]

Reads target/criterion/networks/<net>/<1t|2t> (median time and the FLOP throughput the bench
declares) and, if given, Keras's JSON lines (median of each model/threads pair's runs);
G1 and G2 are the FMA peaks at one and two threads the bench printed. Prints one Markdown
row per network and thread count: ms/step both ways, Keras / Ember, GFLOP/s and % of peak.
"""
import argparse
import json
import os
import statistics

ap = argparse.ArgumentParser()
ap.add_argument("--peak1", type=float, required=True)
ap.add_argument("--peak2", type=float, required=True)
ap.add_argument("--keras", default=None)
a = ap.parse_args()

root = os.path.join(os.path.dirname(__file__), "..", "target", "criterion", "networks")
keras = {}
if a.keras:
    for line in open(a.keras):
        r = json.loads(line)
        keras.setdefault((r["model"], int(r["threads"])), []).append(r["ms_per_step"])

print("| network | threads | Ember ms/step | Keras ms/step | Keras / Ember | Ember GFLOP/s | % of peak |")
print("|---|---:|---:|---:|---:|---:|---:|")
for net in ["seed", "convnet", "cifar"]:
    for t in [1, 2]:
        d = os.path.join(root, net, f"{t}t", "new")
        if not os.path.exists(os.path.join(d, "estimates.json")):
            continue
        ns = json.load(open(os.path.join(d, "estimates.json")))["median"]["point_estimate"]
        flops = json.load(open(os.path.join(d, "benchmark.json")))["throughput"]["Elements"]
        ms = ns / 1e6
        gf = flops / ns
        peak = a.peak1 if t == 1 else a.peak2
        k = keras.get((net, t))
        kms = statistics.median(k) if k else None
        ratio = f"{kms / ms:.2f}x" if kms else "—"
        kcol = f"{kms:.2f}" if kms else "—"
        print(f"| {net} | {t} | {ms:.2f} | {kcol} | {ratio} | {gf:.0f} | {100 * gf / peak:.0f}% |")

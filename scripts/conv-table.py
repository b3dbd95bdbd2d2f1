#!/usr/bin/env python3
"""Prints the convolution benchmark results as one Markdown table per group (pass x threads):
rows = shapes, columns = algorithms, cells = GFLOP/s (effective: direct-convolution FLOPs
over the median time) and % of the given peak.

usage: scripts/conv-table.py --peak GFLOPS [--mt-peak GFLOPS]   (reads target/criterion)
"""
import json, os, sys

args = sys.argv[1:]
peak = {"1t": 116.0, "mt": 232.0}
while args:
    if args[0] == "--peak":
        peak["1t"] = float(args[1]); args = args[2:]
    elif args[0] == "--mt-peak":
        peak["mt"] = float(args[1]); args = args[2:]
    else:
        sys.exit(__doc__)
root = os.path.join(os.path.dirname(__file__), "..", "target", "criterion")
res = {}
for dirpath, dirs, files in os.walk(root):
    if os.path.basename(dirpath) != "new" or "estimates.json" not in files:
        continue
    bench = json.load(open(os.path.join(dirpath, "benchmark.json")))
    if not bench["group_id"].startswith("conv_"):
        continue
    ns = json.load(open(os.path.join(dirpath, "estimates.json")))["median"]["point_estimate"]
    elems = (bench.get("throughput") or {}).get("Elements")
    res[(bench["group_id"], bench["function_id"], bench["value_str"])] = (ns, elems / ns if elems else None)

shapes = ["seed_conv1", "mnist_conv2", "res56_64", "res28_128", "res14_256", "pw56_64_256", "down56_64_128",
          "pw28_64_256_n1"]
algos = ["direct", "im2col", "winograd2x3", "winograd4x3", "auto"]
for threads in ["1t", "mt"]:
    for p in ["fwd", "bwd_data", "bwd_filter"]:
        g = f"conv_{p}_{threads}"
        if not any(k[0] == g for k in res):
            continue
        print(f"\n`{g}`: GFLOP/s (% of {peak[threads]:.0f} GFLOP/s); auto: the time it took\n")
        print("| shape | " + " | ".join(algos) + " |")
        print("|---|" + "---:|" * len(algos))
        for s in shapes:
            cells = []
            for a in algos:
                r = res.get((g, a, s))
                if r is None:
                    cells.append("—")
                elif a == "auto":
                    cells.append(f"{r[1]:.1f} ({100 * r[1] / peak[threads]:.0f}%), {r[0] / 1e6:.3f} ms")
                else:
                    cells.append(f"{r[1]:.1f} ({100 * r[1] / peak[threads]:.0f}%)")
            print(f"| {s} | " + " | ".join(cells) + " |")

# Thread scaling of the algorithm Auto picks: 1t time / mt time.
rows = []
for p in ["fwd", "bwd_data", "bwd_filter"]:
    for s in shapes:
        a, b = res.get((f"conv_{p}_1t", "auto", s)), res.get((f"conv_{p}_mt", "auto", s))
        if a and b:
            rows.append(f"| {p} | {s} | {a[0] / 1e6:.3f} ms | {b[0] / 1e6:.3f} ms | {a[0] / b[0]:.2f}x |")
if rows:
    print("\nThread scaling of `auto` (median 1-thread time / all-threads time):\n")
    print("| pass | shape | 1 thread | all threads | speed-up |")
    print("|---|---|---:|---:|---:|")
    print("\n".join(rows))

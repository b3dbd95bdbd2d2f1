#!/usr/bin/env python3
"""The network suite against Keras in alternated rounds, from one sitting (BENCHMARKS.md's
side-by-side tables).

    python3 scripts/network-rounds.py [--rounds 3] [--nets seed,convnet,cifar,resnet]
        [--keras-py /work/tfvenv/bin/python] [--log rounds.log]

For each round, network and thread count (1, 2): one criterion run of Ember's step
(`networks/NET/Tt`, the `networks` bench binary, 4 s of measurement, 8 for the resnet), then
Keras's (`scripts/keras_seed.py --model NET --threads T --bench 40`, its median step, timed
from each epoch's first batch), so a slow spell of the host hits both sides alike. Prints every
pair as it comes, the FMA peak of the bench's ISA (the median of the probes each bench run
makes before it measures), then one Markdown row per network and thread count: the medians over
the rounds, the ratio of the medians with each round's own ratio, the GFLOP/s of the step's
direct-count FLOPs (as the bench reports them) and their share of the peak.
"""
import argparse
import json
import re
import statistics
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--nets", default="seed,convnet,cifar,resnet")
ap.add_argument("--keras-py", default="/work/tfvenv/bin/python")
ap.add_argument("--log", default=None, help="append every measured pair to this file")
a = ap.parse_args()
nets = a.nets.split(",")


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=True)


# The bench binary, built once (its path from cargo's JSON messages).
build = run(["cargo", "bench", "-p", "ember-benches", "--bench", "networks", "--no-run", "--message-format=json"])
binary = next(
    m["executable"]
    for m in map(json.loads, build.stdout.splitlines())
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "networks"
)

UNITS = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3}
ember, keras, gflop, peaks = {}, {}, {}, {1: [], 2: []}
for r in range(1, a.rounds + 1):
    for net in nets:
        for t in (1, 2):
            secs = "8" if net == "resnet" else "4"
            out = run([binary, "--bench", f"networks/{net}/{t}t$", "--warm-up-time", "1", "--measurement-time", secs, "--noplot"])
            m = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", out.stdout)
            e = float(m.group(1)) * UNITS[m.group(2)]
            # Each run measures the FMA peak of its ISA at 1 and 2 threads first.
            for pt, pv in re.findall(r"^peak \S+ (\d)t: ([\d.]+) GFLOP/s", out.stderr, re.M):
                peaks[int(pt)].append(float(pv))
            f = re.search(rf"^{net}: batch \d+, ([\d.]+) GFLOP per step", out.stderr, re.M)
            if f:
                gflop[net] = float(f.group(1))
            kout = run([a.keras_py, "scripts/keras_seed.py", "--model", net, "--threads", str(t), "--bench", "40"]).stdout
            k = json.loads(next(l for l in kout.splitlines() if l.startswith("{")))["ms_per_step"]
            ember.setdefault((net, t), []).append(e)
            keras.setdefault((net, t), []).append(k)
            line = f"round {r} {net} {t}t ember_ms {e:.4f} keras_ms {k:.3f}"
            print(line, flush=True)
            if a.log:
                with open(a.log, "a") as log:
                    log.write(line + "\n")

peak = {t: statistics.median(v) for t, v in peaks.items()}
print(f"\npeak (medians of the runs' own probes): {peak[1]:.1f} GFLOP/s on one thread, {peak[2]:.1f} on two")
print()
print("| network | threads | Ember ms/step | Keras ms/step | Keras / Ember (rounds) | GFLOP/s | % of peak |")
print("|---|---:|---:|---:|---:|---:|---:|")
for net in nets:
    for t in (1, 2):
        e, k = ember[(net, t)], keras[(net, t)]
        me, mk = statistics.median(e), statistics.median(k)
        rounds = ", ".join(f"{y / x:.2f}" for x, y in zip(e, k))
        rate = gflop.get(net, float("nan")) * 1e3 / me
        print(f"| {net} | {t} | {me:.3f} | {mk:.2f} | {mk / me:.2f}x ({rounds}) | {rate:.0f} | {100 * rate / peak[t]:.0f}% |")
sys.stdout.flush()

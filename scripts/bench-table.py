#!/usr/bin/env python3
"""Prints criterion results as a Markdown table: median time, GFLOP/s (from the throughput
each benchmark declares) and % of a given peak.

usage: scripts/bench-table.py [--peak GFLOPS] [REGEX]   (reads target/criterion)
"""
import json, os, re, sys

args = sys.argv[1:]
peak = None
if len(args) >= 2 and args[0] == "--peak":
    peak = float(args[1]); args = args[2:]
pat = re.compile(args[0] if args else ".")
root = os.path.join(os.path.dirname(__file__), "..", "target", "criterion")
rows = []
for dirpath, dirs, files in os.walk(root):
    if os.path.basename(dirpath) != "new" or "estimates.json" not in files:
        continue
    bench = json.load(open(os.path.join(dirpath, "benchmark.json")))
    bid = bench["full_id"]
    if not pat.search(bid):
        continue
    est = json.load(open(os.path.join(dirpath, "estimates.json")))
    ns = est["median"]["point_estimate"]
    tp = bench.get("throughput") or {}
    elems = tp.get("Elements") or tp.get("Bytes")
    gf = elems / ns if elems else None
    rows.append((bid, ns, gf))
rows.sort()
print("| benchmark | median | GFLOP/s |" + (" % of peak |" if peak else ""))
print("|---|---:|---:|" + ("---:|" if peak else ""))
for bid, ns, gf in rows:
    t = f"{ns/1e6:.3f} ms" if ns >= 1e5 else f"{ns/1e3:.2f} µs"
    g = f"{gf:.1f}" if gf else "-"
    p = f" {100*gf/peak:.0f}% |" if peak and gf else (" - |" if peak else "")
    print(f"| `{bid}` | {t} | {g} |{p}")

#!/usr/bin/env python3
"""A model on paper of data-parallel training (issue 15): step time and scaling efficiency of
Ember's reference CNN (seed), the keras.io convnet, and a convnet 10x wider, on 2-64 nodes
joined by 10 or 100 Gb/s links.

Weak scaling, as data-parallel training is used: every node keeps its one-node batch (seed
32, convnet 128), so its compute per step stays what one node measures, and the global batch
grows with the nodes. A step costs compute + combine (no overlap of the combine with the
backward pass: Ember does not overlap it). Efficiency = compute / step.

Combine, for P float32 gradients (4P bytes) on R nodes, alpha-beta model (alpha: latency per
message, beta: seconds per byte):
  chain      Ember's exact combine as implemented: R-1 sequential hops of the whole vector,
             then a broadcast (pipelined, ~ 2 * 4P*beta + log2(R) * alpha for large vectors):
             (R-1)(alpha + 4P beta) + log2(R) alpha + 2 * 4P beta
  chain, pipelined  the same fixed order, the vector cut into C chunks that flow down the
             chain one after another (exact, not implemented): (R-2+C)(alpha + 4P beta / C)
             with the best C, + the broadcast as above
  ring       ring allreduce (Horovod/NCCL; its summation order depends on R, so weights are
             not the same for every rank count): 2(R-1) alpha + 2 (R-1)/R * 4P beta
  tree       binary-tree reduce + broadcast: 2 log2(R) (alpha + 4P beta)

Links: 10 Gb/s (beta = 0.8 ns/byte, alpha = 25 us: TCP through the kernel), 100 Gb/s
(beta = 0.08 ns/byte, alpha = 3 us: RDMA). The adds of the combine (P per hop, ~P/4 ns at
memory speed) are left out: under 15 us for 2M floats.

    python3 scripts/dp-model.py --seed-ms 0.28 --convnet-ms 8.9
"""
import argparse
import math

NETS = {
    # name: (trainable floats, GFLOP per step at the one-node batch where it is needed: the
    # wide network's compute is the convnet's measured rate applied to its direct-count FLOPs)
    "seed (batch 32)": (54_410, None),
    "convnet (batch 128)": (34_826, 1.83),
    # Conv2D(320) -> Conv2D(640) -> Dense(10): 2.01 M weights; ~100x the 32->64 layer's work.
    "convnet x10 wide (batch 128)": (2_007_050, 171.0),
}
LINKS = {"10 Gb/s": (25e-6, 0.8e-9), "100 Gb/s": (3e-6, 0.08e-9)}


def bcast(p, r, a, b):
    return math.log2(r) * a + 2 * 4 * p * b


def chain(p, r, a, b):
    return (r - 1) * (a + 4 * p * b) + bcast(p, r, a, b)


def chain_pipelined(p, r, a, b):
    best = min((r - 2 + c) * (a + 4 * p * b / c) for c in range(1, 4097))
    return best + bcast(p, r, a, b)


def ring(p, r, a, b):
    return 2 * (r - 1) * a + 2 * (r - 1) / r * 4 * p * b


def tree(p, r, a, b):
    return 2 * math.log2(r) * (a + 4 * p * b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed-ms", type=float, required=True, help="measured ms per step, one node")
    ap.add_argument("--convnet-ms", type=float, required=True, help="measured ms per step, one node")
    a = ap.parse_args()
    rate = NETS["convnet (batch 128)"][1] / (a.convnet_ms / 1e3)  # FLOP/s, for the wide one
    compute = {
        "seed (batch 32)": a.seed_ms / 1e3,
        "convnet (batch 128)": a.convnet_ms / 1e3,
        "convnet x10 wide (batch 128)": NETS["convnet x10 wide (batch 128)"][1] / rate,
    }
    algos = [("chain", chain), ("chain, pipelined", chain_pipelined), ("ring", ring), ("tree", tree)]
    for link, (al, be) in LINKS.items():
        print(f"\n### {link} links (alpha {al * 1e6:.0f} us, {1 / be / 1e9:.2f} GB/s)\n")
        print("| network | compute ms/step | combine | " + " | ".join(f"{r} nodes" for r in (2, 4, 8, 16, 32, 64)) + " |")
        print("|---|---:|---|" + "---:|" * 6)
        for name, (p, _) in NETS.items():
            c = compute[name]
            for aname, f in algos:
                cells = []
                for r in (2, 4, 8, 16, 32, 64):
                    t = f(p, r, al, be)
                    cells.append(f"{(c + t) * 1e3:.2f} ms, {100 * c / (c + t):.0f}%")
                print(f"| {name} | {c * 1e3:.2f} | {aname} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

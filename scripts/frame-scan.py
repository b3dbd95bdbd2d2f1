#!/usr/bin/env python3
"""Checks that x86 kernels keep their vector stack slots on whole cache lines.

A `#[target_feature]` function keeps its caller's 16-byte stack alignment unless it
realigns its frame, so whether a 32- or 64-byte spill slot straddles two cache lines depends
on the call depth; a straddling spill cannot forward to its reload (session 24: the
one-channel fused forward ran 1.4-1.7x slower inside the seed network than in its layer
bench for it). `simd_dispatch!`'s x86 kernels therefore start with `align_frame!()`, which
makes LLVM emit `and $-64,%rsp`.

This disassembles a release binary (`objdump -d`) and lists every `ember_kernels` function
that reads or writes a ymm/zmm register at `(%rsp)` without such an `and`. It exits 1 if
any is found outside the allowed families below, 2 if the binary holds no `ember_kernels`
function with vector stack traffic at all (the scan would then prove nothing).

Usage: scripts/frame-scan.py BINARY   (e.g. target/release/examples/mnist)
"""

import re
import subprocess
import sys

# The GEMM microkernels are written without `simd_dispatch!` and keep their whole tile in
# registers in the hot loop; their only stack vectors are the edge tile's buffer, written
# once per partial tile (aligning them measured within noise on AVX2, session 24).
ALLOWED = ("ember_kernels::gemm::ukr::",)

HEADER = re.compile(r"^[0-9a-f]+ <(.*)>:$")
VECTOR = re.compile(r"%[yz]mm\d+")
REALIGN = re.compile(r"\band[q]?\s+\$0xf+[ce]0,%rsp")


def scan(lines):
    """[(function, vector stack accesses, realigned)] for every function in `lines` (the
    instances of one generic function share a name, so each is its own entry)."""
    stats = []
    for line in lines:
        m = HEADER.match(line)
        if m:
            stats.append([m.group(1), 0, False])
        elif stats:
            if "(%rsp)" in line and VECTOR.search(line):
                stats[-1][1] += 1
            if REALIGN.search(line):
                stats[-1][2] = True
    return stats


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    try:
        out = subprocess.run(
            ["objdump", "-d", "--no-show-raw-insn", "-C", sys.argv[1]], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"error: cannot disassemble {sys.argv[1]}: {e}", file=sys.stderr)
        return 2
    with_traffic = [(f, n, ok) for f, n, ok in scan(out.splitlines()) if f.startswith("ember_kernels::") and n > 0]
    if not with_traffic:
        print(f"error: no ember_kernels function in {sys.argv[1]} touches vectors on the stack", file=sys.stderr)
        return 2
    unaligned = [(f, n) for f, n, ok in with_traffic if not ok]
    bad = [(f, n) for f, n in unaligned if not f.startswith(ALLOWED)]
    print(
        f"{len(with_traffic)} kernel functions touch ymm/zmm at (%rsp): {len(with_traffic) - len(unaligned)} "
        f"realign their frame, {len(unaligned) - len(bad)} allowed unaligned ({', '.join(ALLOWED)})"
    )
    for f, n in sorted(bad, key=lambda fn: -fn[1]):
        print(f"unaligned frame: {n} vector stack accesses in {f}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

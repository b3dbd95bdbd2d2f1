#!/usr/bin/env bash
# Runs the portable (scalar) paths of the kernels under Miri: the GEMM driver and packing,
# every convolution algorithm and pass, the fused kernel, pooling, dense and elementwise
# kernels, on small cases (kernels/tests/miri_smoke.rs). Needs a nightly toolchain with the
# miri component (`rustup component add --toolchain nightly miri`); skipped without one.
#
# Tree Borrows instead of Stacked Borrows: rayon's deque (crossbeam-epoch) is known not to
# be Stacked-Borrows-clean (crossbeam-rs/crossbeam#545) and crossbeam runs its own Miri CI
# under Tree Borrows (crossbeam-rs/crossbeam#996). Rayon's global pool outlives the tests,
# hence -Zmiri-ignore-leaks; its int-to-pointer casts, hence permissive provenance.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo +nightly miri --version >/dev/null 2>&1; then
  echo "== miri: no nightly toolchain with miri here; skipped"
  echo "   (rustup toolchain install nightly --component miri, then: bash scripts/miri.sh)"
  exit 0
fi
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-tree-borrows -Zmiri-permissive-provenance -Zmiri-ignore-leaks}"
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
cargo +nightly miri test -p ember-kernels --test miri_smoke "$@"

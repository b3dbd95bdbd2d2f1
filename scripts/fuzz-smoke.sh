#!/usr/bin/env bash
# Builds the cargo-fuzz targets (libFuzzer + AddressSanitizer) and runs each for a bounded
# time from the committed seeds (a temporary copy: the repository is not modified).
#   bash scripts/fuzz-smoke.sh [SECONDS_PER_TARGET [TARGETS_AT_ONCE]]     (default 30, 1)
# A libFuzzer run takes one core: with a core to spare, two at a time take 3 rounds
# instead of 5, each target still on a core of its own for its whole time.
# For a long run of one target (an hour, say):
#   cargo fuzz run -O conv_vs_reference -- -max_total_time=3600
# On a stable toolchain RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
at_once="${2:-1}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
targets=(idx_parse weights_load gemm_vs_reference conv_vs_reference pool_vs_reference)
echo "== fuzz: building"
cargo fuzz build -O
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One target's run from a copy of its seeds, its output in `$work/$t.log` and any failing
# input in `$work/$t-artifacts/`. cargo fuzz run exits non-zero on a crash; the artifacts,
# checked below, are what tell.
run_target() {
  local t=$1
  mkdir -p "$work/$t" "$work/$t-artifacts"
  cp fuzz/seeds/"$t"/* "$work/$t"/
  cargo fuzz run -O "$t" "$work/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 \
    -artifact_prefix="$work/$t-artifacts/" >"$work/$t.log" 2>&1 || true
}

for ((i = 0; i < ${#targets[@]}; i += at_once)); do
  batch=("${targets[@]:i:at_once}")
  for t in "${batch[@]}"; do
    echo "== fuzz: $t for ${secs}s"
    run_target "$t" &
  done
  wait
  for t in "${batch[@]}"; do
    grep -E "^#[0-9]+ +DONE|^Done [0-9]+ runs|ERROR|panicked|SUMMARY" "$work/$t.log" | sed "s/^/$t: /" || true
    # (Not with one `ls` of the four patterns: it fails whenever any pattern matches
    # nothing, so a crash alone never tripped the check.)
    found=$(find "$work/$t-artifacts" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \))
    if [ -n "$found" ]; then
      echo "fuzz target $t found a failing input:"; echo "$found"
      for f in $found; do echo "  bytes: $(od -An -tu1 -v "$f" | tr -s ' \n' ' ')"; done
      exit 1
    fi
  done
done

#!/usr/bin/env bash
# The checks that need a CPU this machine may not have (AVX-512 above all: the Zen 3 class
# that most sessions get has only AVX2, and QEMU's TCG has no AVX-512), run on a borrowed
# machine that has no network and no Rust toolchain.
#
#   bash scripts/device-check.sh pack   here: statically linked, stripped test binaries of
#                                       ember-kernels and ember-model, and the peak, sgemm_1t
#                                       and networks benchmarks, into target/device-pack
#                                       (~17 MB of xz; builds in target/static, ~10 minutes)
#   bash scripts/device-check.sh run    there, from the repository's root, with
#                                       target/device-pack carried: the CPU, every test on
#                                       every ISA the CPU has, the FMA peak, GEMM at one thread
#                                       and the networks' steps. Logs to $OUT (or target/).
#
# Static (`+crt-static`), so the binaries need nothing of the other machine's C library. The
# tests read fixtures and data/mnist by the absolute path of the checkout they were built
# in (`env!("CARGO_MANIFEST_DIR")`): `run` links that path to the checkout it runs in.
set -euo pipefail
cd "$(dirname "$0")/.."
pack=target/device-pack
target=x86_64-unknown-linux-gnu

case "${1:-}" in
pack)
    export RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=target/static
    # `--target` keeps build scripts and proc-macros out of the static link.
    cargo test --target "$target" -p ember-kernels -p ember-model --no-run 2>&1 | grep -v '^  Executable' || true
    cargo build --release --target "$target" -p ember-benches --bin peak
    cargo bench --target "$target" -p ember-benches --bench sgemm_1t --bench networks --no-run
    stage=target/device-stage
    rm -rf "$pack" "$stage" && mkdir -p "$pack" "$stage/tests" "$stage/bin"
    # Test binaries: `name-hash` executables in deps (the newest build of each name).
    for f in $(ls -t target/static/$target/debug/deps/ | grep -E '^[a-z_]+-[0-9a-f]{16}$'); do
        name=${f%-*}
        [ -e "$stage/tests/$name" ] || strip -o "$stage/tests/$name" "target/static/$target/debug/deps/$f"
    done
    strip -o "$stage/bin/peak" "target/static/$target/release/peak"
    for b in sgemm_1t networks; do
        f=$(ls -t target/static/$target/release/deps/ | grep -E "^$b-[0-9a-f]{16}$" | head -n 1)
        strip -o "$stage/bin/$b" "target/static/$target/release/deps/$f"
    done
    # ~160 MB stripped, ~17 MB in xz: what travels is limited to 64 MiB with the checkout.
    tar -I "xz -T0" -cf "$pack/bins.tar.xz" -C "$stage" .
    rm -rf "$stage"
    pwd >"$pack/built-in"
    git rev-parse --short HEAD >"$pack/commit"
    du -sh "$pack"
    ;;
run)
    [ -d "$pack" ] || { echo "error: no $pack: run 'bash scripts/device-check.sh pack' here and carry it"; exit 1; }
    out=${OUT:-target}
    log="$out/device-check.log"
    exec > >(tee "$log") 2>&1
    echo "== commit $(cat "$pack/commit"), $(nproc) CPUs"
    grep -m 1 'model name' /proc/cpuinfo || true
    echo "ISA flags: $(grep -o -w -E 'avx2|fma|avx512f|avx512dq|avx512bw|avx512vl' /proc/cpuinfo | sort -u | tr '\n' ' ')"
    bins=/tmp/device-bins
    rm -rf "$bins" && mkdir -p "$bins" && tar xJf "$pack/bins.tar.xz" -C "$bins"
    built=$(cat "$pack/built-in")
    if [ "$built" != "$PWD" ] && [ ! -e "$built" ]; then
        mkdir -p "$(dirname "$built")" && ln -s "$PWD" "$built"
    fi
    failed=()
    echo "== tests, every ISA this CPU has"
    for t in "$bins"/tests/*; do
        # The MPI test needs mpirun and the feature; it is built empty without it.
        if ! "$t" -q >"$out/test-$(basename "$t").log" 2>&1; then
            failed+=("$(basename "$t")")
            tail -n 30 "$out/test-$(basename "$t").log"
        fi
        echo "$(basename "$t"): $(grep -E '^test result' "$out/test-$(basename "$t").log" | tail -n 1)"
    done
    echo "== peak"
    "$bins/bin/peak"
    echo "== GEMM, one thread (criterion medians)"
    "$bins/bin/sgemm_1t" --bench '^sgemm_1t/' --warm-up-time 0.5 --measurement-time 2 --noplot 2>&1 |
        grep -E '^sgemm_1t|time:|thrpt:' | grep -v change || true
    echo "== networks, one and two threads"
    "$bins/bin/networks" --bench '^networks/' --warm-up-time 0.5 --measurement-time 3 --noplot 2>&1 |
        grep -E '^networks|time:' | grep -v change || true
    if [ ${#failed[@]} -gt 0 ]; then
        echo "== failed: ${failed[*]}"
        exit 1
    fi
    echo "== all tests passed"
    ;;
*)
    echo "usage: bash scripts/device-check.sh pack|run" >&2
    exit 2
    ;;
esac

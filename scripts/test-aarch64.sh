#!/usr/bin/env bash
# Builds ember-kernels for aarch64-unknown-linux-gnu with Debian's Rust toolchain and runs its
# tests (NEON microkernels included) under QEMU user-mode emulation.
# Recipe and pitfalls: shared/notes/aarch64.md (do not pass -L to qemu: it hangs threads).
set -euo pipefail
cd "$(dirname "$0")/.."

need_install=0
for bin in /usr/bin/cargo /usr/bin/rustc qemu-aarch64 aarch64-linux-gnu-gcc; do
  command -v "$bin" >/dev/null 2>&1 || need_install=1
done
[ -d /usr/lib/rustlib/aarch64-unknown-linux-gnu ] || need_install=1
if [ "$need_install" = 1 ]; then
  echo "== installing Debian's Rust toolchain, arm64 std and QEMU"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu qemu-user >/dev/null
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_DIR=target/aarch64-debian
# QEMU is 5-20x slower than native: fewer proptest cases, same properties.
export PROPTEST_CASES="${PROPTEST_CASES:-12}"
echo "== aarch64 (QEMU): cargo test -p ember-kernels"
/usr/bin/cargo test --target aarch64-unknown-linux-gnu -p ember-kernels "$@"

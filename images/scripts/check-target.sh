#!/bin/sh
# Proves a target image before it is tagged: a crate with a thread builds for
# the target with plain cargo (std comes from the sysroot, no network) and,
# where the image can run the target's programs, runs. The links also fill
# zig's cache for the target, so builds find its C library ready: a release
# and a debug one (the dev profile's and cargo test's), which zig builds apart
# (a minute each in a fresh container otherwise).
# Usage: check-target.sh TRIPLE run|build
set -eu

triple=${1:?usage: check-target.sh TRIPLE run|build}
mode=${2:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"
# Edition 2024 where the toolchain has it (Rust 1.85 and later).
edition=2021
if [ "$(rustc --version | cut -d. -f2)" -ge 85 ]; then
    edition=2024
fi
cat >"$work/Cargo.toml" <<TOML
[package]
name = "rustfarm-check"
version = "0.0.0"
edition = "$edition"

[profile.release]
panic = "abort"
TOML
cat >"$work/src/main.rs" <<'RUST'
fn main() {
    let worker = std::thread::spawn(|| (1..=10u64).sum::<u64>());
    let sum = worker.join().expect("the thread ran");
    assert_eq!(sum, 55);
    println!("rustfarm-check: {} ok", std::env::consts::ARCH);
}
RUST
cd "$work"
cargo build --release --offline --quiet --target "$triple"
cargo build --offline --quiet --target "$triple"
if [ "$mode" = run ]; then
    cargo run --release --offline --quiet --target "$triple"
fi
echo "check-target.sh: $triple builds with $(rustc --version)"

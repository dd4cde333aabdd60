#!/bin/sh
# Builds the standard library for a target from the toolchain's std sources
# (RUSTFARM_STD_SOURCE, Debian's rust-web-src with its dependencies vendored)
# and installs it into rustc's sysroot, as rustup's rust-std component would:
# projects then build for the target with plain cargo, never rebuilding std.
# The target's linker and rustflags come from the image's environment, so std
# is built exactly as projects will use it. Usage: build-std.sh TRIPLE
set -eu

triple=${1:?usage: build-std.sh TRIPLE}
source=${RUSTFARM_STD_SOURCE:?the toolchain image sets RUSTFARM_STD_SOURCE}
sysroot_lib="$(rustc --print sysroot)/lib/rustlib/$triple/lib"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/.cargo"
# panic_abort must be compiled with -C panic=abort, as Rust's own build does,
# so that projects with panic = "abort" can link it. std keeps its LLVM bitcode
# (-C embed-bitcode=yes, as Rust's own std does; cargo would pass "no"), which
# projects with lto = true and the farm's min-size profile link against.
cat >"$work/Cargo.toml" <<TOML
cargo-features = ["profile-rustflags"]

[package]
name = "rustfarm-std"
version = "0.0.0"
edition = "2021"

[lib]
path = "src/lib.rs"

[profile.release]
rustflags = ["-Cembed-bitcode=yes"]

[profile.release.package.panic_abort]
rustflags = ["-Cpanic=abort", "-Cembed-bitcode=yes"]
TOML
: >"$work/src/lib.rs"
cat >"$work/.cargo/config.toml" <<TOML
[unstable]
build-std = ["std", "panic_abort", "test"]

[source.crates-io]
replace-with = "rust-std-vendor"

[source.rust-std-vendor]
directory = "$source/vendor"
TOML

echo "build-std.sh: building std for $triple from $source"
cd "$work"
# build-std is unstable; Debian's cargo accepts -Z settings, rustc needs this.
RUSTC_BOOTSTRAP=1 cargo build --release --offline --target "$triple" --quiet

mkdir -p "$sysroot_lib"
count=0
for rlib in "target/$triple/release/deps/"lib*.rlib; do
    case $rlib in
        */librustfarm_std-*) continue ;;
    esac
    install -m 0644 "$rlib" "$sysroot_lib/"
    count=$((count + 1))
done
echo "build-std.sh: installed $count libraries ($(du -sh "$sysroot_lib" | cut -f1)) in $sysroot_lib"

#!/bin/sh
# Installs one target's toolchain on a rustfarm/rust image: its Debian packages
# (PACKAGE:ARCH adds that architecture first), zig's cc for a musl target, and
# its std built from source where the table says so.
# Usage: install-target.sh [--zig 'ZIG-TARGET [FLAGS]'] [--build-std] TRIPLE [PACKAGE...]
set -eu

zig=""
build_std=no
while [ "$#" -gt 0 ]; do
    case $1 in
        --zig) zig=$2; shift 2 ;;
        --build-std) build_std=yes; shift ;;
        *) break ;;
    esac
done
triple=${1:?usage: install-target.sh [--zig ZIG-TARGET] [--build-std] TRIPLE [PACKAGE...]}
shift

for package in "$@"; do
    case $package in
        *:*)
            arch=${package#*:}
            if [ "$arch" != "$(dpkg --print-architecture)" ]; then
                dpkg --add-architecture "$arch"
            fi
            ;;
    esac
done
if [ "$#" -gt 0 ]; then
    "$(dirname "$0")/apt-install.sh" "$@"
    "$(dirname "$0")/drop-setuid.sh"
fi

if [ -n "$zig" ]; then
    # zig cc links against the musl it carries for the target: cargo's linker and
    # the C and C++ compilers of build scripts (rustfarm-zig-cc, by these names).
    mkdir -p /usr/local/lib/rustfarm/zig-target
    printf '%s\n' "$zig" >"/usr/local/lib/rustfarm/zig-target/$triple"
    ln -sf /usr/local/bin/rustfarm-zig-cc "/usr/local/bin/$triple-cc"
    ln -sf /usr/local/bin/rustfarm-zig-cc "/usr/local/bin/$triple-c++"
fi

if [ "$build_std" = yes ]; then
    "$(dirname "$0")/build-std.sh" "$triple"
fi

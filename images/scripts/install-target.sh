#!/bin/sh
# Installs one target's toolchain: adds its Debian architecture, whose Rust std
# and C library come as <package>:<arch>, then its packages.
# Usage: install-target.sh DEBIAN_ARCH|- PACKAGE...
set -eu

arch=$1
shift
if [ "$arch" != "-" ] && [ "$arch" != "$(dpkg --print-architecture)" ]; then
    dpkg --add-architecture "$arch"
fi
if [ "$#" -gt 0 ]; then
    exec "$(dirname "$0")/apt-install.sh" "$@"
fi

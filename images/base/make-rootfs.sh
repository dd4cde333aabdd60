#!/bin/sh
# Writes a minimal Debian bookworm root filesystem to the tarball named by $1,
# for `docker import`: the base of every rustfarm image. Its apt sources are
# bookworm, bookworm-updates and bookworm-security (where Debian's current
# Rust toolchain, rustc-web, is published).
set -eu

out=${1:?usage: make-rootfs.sh OUTPUT.tar}
mirror=${RUSTFARM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${RUSTFARM_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

# The dpkg and apt options are written into the image, so every later layer
# also skips documentation and recommended packages, as debian:*-slim does.
exec mmdebstrap \
    --variant=minbase \
    --format=tar \
    --aptopt='APT::Install-Recommends "false"' \
    --aptopt='APT::Install-Suggests "false"' \
    --aptopt='Acquire::Languages "none"' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    bookworm "$out" \
    "deb $mirror bookworm main" \
    "deb $mirror bookworm-updates main" \
    "deb $security bookworm-security main"

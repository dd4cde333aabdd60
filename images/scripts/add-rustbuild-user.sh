#!/bin/sh
# Creates the unprivileged user builds run as. The uid is fixed so files in
# volumes and caches shared between images keep one owner.
set -eu

uid=${1:-1000}
groupadd --gid "$uid" rustbuild
useradd --uid "$uid" --gid rustbuild --create-home --home-dir /home/rustbuild \
    --shell /bin/bash rustbuild
# Mount point of the farm's per-(project, target) build cache: a new named
# volume copies this directory's owner, so rustbuild can write to it.
install -d -o rustbuild -g rustbuild /home/rustbuild/cache

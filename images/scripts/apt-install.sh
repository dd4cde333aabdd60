#!/bin/sh
# Installs Debian packages and drops apt's lists and caches in the same layer,
# so the layer holds only the installed files. Usage: apt-install.sh PACKAGE...
set -eu

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "$@"
apt-get clean
rm -rf /var/lib/apt/lists/*

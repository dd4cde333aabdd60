#!/bin/sh
# A target image's audit-tools stage: cargo-auditable and rust-audit-info, built
# offline from the crates images/tool_crates.py fetched on the host (the tools
# file lists them), each with the Cargo.lock its crate ships, into
# /opt/audit-tools/bin.
set -eu
crates=/tmp/tool-crates
while read -r crate; do
    cargo install --locked --offline --quiet --config "$crates/vendored.toml" \
        --root /opt/audit-tools --path "$crates/vendor/$crate"
    test -x "/opt/audit-tools/bin/${crate%-*}"
done <"$crates/tools"

#!/bin/sh
# Cargo's RUSTC_WRAPPER on an EC2 pool: sccache on the pool's S3 bucket, with
# cargo's pipelining kept (sccache_pipelined.py). A project built with cargo
# auditable has its own crates compiled through cargo-auditable (cargo's
# RUSTC_WORKSPACE_WRAPPER, given first), which sccache does not take for a
# compiler: those go straight to it, uncached.
case ${1##*/} in
    cargo-auditable) exec "$@" ;;
esac
# cargo-auditable's copy of cargo's arguments is for the project's own crates: out
# of a dependency's compile, where sccache would count it into the crate's key.
unset CARGO_AUDITABLE_ORIG_ARGS
exec python3 -S "$RUSTFARM_TOOL" sccache-pipelined "$@"

#!/bin/sh
# Cargo's RUSTC_WRAPPER on an EC2 pool: sccache on the pool's S3 bucket, with
# cargo's pipelining kept (sccache_pipelined.py).
exec python3 -S "$RUSTFARM_TOOL" sccache-pipelined "$@"

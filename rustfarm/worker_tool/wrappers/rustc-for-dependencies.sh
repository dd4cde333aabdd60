#!/bin/sh
# Cargo's RUSTC_WRAPPER on a docker pool: rustc through the farm's crate cache
# (crate_cache.py) for dependencies only. The pool keeps each project's target
# directory, which rebuilds the project's own crates (CARGO_PRIMARY_PACKAGE)
# incrementally; through the cache they would only fill it with entries no other
# build reads. Cargo's questions to rustc (its version, a target's file names)
# go straight to rustc too. A library's compile goes through the cache; any
# other (build scripts, proc-macros) to rustc, counted.
if [ -n "${CARGO_PRIMARY_PACKAGE:-}" ]; then
    exec "$@"
fi
# cargo-auditable's copy of cargo's arguments (a project built with cargo auditable)
# is for the project's own crates: out of the cache key of a dependency's compile.
unset CARGO_AUDITABLE_ORIG_ARGS
case " $* " in
    *" - --crate-name ___ "* | *" -vV "*) exec "$@" ;;
    *" --emit=dep-info,metadata,link "*) exec python3 -S "$RUSTFARM_TOOL" crate-cache "$@" ;;
esac
echo "not-cacheable ${CARGO_PKG_NAME:-rustc}" >>"$HOME/.rustfarm/compile-cache.log"
exec "$@"

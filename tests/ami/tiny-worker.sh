#!/bin/sh
# Entrypoint of the tiny test worker image (busybox only). It reports what the
# boot script gave it without ever printing a secret's value, waits
# TINY_WORKER_HOLD seconds, and exits with TINY_WORKER_EXIT.
echo "tiny-worker: started"
for name in $(env | cut -d= -f1 | sort); do
    echo "tiny-worker: env $name"
done
echo "tiny-worker: BUILDMASTER=${BUILDMASTER:-}"
echo "tiny-worker: BUILDMASTER_PORT=${BUILDMASTER_PORT:-}"
echo "tiny-worker: WORKERNAME=${WORKERNAME:-}"
if [ -n "${RUSTFARM_WORKERPASS_FILE:-}" ]; then
    # As the worker image's entrypoint does: read the password file, then delete it.
    WORKERPASS=$(cat "$RUSTFARM_WORKERPASS_FILE")
    rm -f "$RUSTFARM_WORKERPASS_FILE"
fi
echo "tiny-worker: WORKERPASS sha256 $(printf '%s' "${WORKERPASS:-}" | sha256sum | cut -d' ' -f1)"
echo "tiny-worker: hostname $(hostname)"
echo "tiny-worker: interfaces $(cd /sys/class/net && echo *) "
if [ -S "${RUSTFARM_MASTER_SOCKET:-/none}" ]; then
    echo "tiny-worker: master socket $RUSTFARM_MASTER_SOCKET"
fi
sleep "${TINY_WORKER_HOLD:-0}"
echo "tiny-worker: exiting with status ${TINY_WORKER_EXIT:-0}"
exit "${TINY_WORKER_EXIT:-0}"

#!/bin/bash
# Starts a Buildbot worker in the foreground, logging to stdout, from the
# variables Buildbot's DockerLatentWorker passes: BUILDMASTER, BUILDMASTER_PORT,
# WORKERNAME, WORKERPASS (and BUILDMASTER_PROTOCOL). Instead of WORKERPASS,
# RUSTFARM_WORKERPASS_FILE may name a file holding the password, which is
# deleted once read (the farm's docker pools mount one, so the password is not
# in the container's configuration).
# Optional: RUSTFARM_MASTER_SOCKET (the master's worker port as a Unix socket,
# used instead of BUILDMASTER:BUILDMASTER_PORT), RUSTFARM_WORKER_MAXRETRIES
# (connection attempts before giving up, default 5; 0 retries for ever),
# WORKER_ENVIRONMENT_BLACKLIST (space-separated patterns of variables kept from
# build steps; WORKERPASS always is).
# Exit status: 2 when a variable is missing or wrong, 3 when the buildmaster
# cannot be reached.
set -euo pipefail

fail() {
    echo "rustfarm-worker: $2" >&2
    exit "$1"
}

# Builds must not run as root; drop to rustbuild if started as root.
if [ "$(id -u)" = 0 ]; then
    exec setpriv --reuid=rustbuild --regid=rustbuild --init-groups \
        env HOME=/home/rustbuild "$0" "$@"
fi

if [ -z "${WORKERPASS:-}" ] && [ -n "${RUSTFARM_WORKERPASS_FILE:-}" ]; then
    if [ ! -r "$RUSTFARM_WORKERPASS_FILE" ]; then
        fail 2 "RUSTFARM_WORKERPASS_FILE names $RUSTFARM_WORKERPASS_FILE, which cannot be read"
    fi
    WORKERPASS=$(cat "$RUSTFARM_WORKERPASS_FILE")
    rm -f "$RUSTFARM_WORKERPASS_FILE"
fi
unset RUSTFARM_WORKERPASS_FILE

missing=()
for name in BUILDMASTER BUILDMASTER_PORT WORKERNAME WORKERPASS; do
    if [ -z "${!name:-}" ]; then
        missing+=("$name")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    fail 2 "missing environment variable(s): ${missing[*]} (Buildbot's DockerLatentWorker sets them; by hand use docker run -e NAME=VALUE)"
fi
case $BUILDMASTER_PORT in
    '' | *[!0-9]*) fail 2 "BUILDMASTER_PORT must be a port number, not '$BUILDMASTER_PORT'" ;;
esac
case ${RUSTFARM_WORKER_MAXRETRIES:=5} in
    '' | *[!0-9]*) fail 2 "RUSTFARM_WORKER_MAXRETRIES must be a number, not '$RUSTFARM_WORKER_MAXRETRIES'" ;;
esac
export RUSTFARM_WORKER_MAXRETRIES

basedir=$HOME/worker
mkdir -p "$basedir/info"
cp /usr/local/share/rustfarm/buildbot.tac "$basedir/buildbot.tac"
echo "rustfarm build farm" >"$basedir/info/admin"
{
    echo "target: ${RUSTFARM_TARGET:-none}"
    if command -v rustc >/dev/null; then rustc --version; fi
} >"$basedir/info/host"
# Lines of the worker's info that a child image adds, such as a target image's
# rustfarm_tool: the digest and path of the worker tool it carries, which the
# master reads to run that copy in place of sending its own along.
if [ -d /usr/local/lib/rustfarm/worker-info ]; then
    cp /usr/local/lib/rustfarm/worker-info/* "$basedir/info/" 2>/dev/null || true
fi

# The password leaves the environment here, so neither twistd nor any build
# step inherits it; buildbot.tac reads the file and deletes it.
(umask 077 && printf '%s' "$WORKERPASS" >"$basedir/.workerpass")
unset WORKERPASS

echo "rustfarm-worker: $WORKERNAME connecting to ${RUSTFARM_MASTER_SOCKET:-$BUILDMASTER:$BUILDMASTER_PORT}"
cd "$basedir"
# tini reaps the orphans build steps leave behind. It is exec'd from here, not
# made the image's entrypoint, so process 1's environment (/proc/1/environ,
# readable by builds) is the one without the password.
exec /usr/bin/tini -s -- /opt/buildbot-worker/bin/twistd --nodaemon --pidfile= \
    --logfile=- --python=buildbot.tac

#!/bin/bash
# Starts a Buildbot worker in the foreground, logging to stdout, from the
# variables Buildbot's DockerLatentWorker passes: BUILDMASTER, BUILDMASTER_PORT,
# WORKERNAME, WORKERPASS (and BUILDMASTER_PROTOCOL).
# Optional: RUSTFARM_WORKER_MAXRETRIES (connection attempts before giving up,
# default 5; 0 retries for ever), WORKER_ENVIRONMENT_BLACKLIST (space-separated
# patterns of variables kept from build steps; WORKERPASS always is).
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

# The password leaves the environment here, so neither twistd nor any build
# step inherits it; buildbot.tac reads the file and deletes it.
(umask 077 && printf '%s' "$WORKERPASS" >"$basedir/.workerpass")
unset WORKERPASS

echo "rustfarm-worker: $WORKERNAME connecting to $BUILDMASTER:$BUILDMASTER_PORT"
cd "$basedir"
# tini reaps the orphans build steps leave behind. It is exec'd from here, not
# made the image's entrypoint, so process 1's environment (/proc/1/environ,
# readable by builds) is the one without the password.
exec /usr/bin/tini -s -- /opt/buildbot-worker/bin/twistd --nodaemon --pidfile= \
    --logfile=- --python=buildbot.tac

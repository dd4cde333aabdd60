#!/bin/bash
# Turn a fresh Debian or Ubuntu instance into a rustfarm worker base image.
# Run as root (packer does, through sudo); running it again changes nothing.
#
#   provision.sh [PATH-TO-rustfarm-boot [PATH-TO-userdata.py [PATH-TO-rustfarm-cache-relay]]]
#       defaults: /tmp/rustfarm-boot, /tmp/rustfarm-userdata.py and
#       /tmp/rustfarm-cache-relay
#
# Installs the Docker engine from the distribution, curl, cron, socat,
# python3 and python3-botocore; makes the user "rustbuild" (and the cloud
# image's login user, when there is one) able to run docker without sudo;
# installs rustfarm-boot, the user-data parser it shares with the master
# (rustfarm/userdata.py), the compile cache relay and the cron line that starts
# rustfarm-boot at every boot.

set -euo pipefail

BOOT_SCRIPT_SOURCE=${1:-/tmp/rustfarm-boot}
PARSER_SOURCE=${2:-/tmp/rustfarm-userdata.py}
RELAY_SOURCE=${3:-/tmp/rustfarm-cache-relay}
readonly PARSER=/usr/local/lib/rustfarm/userdata.py
readonly RELAY=/usr/local/sbin/rustfarm-cache-relay
readonly WORKER_USER=rustbuild
# Login users of Debian's and Ubuntu's cloud images, added to group docker
# when they exist so that an operator can look at the worker without sudo.
readonly LOGIN_USERS=(admin ubuntu)
readonly CRON_FILE=/etc/cron.d/rustfarm

say() {
    printf 'provision: %s\n' "$*"
}

if ((EUID != 0)); then
    say "must run as root" >&2
    exit 1
fi
if [[ ! -f $BOOT_SCRIPT_SOURCE ]]; then
    say "no rustfarm-boot at $BOOT_SCRIPT_SOURCE" >&2
    exit 1
fi
if [[ ! -f $PARSER_SOURCE ]]; then
    say "no user-data parser (rustfarm/userdata.py) at $PARSER_SOURCE" >&2
    exit 1
fi
if [[ ! -f $RELAY_SOURCE ]]; then
    say "no compile cache relay (ami/rustfarm-cache-relay) at $RELAY_SOURCE" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# On first boot cloud-init (and Ubuntu's unattended-upgrades) may hold apt's lock.
if command -v cloud-init >/dev/null 2>&1; then
    say "waiting for cloud-init to finish"
    cloud-init status --wait >/dev/null || true
fi
apt_get() {
    apt-get -q -o DPkg::Lock::Timeout=600 "$@"
}

say "installing docker.io, curl, cron, socat, python3 and python3-botocore"
apt_get update
apt_get install -y --no-install-recommends \
    ca-certificates coreutils cron curl docker.io python3 python3-botocore socat

say "making $WORKER_USER a docker user"
if ! id -u "$WORKER_USER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash --comment "rustfarm worker" "$WORKER_USER"
fi
usermod --append --groups docker "$WORKER_USER"
for login_user in "${LOGIN_USERS[@]}"; do
    if id -u "$login_user" >/dev/null 2>&1; then
        usermod --append --groups docker "$login_user"
    fi
done

say "installing rustfarm-boot, $PARSER, $RELAY and $CRON_FILE"
install -D -m 0755 -o root -g root "$BOOT_SCRIPT_SOURCE" /usr/local/sbin/rustfarm-boot
install -D -m 0644 -o root -g root "$PARSER_SOURCE" "$PARSER"
install -D -m 0755 -o root -g root "$RELAY_SOURCE" "$RELAY"
# Runs as root: it powers the instance off. Its own log lines go to syslog
# under the tag rustfarm-boot; everything it prints (the same lines and the
# worker's output) goes to syslog under rustfarm-worker.
cat >"$CRON_FILE.new" <<'EOF'
# Start the rustfarm worker named in EC2 user-data at every boot.
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
@reboot root /usr/local/sbin/rustfarm-boot 2>&1 | logger -t rustfarm-worker
EOF
chmod 0644 "$CRON_FILE.new"
mv "$CRON_FILE.new" "$CRON_FILE"

say "enabling docker and cron at boot"
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    systemctl enable docker.service containerd.service cron.service
elif command -v systemctl >/dev/null 2>&1; then
    # Not booted with systemd (a container or chroot): enable without starting.
    systemctl --no-reload enable docker.service containerd.service cron.service
else
    say "systemctl not found; relying on the packages' own start links"
fi

apt-get clean
rm -rf /var/lib/apt/lists/*
say "done"

"""ami/provision.sh on a fresh Debian 12 root file system, twice, in a container.

The container plays the packer build instance: Debian 12 minbase with systemd
(not running, as in a chroot) and the cloud image's ``admin`` user. The base
image is made with mmdebstrap from Debian's mirror and kept under a tag that
names its recipe, so later runs reuse it (``docker image rm`` it to rebuild).
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import subprocess

import pytest

from tests.support.docker_engine import unavailable

from . import harness

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BASE_PACKAGES = "systemd,passwd"
BASE_RECIPE = f"mmdebstrap --variant=minbase --include={BASE_PACKAGES} bookworm"
BASE_IMAGE = ("rustfarm-amitest/bookworm-provision-base:"
              + hashlib.sha256(BASE_RECIPE.encode()).hexdigest()[:12])

# Runs inside the container. Debian's images forbid starting services the same
# way (policy-rc.d); the real instance has systemd and starts them at boot.
PROVISION_TWICE = r"""
set -u
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
useradd --create-home admin
state() {
    sha256sum /usr/local/sbin/rustfarm-boot /usr/local/lib/rustfarm/userdata.py /etc/cron.d/rustfarm \
        /usr/local/sbin/rustfarm-cache-relay
    stat -c '%n %a %U:%G' /usr/local/sbin/rustfarm-boot /usr/local/lib/rustfarm/userdata.py \
        /etc/cron.d/rustfarm /usr/local/sbin/rustfarm-cache-relay
    id rustbuild; id admin
    ls /etc/systemd/system/multi-user.target.wants/
    dpkg-query -W -f '${Package} ${Status}\n' docker.io curl cron socat python3 python3-botocore
}
/ami/provision.sh /ami/rustfarm-boot /parser/userdata.py /ami/rustfarm-cache-relay > /tmp/first.log 2>&1
echo "first run: $?"
state > /tmp/first.state
/ami/provision.sh /ami/rustfarm-boot /parser/userdata.py /ami/rustfarm-cache-relay \
    > /tmp/second.log 2>&1
echo "second run: $?"
state > /tmp/second.state
if cmp -s /tmp/first.state /tmp/second.state; then echo "same state"; fi
echo "--- state"; cat /tmp/second.state
echo "--- cron"; cat /etc/cron.d/rustfarm
printf '#rustfarm-worker v1\nimage=r.example.com/w:1\nmaster=m\nport=1\nname=n\npassword=p\n' \
    | RUSTFARM_POWEROFF=true /usr/local/sbin/rustfarm-boot --check-user-data - >/dev/null
echo "installed script parses user-data: $?"
/usr/local/sbin/rustfarm-cache-relay --help >/dev/null; echo "installed relay starts: $?"
echo "--- logs"; tail -n 20 /tmp/first.log /tmp/second.log
"""


def ensure_base_image() -> None:
    docker = harness.docker_cli()
    if subprocess.run([docker, "image", "inspect", BASE_IMAGE], capture_output=True).returncode == 0:
        return
    if not shutil.which("mmdebstrap"):
        unavailable("mmdebstrap is not installed to make a Debian 12 root file system")
    rootfs = subprocess.Popen(
        ["mmdebstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "--quiet",
         "bookworm", "-", "http://deb.debian.org/debian"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    imported = subprocess.run([docker, "import", "-", BASE_IMAGE], stdin=rootfs.stdout,
                              capture_output=True, text=True)
    rootfs.stdout.close()
    errors = rootfs.stderr.read().decode(errors="replace")
    if rootfs.wait() != 0 or imported.returncode != 0:
        subprocess.run([docker, "image", "rm", "--force", BASE_IMAGE], capture_output=True)
        unavailable(f"cannot make a Debian 12 base image: {errors[-500:]}{imported.stderr}")


def test_provision_is_complete_and_idempotent(docker_engine):
    ensure_base_image()
    docker = harness.docker_cli()
    name = f"{harness.CONTAINER_PREFIX}provision-{secrets.token_hex(4)}"
    try:
        ran = subprocess.run(
            [docker, "run", "--rm", "--name", name,
             "-v", f"{harness.REPO_ROOT / 'ami'}:/ami:ro",
             "-v", f"{harness.REPO_ROOT / 'rustfarm' / 'userdata.py'}:/parser/userdata.py:ro",
             BASE_IMAGE,
             "bash", "-c", PROVISION_TWICE],
            capture_output=True, text=True, timeout=600)
    finally:
        subprocess.run([docker, "rm", "--force", name], capture_output=True)
    report = ran.stdout + ran.stderr
    assert ran.returncode == 0, report
    assert "first run: 0" in report and "second run: 0" in report, report
    assert "same state" in report, report

    boot_script_sha = hashlib.sha256(harness.BOOT_SCRIPT.read_bytes()).hexdigest()
    assert f"{boot_script_sha}  /usr/local/sbin/rustfarm-boot" in report
    assert "/usr/local/sbin/rustfarm-boot 755 root:root" in report
    parser_sha = hashlib.sha256((harness.REPO_ROOT / "rustfarm" / "userdata.py").read_bytes())
    assert f"{parser_sha.hexdigest()}  /usr/local/lib/rustfarm/userdata.py" in report
    assert "/usr/local/lib/rustfarm/userdata.py 644 root:root" in report
    assert "/etc/cron.d/rustfarm 644 root:root" in report
    assert "@reboot root /usr/local/sbin/rustfarm-boot 2>&1 | logger -t rustfarm-worker" in report
    id_lines = [line for line in report.splitlines() if line.startswith("uid=")]
    assert len(id_lines) == 2 and all("(docker)" in line for line in id_lines), id_lines
    for unit in ("docker.service", "containerd.service", "cron.service"):
        assert f"\n{unit}\n" in report, unit
    for package in ("docker.io", "curl", "cron", "socat", "python3", "python3-botocore"):
        assert f"{package} install ok installed" in report
    assert "installed script parses user-data: 0" in report
    relay_sha = hashlib.sha256((harness.REPO_ROOT / "ami" / "rustfarm-cache-relay").read_bytes())
    assert f"{relay_sha.hexdigest()}  /usr/local/sbin/rustfarm-cache-relay" in report
    assert "/usr/local/sbin/rustfarm-cache-relay 755 root:root" in report
    # Its imports (botocore, urllib3) are the distribution's.
    assert "installed relay starts: 0" in report

"""A real local container registry (Debian's docker-registry) on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from .docker_engine import unavailable

REGISTRY_BIN = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalRegistry:
    """docker-registry serving ``127.0.0.1:PORT`` from a directory of its own."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "LocalRegistry":
        storage = self.workdir / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.address}\n")
        log = (self.workdir / "registry.log").open("ab")
        self.process = subprocess.Popen([REGISTRY_BIN, "serve", str(config)],
                                        stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1).read()
                return self
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"docker-registry did not start; see {self.workdir / 'registry.log'}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.untag()

    def untag(self) -> None:
        """Remove the tags that pushes to this registry left on the system engine's
        images (the images stay, under their other names)."""
        docker = shutil.which("docker")
        if not docker:
            return
        listed = subprocess.run([docker, "images", "--format", "{{.Repository}}:{{.Tag}}"],
                                capture_output=True, text=True)
        tags = [t for t in listed.stdout.split() if t.startswith(f"{self.address}/")]
        if tags:
            subprocess.run([docker, "rmi", *tags], capture_output=True)


def ensure_registry_binary() -> None:
    if Path(REGISTRY_BIN).exists():
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "docker-registry"],
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                       capture_output=True)
    if not Path(REGISTRY_BIN).exists():
        unavailable("Debian's docker-registry is not installed and cannot be installed here")

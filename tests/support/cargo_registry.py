"""A real private cargo registry on loopback: a sparse index and its .crate files,
served by nginx (Debian's nginx-light), which answers only requests with the
registry's token, as an authenticated registry does (``auth-required``).

Crates are published the way a registry stores them: ``cargo package`` makes the
.crate, and its index line names its checksum.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from .docker_engine import unavailable
from .registry import free_port

NGINX = "/usr/sbin/nginx"

CONFIG = """\
daemon off;
worker_processes 1;
user {user};
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root}/www;
        location / {{
            if ($http_authorization != "{token}") {{
                add_header WWW-Authenticate 'Cargo login_url="http://127.0.0.1:{port}/me"' always;
                return 401;
            }}
            try_files $uri =404;
        }}
    }}
}}
"""


def index_path(name: str) -> str:
    """Where a crate's entry lies in a registry index."""
    if len(name) <= 2:
        return f"{len(name)}/{name}"
    if len(name) == 3:
        return f"3/{name[0]}/{name}"
    return f"{name[:2]}/{name[2:4]}/{name}"


class PrivateRegistry:
    def __init__(self, root: Path, token: str):
        self.root = root
        self.token = token
        self.port = free_port()
        self.index = f"sparse+http://127.0.0.1:{self.port}/index/"
        self.process: subprocess.Popen | None = None

    def start(self) -> "PrivateRegistry":
        if not Path(NGINX).exists():
            unavailable("nginx is not installed (tests/run installs Debian's nginx-light when "
                        "root)")
        (self.root / "www" / "index").mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").mkdir(exist_ok=True)
        (self.root / "www" / "index" / "config.json").write_text(json.dumps({
            "dl": f"http://127.0.0.1:{self.port}/crates/{{crate}}/{{version}}/download",
            "api": None, "auth-required": True}))
        config = self.root / "nginx.conf"
        config.write_text(CONFIG.format(root=self.root, port=self.port, token=self.token,
                                        user="root" if _is_root() else "nobody"))
        self.process = subprocess.Popen([NGINX, "-c", str(config), "-e",
                                         str(self.root / "error.log")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/index/config.json",
                                       timeout=1)
            except urllib.error.HTTPError as err:
                if err.code == 401:
                    return self
            except OSError:
                if self.process.poll() is not None:
                    break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"nginx did not serve the registry: {self.root / 'error.log'}")

    def publish(self, crate: Path) -> None:
        """``cargo package`` the crate in ``crate`` and put it in the index."""
        manifest = (crate / "Cargo.toml").read_text()
        name = manifest.split('name = "', 1)[1].split('"', 1)[0]
        version = manifest.split('version = "', 1)[1].split('"', 1)[0]
        packed = subprocess.run(["cargo", "package", "--offline", "--allow-dirty",
                                 "--no-verify", "--quiet"], cwd=crate, capture_output=True,
                                text=True)
        assert packed.returncode == 0, packed.stderr
        data = (crate / "target" / "package" / f"{name}-{version}.crate").read_bytes()
        download = self.root / "www" / "crates" / name / version / "download"
        download.parent.mkdir(parents=True, exist_ok=True)
        download.write_bytes(data)
        entry = self.root / "www" / "index" / index_path(name)
        entry.parent.mkdir(parents=True, exist_ok=True)
        with entry.open("a") as index:
            index.write(json.dumps({"name": name, "vers": version, "deps": [],
                                    "cksum": hashlib.sha256(data).hexdigest(),
                                    "features": {}, "yanked": False, "v": 2}) + "\n")
        shutil.rmtree(crate / "target", ignore_errors=True)

    def requests_with_token(self) -> int:
        """How many requests the registry answered with its content (not 401)."""
        log = (self.root / "access.log").read_text() if (self.root / "access.log").exists() \
            else ""
        return sum(1 for line in log.splitlines() if '" 200 ' in line)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _is_root() -> bool:
    import os
    return os.geteuid() == 0

"""Play an EC2 instance booting the rustfarm AMI, on this machine, for tests.

The pieces, usable on their own or through :func:`boot_instance`:

- :class:`FakeImds`: an IMDSv2-style metadata server on loopback (a token from
  ``PUT /latest/api/token`` is required, 401 without it) serving user-data.
- :class:`CommandRecorder`: a stand-in command that records each call; it
  replaces ``poweroff`` (``RUSTFARM_POWEROFF``) and ``logger``
  (``RUSTFARM_LOGGER``), so a test sees the power-off and the syslog lines.
  The serial console (``RUSTFARM_CONSOLE``) becomes a file in the workdir.
- :func:`build_tiny_worker_image`: a busybox-only worker image, pushed to a
  registry and removed locally, so that booting really pulls it.
- :func:`boot_instance`: runs ``ami/rustfarm-boot`` against all of the above
  and returns a :class:`FakeInstance` (process handle, log, recorders).

A later end-to-end test (real master, moto) boots an instance with the
user-data moto recorded::

    instance = boot_instance(user_data, {"RUSTFARM_DOCKER_WAIT": "30"}, workdir=tmp)
    instance.wait(120)
    assert instance.powered_off

Nothing here ever runs the real ``poweroff``: every boot gets a recorder.
"""

from __future__ import annotations

import http.server
import io
import os
import secrets
import shutil
import tempfile
import subprocess
import tarfile
import threading
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BOOT_SCRIPT = REPO_ROOT / "ami" / "rustfarm-boot"
TINY_WORKER_SCRIPT = Path(__file__).resolve().parent / "tiny-worker.sh"
CONTAINER_PREFIX = "rustfarm-amitest-"
TINY_WORKER_REPOSITORY = "rustfarm-amitest/tiny-worker"

# Small limits so that every failure case ends within seconds.
FAST_BOOT_ENV = {
    "RUSTFARM_DOCKER_WAIT": "30",
    "RUSTFARM_IMDS_ATTEMPTS": "3",
    "RUSTFARM_IMDS_TIMEOUT": "2",
    "RUSTFARM_PULL_ATTEMPTS": "2",
    "RUSTFARM_PULL_TIMEOUT": "60",
    "RUSTFARM_BACKOFF_START": "0",
    "RUSTFARM_BACKOFF_MAX": "0",
}


def user_data_text(image: str, master: str, port: int, name: str, password: str,
                   **optional: str) -> str:
    """User-data in the format of ami/README.md (tests only; workers/ renders the real one)."""
    lines = ["#rustfarm-worker v1", f"image={image}", f"master={master}",
             f"port={port}", f"name={name}", f"password={password}"]
    lines += [f"{key}={value}" for key, value in optional.items()]
    return "\n".join(lines) + "\n"


class FakeImds:
    """IMDSv2 on 127.0.0.1: PUT a token first, then GET with it.

    ``user_data=None`` answers 404 like an instance launched without user-data.
    ``unready_requests`` answers 503 to that many first token requests, like a
    metadata service that is not up yet.
    """

    def __init__(self, user_data: str | bytes | None, *, unready_requests: int = 0,
                 instance_id: str = "i-0123456789abcdef0"):
        self.user_data = user_data.encode() if isinstance(user_data, str) else user_data
        self.instance_id = instance_id
        self.unready_requests = unready_requests
        self.tokens: set[str] = set()
        self.requests: list[tuple[str, str, int]] = []   # (method, path, status)
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server, "FakeImds is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeImds":
        imds = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status: int, body: bytes = b"") -> None:
                with imds._lock:
                    imds.requests.append((self.command, self.path, status))
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self):
                if self.path != "/latest/api/token":
                    return self.reply(404)
                with imds._lock:
                    if imds.unready_requests > 0:
                        imds.unready_requests -= 1
                        unready = True
                    else:
                        unready = False
                if unready:
                    return self.reply(503)
                ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
                if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                    return self.reply(400)
                token = secrets.token_urlsafe(32)
                with imds._lock:
                    imds.tokens.add(token)
                self.reply(200, token.encode())

            def do_GET(self):
                token = self.headers.get("X-aws-ec2-metadata-token")
                with imds._lock:
                    valid = token in imds.tokens
                if not valid:
                    return self.reply(401)
                if self.path == "/latest/user-data":
                    if imds.user_data is None:
                        return self.reply(404)
                    return self.reply(200, imds.user_data)
                if self.path == "/latest/meta-data/instance-id":
                    return self.reply(200, imds.instance_id.encode())
                self.reply(404)

            def do_POST(self):
                self.reply(405)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeImds":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class CommandRecorder:
    """An executable that appends one line per call: ``<unix time> <args>``."""

    def __init__(self, directory: Path, name: str):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / name
        self.record = directory / f"{name}.calls"
        self.record.touch()
        self.path.write_text(
            "#!/bin/sh\n"
            f"printf '%s %s\\n' \"$(date +%s.%N)\" \"$*\" >> '{self.record}'\n")
        self.path.chmod(0o755)

    def calls(self) -> list[str]:
        """The arguments of each call, oldest first."""
        return [line.split(" ", 1)[1] if " " in line else ""
                for line in self.record.read_text().splitlines()]

    def call_times(self) -> list[float]:
        return [float(line.split(" ", 1)[0]) for line in self.record.read_text().splitlines()]


def syslog_messages(logger: CommandRecorder, tag: str = "rustfarm-boot") -> list[str]:
    """Messages sent as ``logger -t TAG -- MESSAGE``."""
    prefix = f"-t {tag} -- "
    return [call[len(prefix):] for call in logger.calls() if call.startswith(prefix)]


def docker_cli() -> str:
    docker = shutil.which("docker")
    if not docker:
        raise RuntimeError("no docker command on PATH")
    return docker


def fetch_busybox(cache_dir: Path) -> Path:
    """Debian's static busybox, unpacked from its package (nothing is installed)."""
    binary = cache_dir / "root" / "bin" / "busybox"
    if binary.exists():
        return binary
    cache_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", "-q", "busybox-static"], cwd=cache_dir,
                   check=True, capture_output=True)
    package = next(cache_dir.glob("busybox-static_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(package), str(cache_dir / "root")],
                   check=True, capture_output=True)
    return binary


def _tiny_rootfs_tar(busybox: Path) -> bytes:
    applets = ["sh", "env", "cut", "sort", "sha256sum", "hostname", "sleep", "cat", "ls"]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("bin", "etc", "tmp", "proc", "sys", "dev"):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        for path, source in (("bin/busybox", busybox), ("tiny-worker", TINY_WORKER_SCRIPT)):
            data = source.read_bytes()
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        for applet in applets:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    return buffer.getvalue()


def build_tiny_worker_image(registry_address: str, cache_dir: Path, *, tag: str | None = None,
                            hold_seconds: int = 0, exit_status: int = 0) -> str:
    """Build the tiny worker image, push it to the registry, drop the local copy.

    Its entrypoint (tests/ami/tiny-worker.sh) prints its environment's variable
    names (never values), the non-secret worker settings, a SHA-256 of
    WORKERPASS and its hostname, waits ``hold_seconds`` and exits with
    ``exit_status``. Returns the full reference ``REGISTRY/REPOSITORY:TAG``.
    """
    tag = tag or f"t{secrets.token_hex(4)}"
    reference = f"{registry_address}/{TINY_WORKER_REPOSITORY}:{tag}"
    docker = docker_cli()
    subprocess.run(
        [docker, "import",
         "--change", 'ENTRYPOINT ["/tiny-worker"]',
         # The worker images' rustbuild user, which the password file is for.
         "--change", "USER 1000:1000",
         "--change", f"ENV TINY_WORKER_HOLD={hold_seconds} TINY_WORKER_EXIT={exit_status}",
         "-", reference],
        input=_tiny_rootfs_tar(fetch_busybox(cache_dir)), check=True, capture_output=True)
    subprocess.run([docker, "push", "--quiet", reference], check=True, capture_output=True)
    remove_local_image(reference)
    return reference


def remove_local_image(reference: str) -> None:
    subprocess.run([docker_cli(), "image", "rm", "--force", reference], capture_output=True)


def container_exists(name: str) -> bool:
    listed = subprocess.run(
        [docker_cli(), "ps", "--all", "--quiet", "--filter", f"name=^/{name}$"],
        capture_output=True, text=True, check=True)
    return bool(listed.stdout.strip())


class FakeInstance:
    """One run of rustfarm-boot playing an instance's boot."""

    def __init__(self, process: subprocess.Popen, log_path: Path, imds: FakeImds | None,
                 poweroff: CommandRecorder, logger: CommandRecorder, container_name: str):
        self.process = process
        self.log_path = log_path
        self.imds = imds
        self.poweroff = poweroff
        self.logger = logger
        self.container_name = container_name

    def wait(self, timeout: float) -> int:
        """The exit status of rustfarm-boot; kills it and raises after ``timeout``."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(
                f"rustfarm-boot still running after {timeout}s; output:\n{self.output}")

    @property
    def output(self) -> str:
        """Everything rustfarm-boot wrote to stdout and stderr (what cron would log)."""
        return self.log_path.read_text(errors="replace")

    @property
    def syslog(self) -> list[str]:
        return syslog_messages(self.logger)

    @property
    def console(self) -> str:
        """What reached the instance's serial console (``get-console-output``)."""
        path = self.log_path.parent / "console"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def powered_off(self) -> bool:
        return bool(self.poweroff.calls())

    def stop(self) -> None:
        """Stop the boot script, its container and the fake IMDS; safe to call twice."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        subprocess.run([docker_cli(), "rm", "--force", self.container_name], capture_output=True)
        if self.imds:
            self.imds.stop()
        if getattr(self, "run_dir", None):
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> "FakeInstance":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def boot_script_env(workdir: Path, extra_env: dict[str, str] | None = None) -> tuple[
        dict[str, str], CommandRecorder, CommandRecorder]:
    """Environment for rustfarm-boot with poweroff and logger replaced by recorders."""
    poweroff = CommandRecorder(workdir, "poweroff")
    logger = CommandRecorder(workdir, "logger")
    (workdir / "console").touch()
    env = {**os.environ, **FAST_BOOT_ENV,
           "RUSTFARM_POWEROFF": str(poweroff.path),
           "RUSTFARM_LOGGER": str(logger.path),
           "RUSTFARM_CONSOLE": str(workdir / "console"),
           **(extra_env or {})}
    if not env["RUSTFARM_POWEROFF"].strip():
        raise ValueError("RUSTFARM_POWEROFF must name a stand-in, never be empty")
    return env, poweroff, logger


def boot_instance(user_data: str | bytes | None, extra_env: dict[str, str] | None = None, *,
                  workdir: Path, imds: FakeImds | None = None) -> FakeInstance:
    """Start ``ami/rustfarm-boot`` as an instance's boot would, without waiting.

    A :class:`FakeImds` serving ``user_data`` is started unless ``imds`` is
    given or ``extra_env`` sets ``RUSTFARM_IMDS_URL``. ``extra_env`` overrides
    everything else, including ``RUSTFARM_POWEROFF`` (for instance with a
    command that stops the instance in moto) and ``RUSTFARM_CONTAINER_NAME``
    (by default ``rustfarm-amitest-worker-<random>``).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    extra_env = dict(extra_env or {})
    if imds is None and "RUSTFARM_IMDS_URL" not in extra_env:
        imds = FakeImds(user_data).start()
    container_name = extra_env.setdefault(
        "RUSTFARM_CONTAINER_NAME", f"{CONTAINER_PREFIX}worker-{secrets.token_hex(4)}")
    if imds is not None:
        extra_env.setdefault("RUSTFARM_IMDS_URL", imds.url)
    # Each booted instance forwards the master's port through a socket of its
    # own, at a short path (a Unix socket's is limited to 108 bytes).
    run_dir = Path(tempfile.mkdtemp(prefix="rustfarm-boot-"))
    extra_env.setdefault("RUSTFARM_RUN_DIR", str(run_dir))
    env, poweroff, logger = boot_script_env(workdir, extra_env)
    log_path = workdir / "rustfarm-boot.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([str(BOOT_SCRIPT)], stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, env=env)
    instance = FakeInstance(process, log_path, imds, poweroff, logger, container_name)
    instance.run_dir = run_dir
    return instance


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    """Whether ``predicate()`` came true within ``timeout`` seconds (the farm's wait)."""
    from rustfarm.plumbing import DeadlinePassed, wait_until
    try:
        return bool(wait_until(predicate, timeout, "the condition", interval))
    except DeadlinePassed:
        return False

"""The farm's processes by their pid files: alive or not, stopped, ports taken; and what
a local worker inherits from `farm up`'s caller."""

from __future__ import annotations

import errno
import math
import os
import signal
import socket
import sys
from pathlib import Path

from rustfarm.plumbing import DeadlinePassed, wait_until
from rustfarm.progress import say
from rustfarm.state import StateDir


def console_script(name: str) -> str:
    """A console script of this Python environment (buildbot, buildbot-worker)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def read_pid(pidfile: Path) -> int | None:
    """The pid in ``pidfile`` if that process runs."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if process_alive(pid) else None


def wait_for_exit(pid: int, timeout: float | None) -> bool:
    """Wait until ``pid`` is gone; False when ``timeout`` (None: for ever) passes first."""
    try:
        wait_until(lambda: not process_alive(pid), math.inf if timeout is None else timeout,
                   f"process {pid} did not exit", interval=0.2)
    except DeadlinePassed:
        return False
    return True


def stop_pid(pidfile: Path, what: str, timeout: float = 20) -> bool:
    """SIGTERM the process named in ``pidfile`` and wait for it; SIGKILL after ``timeout``."""
    pid = read_pid(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    try:
        wait_until(lambda: not process_alive(pid), timeout, f"{what} did not stop",
                   interval=0.1)
    except DeadlinePassed:
        say(f"{what} (pid {pid}) did not stop within {timeout:.0f} s; killing it")
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    pidfile.unlink(missing_ok=True)
    return True


def stop_processes(state: StateDir, timeout: float | None = None) -> bool:
    """Stop the master (running builds end RETRY: their requests stay queued), then
    every local worker `farm up` started; True when anything was running."""
    stopped = False
    if stop_pid(state.master_pidfile, "master", timeout=timeout or 60):
        say("stopped the master (running builds are queued again for the next start)")
        stopped = True
    # Every worker `farm up` started has its directory (and pid file) here.
    started = sorted(p.name for p in state.workers.iterdir()) if state.workers.is_dir() else []
    for name in started:
        if stop_pid(state.worker(name) / "twistd.pid", f"worker {name}"):
            say(f"stopped local worker {name}")
            stopped = True
    return stopped


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            return err.errno == errno.EADDRINUSE
    return False


# What a local worker (and so every build on it) inherits from `farm up`'s caller:
# enough to find cargo, never credentials such as AWS keys.
_PASSED_TO_WORKERS = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "CARGO_HOME",
                      "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "http_proxy", "https_proxy", "no_proxy")


def build_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _PASSED_TO_WORKERS or k.startswith("LC_")}
    # The worker's python must be this environment's, whatever PATH says.
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    return env

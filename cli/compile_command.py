"""`farm compile`: build the project on this disk, no commit and no farm.yaml entry.

Packs the directory (what git would commit: the files it tracks and those it
does not ignore; without git, everything but ``target/`` and ``.git/``),
uploads it to the farm's compile endpoint, follows each target's build and
writes each target's archive to the output directory as
``<crate>-<label>-<target>.tar.gz`` (the label is the upload's content hash)
with a SHA256SUMS. The farm builds it as it builds anything: in containers
without network.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import requests

from rustfarm.errors import FarmError
from rustfarm.farmfile import Farm
from rustfarm.plumbing import DeadlinePassed, wait_until
from rustfarm.progress import say
from rustfarm.state import SecretStore, StateDir, token_secret_name
from rustfarm.worker_tool.archives import member_of, tar_gz_bytes

POLL = 1.0


def project_files(directory: Path) -> list[str]:
    """The files of the project in ``directory``, relative to it, sorted."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                             "-z"], cwd=directory, capture_output=True)
    if listed.returncode == 0:
        names = [n for n in listed.stdout.decode(errors="surrogateescape").split("\0") if n]
        return sorted(n for n in names if (directory / n).is_file())
    found = []
    for root, dirs, files in os.walk(directory):
        relative = Path(root).relative_to(directory)
        dirs[:] = [d for d in dirs if d != ".git" and not (relative == Path(".") and
                                                          d == "target")]
        found += [(relative / f).as_posix() for f in files if (Path(root) / f).is_file()]
    return sorted(found)


def pack(directory: Path) -> bytes:
    if not (directory / "Cargo.toml").is_file():
        raise FarmError(f"{directory} has no Cargo.toml: give the directory of a Cargo project")
    return tar_gz_bytes(member_of(str(directory), name) for name in project_files(directory))


def token_for(farm: Farm, user: str | None) -> str:
    """RUSTFARM_TOKEN, or the token `farm token` stored for the user (default: the first
    of www.users) in this farm's state directory."""
    if os.environ.get("RUSTFARM_TOKEN"):
        return os.environ["RUSTFARM_TOKEN"]
    user = user or (farm.www.users[0] if farm.www.users else None)
    if user is None:
        raise FarmError("the compile endpoint needs a token: list a user under www.users and "
                        "run `farm token USER`")
    token = SecretStore(StateDir.of(farm).secrets).read(token_secret_name(user))
    if not token:
        raise FarmError(f"no token for '{user}' here; make one with `farm token {user}` (or "
                        "set RUSTFARM_TOKEN)")
    return token


class CompileClient:
    """The compile endpoint of each of the farm's masters: a job taken by one is answered
    by any, so a poll goes on through another master while one restarts."""

    def __init__(self, bases: list[str], token: str):
        self.bases = [base.rstrip("/") + "/plugins/compile/" for base in bases]
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.silent: set[str] = set()      # masters that did not answer the last poll

    @property
    def base(self) -> str:
        return self.bases[0]

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            reply = self.session.request(method, self.base + path, timeout=120, **kwargs)
        except requests.RequestException as err:
            raise FarmError(f"the farm at {self.base} does not answer: {err}") from None
        return self.checked(reply, method, path)

    @staticmethod
    def checked(reply: requests.Response, method: str, path: str) -> requests.Response:
        if reply.status_code in (400, 401, 403, 404, 413, 429, 503):
            wait = reply.headers.get("Retry-After")
            raise FarmError(f"the farm refused: {reply.text.strip()}"
                            + (f" (retry after {wait} s)" if wait else ""))
        if reply.status_code >= 300:
            raise FarmError(f"{method} {path}: HTTP {reply.status_code}: {reply.text[:300]}")
        return reply

    def poll(self, path: str) -> requests.Response | None:
        """GET ``path`` from the first master that answers (it becomes the first);
        None while none does, as while a farm's only master restarts."""
        for base in list(self.bases):
            try:
                reply = self.session.get(base + path, timeout=30)
            except requests.RequestException:
                if base not in self.silent:
                    say(f"  the master at {base} does not answer; asking again")
                self.silent.add(base)
                continue
            self.silent.discard(base)
            self.bases.remove(base)
            self.bases.insert(0, base)
            return self.checked(reply, "GET", path)
        return None


def master_urls(farm: Farm) -> list[str]:
    """Each master's web address, the first master's first."""
    if not farm.multi_master:
        return [farm.farm.url]
    return list(dict.fromkeys(farm.as_master(m.name).farm.url for m in farm.masters))


def compile_project(farm: Farm, directory: Path, targets: list[str], out: Path,
                    user: str | None, timeout: float) -> bool:
    client = CompileClient(master_urls(farm), token_for(farm, user))
    data = pack(directory)
    label = hashlib.sha256(data).hexdigest()[:12]
    say(f"uploading {directory} ({len(data) / 1024:.0f} KB packed, label {label})")
    params = [("target", t) for t in targets] + [("wait", "0")]
    job = client.request("POST", "jobs", params=params, data=data,
                         headers={"Content-Type": "application/gzip"}).json()
    say(f"compile job {job['job']}: {job['crate']} for {', '.join(job['targets'])}")
    seen: dict[str, str] = {}

    def ended() -> dict | None:
        nonlocal job
        for target, state in job["targets"].items():
            if seen.get(target) != state["result"]:
                seen[target] = state["result"]
                link = f" ({state['build_url']})" if state["build_url"] else ""
                say(f"  {target}: {state['result']}{link}")
        if job["state"] != "running":
            return job
        reply = client.poll(f"jobs/{job['job']}")
        if reply is not None:
            job = reply.json()
        return None

    try:
        job = wait_until(ended, timeout, "the builds", interval=POLL)
    except DeadlinePassed:
        raise FarmError(f"the builds did not end within {timeout:.0f} s") from None
    if job["state"] != "succeeded":
        for target, state in job["targets"].items():
            if state["result"] in ("success", "warnings"):
                continue
            say(f"{target}: {state['result']}"
                + (f" at {state['failed_step']}" if state["failed_step"] else ""))
            for line in state["errors"]:
                say(f"    {line}")
            if state["build_url"]:
                say(f"  log: {state['build_url']}")
        return False
    result = client.request("GET", f"jobs/{job['job']}/result",
                            headers={"Accept": "application/gzip"})
    written = write_archives(result.content, job["crate"], label, list(job["targets"]), out)
    for path in written:
        say(f"  wrote {path}")
    say(f"  wrote {out / 'SHA256SUMS'}")
    return True


def write_archives(data: bytes, crate: str, label: str, targets: list[str],
                   out: Path) -> list[Path]:
    """The result (one target's archive, or the archive of every target's) as
    ``<crate>-<label>-<target>.tar.gz`` files in ``out`` with their SHA256SUMS."""
    out.mkdir(parents=True, exist_ok=True)
    archives: dict[str, bytes] = {}
    if len(targets) == 1:
        archives[targets[0]] = data
    else:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar:
                target = member.name.split("/", 1)[0]
                if member.isfile() and target in targets:
                    archives[target] = tar.extractfile(member).read()
    written, sums = [], []
    for target in targets:
        name = f"{crate}-{label}-{target}.tar.gz"
        (out / name).write_bytes(archives[target])
        sums.append(f"{hashlib.sha256(archives[target]).hexdigest()}  {name}\n")
        written.append(out / name)
    (out / "SHA256SUMS").write_text("".join(sums))
    return written

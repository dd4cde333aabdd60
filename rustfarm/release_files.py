"""A target's release files, signed and checked: ``SHA256SUMS`` lists the archive
first, then the Cargo.lock the build used, the SBOM and the provenance;
``SHA256SUMS.minisig`` signs it, its trusted comment naming the project, revision
and target. ``farm verify`` checks the same files, from a directory or a URL.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .artifact_store import write_text
from .attestations import LOCK_FILE, PROVENANCE_FILE, SBOM_FILE, ReleaseFacts, Shipped, \
    crate_license, linked_packages, provenance, provenance_subjects, provenance_worker, sbom
from .cargo_lock import LockError, LockedPackage, read_lock
from .crate_store import CrateStore
from .device_packages import PackageInfo, debian_package, openwrt_package
from .errors import FarmError
from .plumbing import file_sha256
from .minisign import PublicKey, SignatureError, verify
from .release_keys import ReleaseKeys

SUMS_FILE = "SHA256SUMS"
SIGNATURE_FILE = "SHA256SUMS.minisig"


class ReleaseCheckFailed(FarmError):
    """A release that does not verify, saying which file and why."""


@dataclass(frozen=True)
class Signed:
    files: list[tuple[str, str]]          # (name, sha256) as SHA256SUMS lists them
    key_id: str
    crates: int


def trusted_comment(project: str, revision: str, target: str) -> str:
    return f"rustfarm release project:{project} revision:{revision} target:{target}"


@dataclass(frozen=True)
class Packaging:
    """The packages to make of a target's binaries: (kind, architecture) pairs."""
    info: PackageInfo
    kinds: tuple[tuple[str, str], ...]


MAKERS = {"deb": debian_package, "ipk": openwrt_package}


def binaries_of(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {member.name: tar.extractfile(member).read() for member in tar.getmembers()
                if member.isfile()}


def make_packages(directory: Path, archive: str, packaging: Packaging) -> list[Path]:
    if not packaging.kinds:
        return []
    binaries = binaries_of(directory / archive)
    return [MAKERS[kind](packaging.info, architecture, binaries, directory)
            for kind, architecture in packaging.kinds]


def attest_target(directory: Path, facts: ReleaseFacts, keys: ReleaseKeys,
                  store: CrateStore | None, linked: list[str],
                  packaging: Packaging | None = None) -> Signed:
    """Write the packages, the SBOM, the provenance, SHA256SUMS and its signature beside
    the archive."""
    lock_path = directory / LOCK_FILE
    lock: list[LockedPackage] = []
    if lock_path.exists():
        try:
            lock = read_lock(lock_path.read_text(), LOCK_FILE)
        except LockError:
            lock = []
        facts = dataclasses.replace(facts, lock_sha256=file_sha256(lock_path))
    made = make_packages(directory, facts.archive.name, packaging) if packaging else []
    facts = dataclasses.replace(facts, packages=tuple(Shipped(p.name, file_sha256(p))
                                                      for p in made))
    packages = linked_packages(linked, lock)
    licenses = {}
    if store is not None:
        for package in packages:
            if package.kind != "path":
                found = crate_license(store.entry(package))
                if found:
                    licenses[(package.name, package.version)] = found
    write_text(directory / SBOM_FILE, sbom(facts, packages, licenses))
    write_text(directory / PROVENANCE_FILE, provenance(facts))
    names = [facts.archive.name] + [n for n in (LOCK_FILE, *(p.name for p in made), SBOM_FILE,
                                                PROVENANCE_FILE) if (directory / n).exists()]
    files = [(name, file_sha256(directory / name)) for name in names]
    if files[0][1] != facts.archive.sha256:
        raise ReleaseCheckFailed(f"{facts.archive.name} changed after it was packaged")
    sums = "".join(f"{digest}  {name}\n" for name, digest in files)
    key = keys.signing_key()
    signature = key.sign(sums.encode(), trusted_comment(facts.project, facts.revision,
                                                        facts.target))
    # The signature first: a reader that finds the new SHA256SUMS finds its signature.
    write_text(directory / SIGNATURE_FILE, signature)
    write_text(directory / SUMS_FILE, sums)
    return Signed(files, key.public.id_text, sum(1 for p in packages if p.kind != "path"))


REPRODUCED_FILE = "reproduced.json"


def release_worker(target_dir: Path) -> str | None:
    """The worker that built a target's release, as its provenance says; None without
    one, or when it names none (signed before releases recorded their worker)."""
    try:
        return provenance_worker((target_dir / PROVENANCE_FILE).read_text())
    except (OSError, ValueError, AttributeError):
        return None


def rebuilt_where(rebuilt_on: str | None, built_on: str | None) -> str:
    """Where a reproduction ran, against where its release was built, in words."""
    if not rebuilt_on:
        return ""
    if not built_on:
        return f"rebuilt on {rebuilt_on} (the release's worker is not recorded)"
    if rebuilt_on == built_on:
        return (f"rebuilt on the same worker as the release, {rebuilt_on} (no other worker "
                "could take it)")
    return f"rebuilt on {rebuilt_on}, the release on {built_on}"


def compare_reproduction(target_dir: Path, reproduction: Path, archive: str) -> list[str]:
    """The binaries of the reproduction's archive that differ from the release's (by
    name; one only in either counts); [] when it reproduced. ReleaseCheckFailed when
    the release has no such archive."""
    released = target_dir / archive
    if not released.is_file():
        raise ReleaseCheckFailed(f"the release has no {archive} to compare with (build the "
                                 "revision first)")
    theirs, ours = binaries_of(released), binaries_of(reproduction / archive)
    return sorted(name for name in set(theirs) | set(ours) if theirs.get(name) != ours.get(name))


@dataclass(frozen=True)
class Verified:
    target: str
    key_id: str
    comment: str
    files: list[str]


def verify_target(read: Callable[[str], bytes], where: str, target: str,
                  keys: list[PublicKey]) -> Verified:
    """Check one target's release, its files read by ``read(name)`` (OSError when
    missing): the signature by one of ``keys``, every checksum, and the provenance
    naming the archive as it is."""
    try:
        sums = read(SUMS_FILE)
        signature = read(SIGNATURE_FILE).decode(errors="replace")
    except OSError as err:
        raise ReleaseCheckFailed(f"{where}: {err}") from None
    try:
        key, comment = verify(sums, signature, keys)
    except SignatureError as err:
        raise ReleaseCheckFailed(f"{where}/{SUMS_FILE}: {err}") from None
    if not comment.endswith(f" target:{target}"):
        raise ReleaseCheckFailed(f"{where}: signed for another target ({comment})")
    listed = {}
    for number, line in enumerate(sums.decode(errors="replace").splitlines(), 1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name or "/" in name or name.startswith("."):
            raise ReleaseCheckFailed(f"{where}/{SUMS_FILE}, line {number}: not a checksum line")
        listed[name] = digest
    for name, digest in listed.items():
        try:
            data = read(name)
        except OSError as err:
            raise ReleaseCheckFailed(f"{where}/{name}: listed in {SUMS_FILE} but {err}") \
                from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise ReleaseCheckFailed(f"{where}/{name}: its SHA-256 is not the one "
                                     f"{SUMS_FILE} lists (the file was changed)")
    if PROVENANCE_FILE not in listed:
        raise ReleaseCheckFailed(f"{where}: no {PROVENANCE_FILE} in {SUMS_FILE}")
    try:
        subjects = provenance_subjects(read(PROVENANCE_FILE).decode())
    except (ValueError, KeyError, TypeError) as err:
        raise ReleaseCheckFailed(f"{where}/{PROVENANCE_FILE}: {err}") from None
    archive = next(iter(listed))
    if subjects.get(archive) != listed[archive]:
        raise ReleaseCheckFailed(f"{where}/{PROVENANCE_FILE}: does not name {archive} "
                                 "with the checksum SHA256SUMS lists")
    return Verified(target, key.id_text, comment, list(listed))

"""A worker's own copies of crate store entries, for a worker that cannot see the farm's
store (a remote Docker engine, an EC2 instance): kept in a directory that outlives the
build, under the store's keys (``registry/NAME-VERSION-CHECKSUM``,
``git/NAME-VERSION-COMMIT``).

The master sends the SHA-256 of each entry's ``.cargo-checksum.json`` as its store
has it. A copy is used only when its listing has that digest and its files are
exactly those the listing names, with their digests: a copy altered in any way is
removed and sent again, never built. Received entries are checked the same way
before they are renamed into place whole.

A check marks the copies a build uses (their directory's time), and a copy no build
used for the farm's ``crates.keep_days`` is removed when copies are received, at most
once an hour. The farm's own store is bounded the same way (:func:`prune_unused`).
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import time

from .digests import file_sha256

CHECKSUM_FILE = ".cargo-checksum.json"
KINDS = ("registry", "git")             # where entries live, under a store's root
PRUNE_EVERY = 3600                      # unused entries are looked for at most this often
PRUNED_STAMP = ".pruned"                # its time: when they were last looked for
DAY = 86400


def copy_problem(entry: str, listing_digest: str) -> str | None:
    """What is wrong with a copy (None when it is whole)."""
    listing_path = os.path.join(entry, CHECKSUM_FILE)
    if os.path.islink(listing_path) or not os.path.isfile(listing_path):
        return "no listing"
    if file_sha256(listing_path) != listing_digest:
        return "its listing is not the store's"
    try:
        with open(listing_path, encoding="utf-8") as listing:
            files = json.load(listing)["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return "its listing is not readable"
    found = set()
    for root, dirs, names in os.walk(entry):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            found.add(os.path.relpath(os.path.join(root, name), entry).replace(os.sep, "/"))
    found.discard(CHECKSUM_FILE)
    if found != set(files):
        return f"files added {sorted(found - set(files))[:3]} or missing " \
               f"{sorted(set(files) - found)[:3]}"
    for name, digest in files.items():
        path = os.path.join(entry, name)
        if os.path.islink(path) or file_sha256(path) != digest:
            return f"{name} was changed"
    return None


def remove(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.remove(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


def check_copies(cache: str, listings: dict[str, str]) -> tuple[list[str], list[str]]:
    """The keys the cache lacks (altered copies removed first), and what was altered."""
    missing, altered = [], []
    for key, digest in sorted(listings.items()):
        entry = os.path.join(cache, key)
        if not os.path.lexists(entry):
            missing.append(key)
            continue
        problem = copy_problem(entry, digest) if os.path.isdir(entry) \
            and not os.path.islink(entry) else "not a directory"
        if problem:
            altered.append(f"{key}: {problem}")
            remove(entry)
            missing.append(key)
        else:
            mark_used(entry)
    return missing, altered


def mark_used(entry: str) -> None:
    """An entry's directory time is when a build last used it."""
    try:
        os.utime(entry)
    except OSError:
        pass        # a store this process may not write to: nothing is removed from it


def _size(entry: str) -> int:
    return sum(os.lstat(os.path.join(root, name)).st_size
               for root, _, names in os.walk(entry) for name in names)


def prune_unused(root: str, keep_days: int, remove_entry=remove,
                 now: float | None = None) -> list[tuple[str, int]]:
    """The entries under ``root`` that no build used for ``keep_days`` days removed,
    at most once in PRUNE_EVERY seconds (0 days: none): their keys and sizes."""
    now = time.time() if now is None else now
    stamp = os.path.join(root, PRUNED_STAMP)
    if keep_days <= 0 or (os.path.exists(stamp)
                          and now - os.stat(stamp).st_mtime < PRUNE_EVERY):
        return []
    oldest = now - keep_days * DAY
    removed = []
    for kind in KINDS:
        place = os.path.join(root, kind)
        for name in sorted(os.listdir(place)) if os.path.isdir(place) else ():
            entry = os.path.join(place, name)
            if os.path.isdir(entry) and not os.path.islink(entry) \
                    and os.stat(entry).st_mtime < oldest:
                size = _size(entry)
                remove_entry(entry)
                removed.append((f"{kind}/{name}", size))
    with open(stamp, "a"):
        pass
    os.utime(stamp, (now, now))
    return removed


def _safe_members(tar: tarfile.TarFile, keys: set[str]):
    """Directories and regular files under the keys sent, nothing else."""
    for member in tar:
        name = os.path.normpath(member.name)
        if name.startswith(("..", "/")) or not (member.isdir() or member.isfile()):
            continue
        if not any(name == key or name.startswith(key + "/") for key in keys):
            continue
        yield member, name


def receive(cache: str, archive: str,
            listings: dict[str, str]) -> tuple[list[str], list[str]]:
    """The entries of ``archive`` (a tar the master sent, under their keys) put in the
    cache once each is checked; their keys, and the problems of those that were not."""
    staging = os.path.join(cache, "tmp", f"received.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    problems = []
    received = []
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member, name in _safe_members(tar, set(listings)):
                path = os.path.join(staging, name)
                if member.isdir():
                    os.makedirs(path, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with tar.extractfile(member) as source, open(path, "wb") as out:
                    shutil.copyfileobj(source, out)
                os.chmod(path, 0o755 if member.mode & 0o111 else 0o644)
        for key, digest in sorted(listings.items()):
            staged = os.path.join(staging, key)
            if not os.path.isdir(staged):
                continue
            problem = copy_problem(staged, digest)
            if problem:
                problems.append(f"{key} as received: {problem}")
                continue
            entry = os.path.join(cache, key)
            os.makedirs(os.path.dirname(entry), exist_ok=True)
            if os.path.lexists(entry):
                remove(entry)
            os.rename(staged, entry)
            received.append(key)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if os.path.exists(archive):
            os.remove(archive)
    return received, problems

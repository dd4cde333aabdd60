"""The crate cache kept to its size (least recently used entries go first), and a
build's counts of its use from the log of events."""

from __future__ import annotations

import json
import os
import shutil
import time

from .crate_cache import entries, event_log, read_only

# The walk's record in the cache (what the last walk found) and how often the cache is
# walked (seconds); after how long a work directory in tmp is abandoned.
SCANNED_FILE = "scanned.json"
SCAN_EVERY = 300
ABANDONED_AFTER = 3600
DEFAULT_SIZE = 10 << 30


def _entries_by_use() -> tuple[list, int]:
    found, total = [], 0
    root = entries()
    for shard in os.listdir(root):
        place = os.path.join(root, shard)
        if shard == "tmp" or not os.path.isdir(place):
            continue
        for key in os.listdir(place):
            entry = os.path.join(place, key)
            try:
                size = sum(os.stat(os.path.join(entry, name)).st_size
                           for name in os.listdir(entry))
                used = os.stat(os.path.join(entry, "manifest.json")).st_mtime
            except OSError:
                continue
            found.append((used, size, entry))
            total += size
    return found, total


def _remove_abandoned(tmp: str) -> None:
    for name in os.listdir(tmp) if os.path.isdir(tmp) else ():
        work = os.path.join(tmp, name)
        try:
            abandoned = time.time() - os.stat(work).st_mtime > ABANDONED_AFTER
        except OSError:
            continue
        if abandoned:
            shutil.rmtree(work, ignore_errors=True)


def evict() -> tuple[int, int, int]:
    """The least recently used entries go while the cache is over 90% of its size;
    work directories abandoned in tmp (a container stopped mid-store) go too.
    (size, limit, entries evicted)."""
    found, total = _entries_by_use()
    tmp = os.path.join(entries(), "tmp")
    _remove_abandoned(tmp)
    limit = cache_limit()
    evicted = 0
    if total > limit:
        os.makedirs(tmp, exist_ok=True)
        for _, size, entry in sorted(found):
            if total <= limit * 0.9:
                break
            gone = os.path.join(tmp, f"evicted.{os.urandom(8).hex()}")
            try:
                os.rename(entry, gone)
            except OSError:
                continue
            shutil.rmtree(gone, ignore_errors=True)
            total -= size
            evicted += 1
    return total, limit, evicted


def cache_limit() -> int:
    """In bytes, as the master gives it (farm.yaml's compile_cache)."""
    return int(os.environ.get("RUSTFARM_COMPILE_CACHE_SIZE", DEFAULT_SIZE))


def keep_to_size() -> tuple[int, int, int]:
    """evict(), which stats every entry, at most once per SCAN_EVERY seconds for all the
    builds that share the cache: in between, the size its last walk found (in
    SCANNED_FILE, whose time is the walk's), unless the limit is smaller now or that
    walk left the cache over it. Builds in the meantime add what they compile, for
    which the 10% evict() frees below the limit is room."""
    scanned = os.path.join(entries(), SCANNED_FILE)
    try:
        with open(scanned, encoding="utf-8") as last:
            found = json.load(last)
        if time.time() - os.stat(scanned).st_mtime < SCAN_EVERY \
                and found["limit"] <= cache_limit() and found["size"] <= found["limit"]:
            return found["size"], cache_limit(), 0
    except (OSError, ValueError, KeyError, TypeError):
        pass
    size, limit, evicted = evict()
    part = f"{scanned}.{os.getpid()}"
    with open(part, "w", encoding="utf-8") as out:
        json.dump({"size": size, "limit": limit}, out)
    os.replace(part, scanned)
    return size, limit, evicted


def stats() -> dict:
    """The build's counts from its event log, and the cache kept to its size."""
    events: dict[str, list[str]] = {}
    try:
        with open(event_log(), encoding="utf-8") as lines:
            for line in lines:
                event, _, crate = line.strip().partition(" ")
                events.setdefault(event, []).append(crate)
    except OSError:
        pass
    compiled = events.get("stored", []) + events.get("compiled", [])
    found = {"kind": "crates", "location": os.environ.get("RUSTFARM_COMPILE_CACHE", ""),
             "read_only": read_only(), "hits": len(events.get("hit", [])),
             "misses": len(compiled), "not_cacheable": len(events.get("not-cacheable", [])),
             "errors": len(events.get("error", [])),
             "from_cache": sorted(events.get("hit", [])), "compiled": sorted(compiled)}
    if not read_only() and os.path.isdir(entries()):
        try:
            found["size"], found["limit"], found["evicted"] = keep_to_size()
        except (OSError, ValueError):
            pass
    return found

"""``dependencies``: the build's view of the farm's crate store, from a JSON request on
standard input (the master's dependencies step sends it):

    {"store": DIR, "view": DIR, "entries": {"NAME-VERSION": "KIND/KEY", ...},
     "config": TOML, "config_file": PATH, "lock": null | {"path": PATH, "text": TOML},
     "listings": {"KIND/KEY": SHA256, ...}, "received": null | PATH, "keep_days": N,
     "pool_crates": null | {"bucket": NAME, "prefix": PREFIX}}

The view is a directory of links, one per package of the build's Cargo.lock, to its
entry in the store: cargo's directory source, which ``config``
(written to ``config_file``, given to cargo with ``--config``) puts in place of every
registry and git repository. ``lock`` is a Cargo.lock the farm resolved for a project
that has none, written where cargo looks for it.

With ``listings`` (the digests of the entries' listings), ``store`` is the worker's
own copy of the entries (crate_copies.py), not the farm's store: copies are checked
first, ``received`` (a tar of entries the master sent) is put in place, and when
copies are still missing no view is made and the result names them, for the master
to send. Once copies were received, those no build used for ``keep_days`` days go.
With ``pool_crates`` (an EC2 instance of a pool with a compile cache), copies the
worker lacks are first taken from the pool's bucket, and those the master sends are
put there for the pool's next instances (pool_crates.py).

Result: ``{"linked": N, "missing": [KEY...], "altered": [PROBLEM...], "received": N,
"pruned": [KEY...], "from_pool": N, "shared": N}``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

from .crate_copies import check_copies, prune_unused, receive
from .pool_crates import PoolCrates
from .protocol import answer, fail, say


def write_file(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    part = f"{path}.{os.getpid()}"
    with open(part, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(part, path)


def make_view(store: str, view: str, entries: dict[str, str]) -> int:
    """``view`` with exactly one link per entry (a new view replaces the last build's)."""
    if os.path.isdir(view) and not os.path.islink(view):
        shutil.rmtree(view)
    staged = f"{view}.{os.getpid()}"
    shutil.rmtree(staged, ignore_errors=True)
    os.makedirs(staged)
    for name, key in sorted(entries.items()):
        target = os.path.join(store, key)
        if not os.path.isdir(target):
            fail(f"the crate store has no {key} (is it mounted at {store}?)")
        os.symlink(target, os.path.join(staged, name))
    os.replace(staged, view)
    return len(entries)


def main(args: list[str]) -> None:
    if args:
        raise ValueError("takes no arguments, only its request on standard input")
    try:
        request = json.load(sys.stdin)
        store, view, entries = request["store"], request["view"], request["entries"]
    except (ValueError, KeyError, TypeError) as err:
        fail(f"not a dependencies request: {err}")
    listings = request.get("listings")
    found = {"missing": [], "altered": [], "received": 0}
    if listings is not None:
        found = own_copies(store, listings, request.get("received"),
                           request.get("keep_days", 0),
                           PoolCrates.from_request(request.get("pool_crates")))
        if found["missing"]:
            say(f"{len(found['missing'])} of {len(listings)} entries are not on this worker")
            answer({"linked": 0, **found})
            return
    linked = make_view(store, view, entries)
    write_file(request["config_file"], request["config"])
    lock = request.get("lock")
    if lock:
        write_file(lock["path"], lock["text"])
        say(f"wrote the Cargo.lock the farm resolved: {lock['path']}")
    say(f"{linked} packages from the crate store in {view}")
    answer({"linked": linked, **found})


def own_copies(cache: str, listings: dict[str, str], received: str | None,
               keep_days: int = 0, pool: PoolCrates | None = None) -> dict:
    """The worker's copies checked, with what the master sent put in place (and in the
    pool's bucket); as they grow, the copies no build used for ``keep_days`` days
    removed."""
    os.makedirs(cache, exist_ok=True)
    keys, problems = receive(cache, received, listings) if received else ([], [])
    if problems:
        fail("entries sent by the master are not whole: " + "; ".join(problems[:5]))
    missing, altered = check_copies(cache, listings)
    for problem in altered:
        say(f"altered on this worker, removed: {problem}")
    if received and missing:
        fail(f"the master did not send {', '.join(missing[:5])}")
    from_pool, shared = [], 0
    if pool is not None and missing:
        from_pool, refused = pool.fetch(cache, {key: listings[key] for key in missing})
        missing = [key for key in missing if key not in from_pool]
        say(f"{len(from_pool)} entries from the pool's bucket s3://{pool.bucket}/"
            f"{pool.prefix}crates/")
        for problem in refused:
            say(f"not taken from the pool's bucket: {problem}")
    if pool is not None and keys:
        shared, refused = pool.share(cache, {key: listings[key] for key in keys})
        say(f"{shared} entries put in the pool's bucket for its next instances")
        for problem in refused[:5]:
            say(f"not put in the pool's bucket: {problem}")
    count = len(keys) + len(from_pool)
    pruned = []
    if count:
        say(f"received {len(keys)} entries from the master")
        pruned = prune_unused(cache, keep_days)
        if pruned:
            say(f"removed {len(pruned)} copies no build used for {keep_days} days "
                f"({sum(size for _, size in pruned) // 1024} KiB): "
                + ", ".join(key for key, _ in pruned[:10]))
    return {"missing": missing, "altered": altered, "received": len(keys),
            "pruned": [key for key, _ in pruned], "from_pool": len(from_pool),
            "shared": shared}

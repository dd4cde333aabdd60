"""``dependencies``: the build's view of the farm's crate store, from a JSON request on
standard input (the master's dependencies step sends it):

    {"store": DIR, "view": DIR, "entries": {"NAME-VERSION": "KIND/KEY", ...},
     "config": TOML, "config_file": PATH, "lock": null | {"path": PATH, "text": TOML}}

The view is a directory of links, one per package of the build's Cargo.lock, to its
entry in the store (mounted read-only): cargo's directory source, which ``config``
(written to ``config_file``, given to cargo with ``--config``) puts in place of every
registry and git repository. ``lock`` is a Cargo.lock the farm resolved for a project
that has none, written where cargo looks for it.

Result: ``{"linked": N}``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

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
    linked = make_view(store, view, entries)
    write_file(request["config_file"], request["config"])
    lock = request.get("lock")
    if lock:
        write_file(lock["path"], lock["text"])
        say(f"wrote the Cargo.lock the farm resolved: {lock['path']}")
    say(f"{linked} packages from the crate store in {view}")
    answer({"linked": linked})

"""A worker's own copies of crate store entries: the dependencies command of the real
worker tool, given the digests of the store's listings, names what it lacks, takes
what the master's store packed, and replaces a copy altered in any way."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from rustfarm.cargo_lock import CRATES_IO, LockedPackage
from rustfarm.crate_store import CrateStore
from rustfarm.worker_tool.crate_copies import DAY, PRUNED_STAMP
from tests.dependencies.test_crate_store import FILES, unpacked
from tests.support.worker_tool import run_tool, tool_in

PACKAGES = [LockedPackage("demo", "1.0.0", CRATES_IO, "ab" * 32),
            LockedPackage("other", "2.0.0", CRATES_IO, "cd" * 32)]


@pytest.fixture(scope="module")
def tool(tmp_path_factory) -> Path:
    return tool_in(tmp_path_factory.mktemp("tool"))


@pytest.fixture
def store(tmp_path) -> CrateStore:
    store = CrateStore(tmp_path / "store")
    for package in PACKAGES:
        store.add(package, unpacked(tmp_path / package.name, FILES, package.checksum))
    return store


def request(store: CrateStore, copies: Path, work: Path, received: str | None = None,
            packages: list[LockedPackage] = PACKAGES) -> str:
    return json.dumps({
        "store": str(copies), "view": str(work / "view"),
        "entries": {f"{p.name}-{p.version}": p.store_key for p in packages},
        "listings": {p.store_key: store.listing_digest(p) for p in packages},
        "received": received, "config": "", "config_file": str(work / "config.toml"),
        "lock": None, "keep_days": 30})


def dependencies(tool, store, copies, work, received=None, packages=PACKAGES) -> dict:
    done, answer = run_tool(tool, "dependencies", cwd=work,
                            input=request(store, copies, work, received, packages))
    assert done.returncode == 0, done.stderr
    return answer


def send(store: CrateStore, keys: list[str], work: Path) -> str:
    store.pack([p for p in PACKAGES if p.store_key in keys], work / "crates.tar.gz")
    return "crates.tar.gz"


def test_copies_are_sent_once_and_an_altered_one_is_replaced(tool, store, tmp_path):
    copies, work = tmp_path / "copies", tmp_path / "work"
    work.mkdir()
    first = dependencies(tool, store, copies, work)
    assert sorted(first["missing"]) == sorted(p.store_key for p in PACKAGES)
    assert first["linked"] == 0 and not (work / "view").exists()
    done = dependencies(tool, store, copies, work, send(store, first["missing"], work))
    assert done == {"linked": 2, "missing": [], "altered": [], "received": 2, "pruned": [],
                    "from_pool": 0, "shared": 0}
    assert (work / "view" / "demo-1.0.0" / "src" / "lib.rs").read_text() == FILES["src/lib.rs"]
    assert not (work / "crates.tar.gz").exists()
    # A second build: nothing to send.
    assert dependencies(tool, store, copies, work)["missing"] == []
    # A copy altered on the worker, even with its listing rewritten to match, is removed
    # and asked for again.
    entry = copies / PACKAGES[0].store_key
    (entry / "src" / "lib.rs").write_text("pub fn f() { evil() }\n")
    listing = json.loads((entry / ".cargo-checksum.json").read_text())
    listing["files"]["src/lib.rs"] = "00" * 32
    (entry / ".cargo-checksum.json").write_text(json.dumps(listing))
    again = dependencies(tool, store, copies, work)
    assert again["missing"] == [PACKAGES[0].store_key]
    assert again["altered"] == [f"{PACKAGES[0].store_key}: its listing is not the store's"]
    done = dependencies(tool, store, copies, work, send(store, again["missing"], work))
    assert done["received"] == 1 and done["linked"] == 2
    assert (entry / "src" / "lib.rs").read_text() == FILES["src/lib.rs"]
    # An added file is an alteration too.
    (entry / "build.rs").write_text("fn main() {}\n")
    assert dependencies(tool, store, copies, work)["altered"][0].startswith(
        f"{PACKAGES[0].store_key}: files added ['build.rs']")


def test_an_entry_that_arrives_damaged_is_not_used(tool, store, tmp_path):
    copies, work = tmp_path / "copies", tmp_path / "work"
    work.mkdir()
    (store.entry(PACKAGES[1]) / "src" / "lib.rs").write_text("damaged\n")
    done, answer = run_tool(tool, "dependencies", cwd=work, input=request(
        store, copies, work, send(store, [p.store_key for p in PACKAGES], work)))
    assert done.returncode == 1
    assert answer["error"].startswith("entries sent by the master are not whole: "
                                      f"{PACKAGES[1].store_key} as received: src/lib.rs")
    assert not (copies / PACKAGES[1].store_key).exists()


def test_copies_no_build_used_for_keep_days_go_as_copies_grow(tool, store, tmp_path):
    copies, work = tmp_path / "copies", tmp_path / "work"
    work.mkdir()
    one, other = PACKAGES[1:], PACKAGES[:1]
    dependencies(tool, store, copies, work, send(store, [one[0].store_key], work), one)
    long_ago, yesterday = time.time() - 40 * DAY, time.time() - DAY
    os.utime(copies / one[0].store_key, (long_ago, long_ago))
    os.utime(copies / PRUNED_STAMP, (yesterday, yesterday))
    # A build that uses it marks it used: it stays.
    assert dependencies(tool, store, copies, work, packages=one)["missing"] == []
    assert (copies / one[0].store_key).stat().st_mtime > time.time() - 600
    os.utime(copies / one[0].store_key, (long_ago, long_ago))
    # Copies of another build's crates arrive: the one unused for 40 days goes.
    grown = dependencies(tool, store, copies, work, send(store, [other[0].store_key], work),
                         other)
    assert grown["received"] == 1 and grown["linked"] == 1
    assert grown["pruned"] == [one[0].store_key]
    assert not (copies / one[0].store_key).exists() and (copies / other[0].store_key).is_dir()
    assert dependencies(tool, store, copies, work, packages=one)["missing"] == \
        [one[0].store_key]

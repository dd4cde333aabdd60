"""The crate store's check of an entry against its listing and Cargo.lock's checksum."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from rustfarm.cargo_lock import CRATES_IO, LockedPackage
from rustfarm.crate_store import CrateStore, entry_problem

CHECKSUM = "ab" * 32
PACKAGE = LockedPackage("demo", "1.0.0", CRATES_IO, CHECKSUM)


def unpacked(directory: Path, files: dict[str, str], package: str | None = CHECKSUM) -> Path:
    """A package as cargo vendor unpacks it: its files and their listing."""
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    listing = {name: hashlib.sha256(text.encode()).hexdigest() for name, text in files.items()}
    (directory / ".cargo-checksum.json").write_text(json.dumps({"files": listing,
                                                                "package": package}))
    return directory


FILES = {"Cargo.toml": "[package]\n", "src/lib.rs": "pub fn f() {}\n"}


def test_an_entry_is_whole_only_as_listed(tmp_path):
    entry = unpacked(tmp_path / "e", FILES)
    assert entry_problem(entry, PACKAGE) is None
    (entry / "src" / "extra.rs").write_text("")
    assert "files added ['src/extra.rs']" in entry_problem(entry, PACKAGE)
    (entry / "src" / "extra.rs").unlink()
    (entry / "src" / "lib.rs").unlink()
    assert "missing ['src/lib.rs']" in entry_problem(entry, PACKAGE)
    assert "another .crate" in entry_problem(unpacked(tmp_path / "o", FILES, "cd" * 32), PACKAGE)
    (tmp_path / "e" / ".cargo-checksum.json").unlink()
    assert "no readable .cargo-checksum.json" in entry_problem(entry, PACKAGE)


def test_the_store_adds_whole_entries_and_drops_altered_ones(tmp_path):
    store = CrateStore(tmp_path / "store")
    assert store.check([PACKAGE]).missing == [PACKAGE]
    store.add(PACKAGE, unpacked(tmp_path / "vendor" / "demo-1.0.0", FILES))
    assert store.entry(PACKAGE) == tmp_path / "store" / "registry" / f"demo-1.0.0-{CHECKSUM[:20]}"
    assert store.check([PACKAGE]).present == [PACKAGE]
    assert oct(store.entry(PACKAGE).stat().st_mode & 0o777) == "0o755"
    (store.entry(PACKAGE) / "src" / "lib.rs").write_text("altered")
    found = store.check([PACKAGE])
    assert found.missing == [PACKAGE] and found.altered == ["demo 1.0.0: src/lib.rs was changed"]
    assert not store.entry(PACKAGE).exists()

"""The farm's one reproducible archive writer (rustfarm/worker_tool/archives.py)."""

from __future__ import annotations

import gzip
import io
import os
import tarfile

from rustfarm.worker_tool.archives import Member, member_of, tar_gz_bytes


def tree(root, when: int, order: list[str]) -> None:
    for name in order:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"content of {name}")
        os.utime(path, (when, when))
    (root / "bin" / "run").chmod(0o700)
    (root / "link").symlink_to("bin/run")


def packed(root) -> bytes:
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    return tar_gz_bytes(member_of(str(root), name) for name in names)


def test_the_same_files_give_the_same_bytes_whenever_and_in_any_order(tmp_path):
    tree(tmp_path / "a", 1_000_000, ["src/main.rs", "bin/run", "Cargo.toml"])
    tree(tmp_path / "b", 2_000_000, ["Cargo.toml", "bin/run", "src/main.rs"])
    assert packed(tmp_path / "a") == packed(tmp_path / "b")
    data = packed(tmp_path / "a")
    assert gzip.decompress(data)          # plain gzip
    assert data[4:8] == b"\0\0\0\0"       # no time in gzip's header
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert list(members) == sorted(members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members.values()} == \
        {(0, 0, 0, "", "")}
    assert members["bin/run"].mode == 0o755 and members["Cargo.toml"].mode == 0o644
    assert members["bin"].isdir() and members["link"].issym() \
        and members["link"].linkname == "bin/run"


def test_members_from_bytes_and_from_files_are_alike(tmp_path):
    (tmp_path / "f").write_bytes(b"data")
    assert tar_gz_bytes([Member("f", path=str(tmp_path / "f"))]) == \
        tar_gz_bytes([Member("f", data=b"data")])
    assert tar_gz_bytes([Member("f", data=b"x")], mtime=5) != \
        tar_gz_bytes([Member("f", data=b"x")])

"""An archive's arrival in the store: two masters that built one revision store its
archive at once, and both put it in place with its SHA256SUMS."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

from rustfarm.master.staged_uploads import StagedFileWriter

DATA = b"one revision's archive, as both masters packed it"
DIGEST = hashlib.sha256(DATA).hexdigest()


def arrived(destination) -> StagedFileWriter:
    writer = StagedFileWriter(str(destination), None, 0o644)
    writer.remote_write(DATA)
    writer.remote_close()
    return writer


def test_two_writers_of_one_archive_at_once_both_put_it_in_place(tmp_path):
    archive = tmp_path / "hello-3b617a36869c-mipsel-unknown-linux-musl.tar.gz"
    for _ in range(20):
        writers = [arrived(archive) for _ in range(4)]
        with ThreadPoolExecutor(len(writers)) as pool:
            assert list(pool.map(lambda w: w.put_in_place(DIGEST), writers)) == [DIGEST] * 4
    assert archive.read_bytes() == DATA
    assert (tmp_path / "SHA256SUMS").read_text() == f"{DIGEST}  {archive.name}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SHA256SUMS", archive.name]

"""A build's archive, uploaded from the worker, put in its release only whole.

Buildbot's writer of an upload raises a write the master's file system refuses (a
full artifact store) back to the worker, which cannot send that error back (its
failure holds bytes PB will not serialise): the step then waits for ever. And when
the worker closes the transfer after the error, the writer renames the truncated
file over the release's archive. Here the writer keeps the error, and nothing
replaces the release's files until the archive, its digest and its SHA256SUMS are
all written: a full store leaves the files there were, and the step says why.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from buildbot.process import remotetransfer

from rustfarm.plumbing import file_sha256, partial_path

# Why a file system refuses a write, as a build's summary says it.
_REFUSALS = {errno.ENOSPC: "artifact store full", errno.EDQUOT: "artifact store over its quota",
             errno.EROFS: "artifact store read-only", errno.EFBIG: "file too large for the store"}


def store_refusal(err: OSError, where: Path | None = None) -> str:
    """One line: why the store refused, and how much room it has left."""
    reason = _REFUSALS.get(err.errno, "the artifact store refused a write")
    free = ""
    if where is not None:
        try:
            free = f", {shutil.disk_usage(where).free // 1024} KiB free"
        except OSError:
            pass
    return f"{reason} ({err.strerror or err}{free})"


class DamagedTransfer(ValueError):
    """What arrived is not what the worker packed."""


class StagedFileWriter(remotetransfer.FileWriter):
    """Buildbot's upload writer, keeping what arrived in its temporary file beside the
    destination (``put_in_place`` moves it) and a refused write in ``error``."""

    error: OSError | None = None

    def remote_write(self, data):
        if self.error is not None:
            return
        try:
            super().remote_write(data)
        except OSError as err:
            self.error = err

    def remote_close(self):
        if self.fp is not None:
            try:
                self.fp.close()
            except OSError as err:
                self.error = self.error or err
            self.fp = None

    def remote_utime(self, accessed_modified):
        pass            # the archive's times are the packer's (zero), not the transfer's

    def discard(self) -> None:
        if self.fp is not None:
            self.fp.close()
            self.fp = None
        if self.tmpname:
            Path(self.tmpname).unlink(missing_ok=True)
            self.tmpname = None

    def put_in_place(self, expected_sha256: str | None) -> str:
        """The archive moved to its place, with a SHA256SUMS for it alone; its digest.
        The checksums are written before either file is replaced (a rename needs no
        room), so a store that fills up meanwhile leaves the release as it was."""
        staged, archive = Path(self.tmpname), Path(self.destfile)
        sums = archive.parent / "SHA256SUMS"
        partial = partial_path(sums)
        try:
            digest = file_sha256(staged)
            if expected_sha256 is not None and digest != expected_sha256:
                raise DamagedTransfer(f"{archive.name} arrived damaged (its SHA-256 differs)")
            partial.write_text(f"{digest}  {archive.name}\n")
            os.chmod(staged, self.mode if self.mode is not None else 0o644)
            staged.replace(archive)
            self.tmpname = None
            partial.replace(sums)
            return digest
        except BaseException:
            partial.unlink(missing_ok=True)
            self.discard()
            raise

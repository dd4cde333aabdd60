"""The master's secrets: one file each in the state directory's secrets/."""

from __future__ import annotations

import os

from buildbot.secrets.providers.file import SecretInAFile


class SecretFiles(SecretInAFile):
    """Buildbot's SecretInAFile, reading a secret's file when it is asked for, so a
    password (`farm passwd`) or token (`farm token`) set while the master runs is the
    one it checks next, without a reconfiguration (upstream reads them all then)."""

    def get(self, entry):
        if not entry or "/" in entry or entry.startswith("."):
            return None
        try:
            with open(os.path.join(self._dirname, entry), encoding="utf-8") as source:
                return source.read().rstrip("\r\n")
        except FileNotFoundError:
            return super().get(entry)

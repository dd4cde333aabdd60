"""The farm's release signing keys: the secret one in the secret store, and every
public key it has had in the state directory, so a release signed before a rotation
still verifies.

``release-keys/<KEY ID>.pub`` holds each public key (minisign's format) and
``release-keys/current`` the id of the one that signs now.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from .minisign import PublicKey, SecretKey
from .plumbing import partial_path
from .state import SecretStore, StateDir

SIGNING_KEY_SECRET = "release-signing-key"
CURRENT = "current"


class ReleaseKeys:
    def __init__(self, paths: StateDir):
        self.store = SecretStore(paths.secrets)
        self.directory: Path = paths.release_keys

    @contextlib.contextmanager
    def _locked(self):
        """One maker of keys at a time among the masters and commands of this farm."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def signing_key(self) -> SecretKey:
        """The key that signs releases, made the first time it is needed."""
        text = self.store.read(SIGNING_KEY_SECRET)
        if text:
            return SecretKey.parse(text)
        with self._locked():
            text = self.store.read(SIGNING_KEY_SECRET)
            if text:
                return SecretKey.parse(text)
            return self._install(SecretKey.generate())

    def rotate(self) -> tuple[PublicKey, PublicKey | None]:
        """A new signing key; the old one's public key stays trusted. (new, old)"""
        with self._locked():
            text = self.store.read(SIGNING_KEY_SECRET)
            old = SecretKey.parse(text).public if text else None
            return self._install(SecretKey.generate()).public, old

    def _install(self, key: SecretKey) -> SecretKey:
        public = key.public
        _write(self.directory / f"{public.id_text}.pub", public.file_text())
        self.store.write(SIGNING_KEY_SECRET, key.text())
        _write(self.directory / CURRENT, public.id_text + "\n")
        return key

    def current(self) -> PublicKey:
        return self.signing_key().public

    def trusted(self) -> list[PublicKey]:
        """Every public key the farm has signed with, the current one first."""
        current = self.current()
        others = sorted(p for p in self.directory.glob("*.pub") if p.stem != current.id_text)
        return [current, *(PublicKey.parse(p.read_text(), str(p)) for p in others)]


def published_keys(directory: Path) -> list[PublicKey]:
    """The public keys in ``directory`` (the current one first), without making one:
    what the web server publishes."""
    try:
        current = (directory / CURRENT).read_text().strip()
    except OSError:
        return []
    paths = sorted(directory.glob("*.pub"), key=lambda p: (p.stem != current, p.stem))
    return [PublicKey.parse(p.read_text(), str(p)) for p in paths]


def _write(path: Path, text: str) -> None:
    partial = partial_path(path)
    partial.write_text(text)
    os.replace(partial, path)


def keys_file_text(keys: list[PublicKey]) -> str:
    """Several public keys in one file, as ``farm verify --key`` and the web server take them."""
    return "".join(k.file_text() for k in keys)


def parse_keys_file(text: str, where: str) -> list[PublicKey]:
    """The public keys of a file of one or more (minisign's two lines each)."""
    lines = [line for line in text.splitlines() if line.strip()
             and not line.startswith("untrusted comment:")]
    return [PublicKey.parse(line, f"{where}, key {number}")
            for number, line in enumerate(lines, 1)]

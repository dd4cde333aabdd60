"""Signatures in minisign's format (Ed25519 over the BLAKE2b-512 of the file), made and
checked with ``cryptography``, so ``minisign -V -p KEY.pub -m FILE`` checks what the
farm signs and anyone can verify a release without the farm's own command.

A public key file is two lines, ``untrusted comment: ...`` and the base64 of
``b"Ed" + key id (8 bytes) + public key (32 bytes)``. A signature file is four:
the untrusted comment, the base64 of ``b"ED" + key id + signature``, ``trusted
comment: TEXT`` and the base64 of the signature of (signature + TEXT), so the
trusted comment cannot be changed either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, \
    Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, \
    PrivateFormat, PublicFormat

from .errors import FarmError

ALGORITHM = b"Ed"           # the key's algorithm, as minisign names it
PREHASHED = b"ED"           # a signature of the file's BLAKE2b-512


class SignatureError(FarmError):
    """A signature or key that does not check, saying why."""


def key_id_text(key_id: bytes) -> str:
    """The key id as minisign prints it (the 8 bytes as a little-endian number, hex)."""
    return f"{int.from_bytes(key_id, 'little'):016X}"


@dataclass(frozen=True)
class PublicKey:
    key_id: bytes
    key: bytes

    @property
    def id_text(self) -> str:
        return key_id_text(self.key_id)

    def file_text(self) -> str:
        blob = base64.b64encode(ALGORITHM + self.key_id + self.key).decode()
        return f"untrusted comment: minisign public key {self.id_text}\n{blob}\n"

    @classmethod
    def parse(cls, text: str, where: str = "public key") -> "PublicKey":
        lines = [line for line in text.splitlines() if line.strip()]
        blob = lines[-1] if lines else ""
        try:
            raw = base64.b64decode(blob, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError(f"{where}: not a minisign public key") from None
        if len(raw) != 42 or raw[:2] != ALGORITHM:
            raise SignatureError(f"{where}: not a minisign Ed25519 public key")
        return cls(raw[2:10], raw[10:])


@dataclass(frozen=True)
class SecretKey:
    key_id: bytes
    seed: bytes

    @classmethod
    def generate(cls) -> "SecretKey":
        private = Ed25519PrivateKey.generate()
        seed = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return cls(os.urandom(8), seed)

    @property
    def public(self) -> PublicKey:
        key = self._private().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return PublicKey(self.key_id, key)

    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    def text(self) -> str:
        """The form kept in the farm's secret store (not minisign's own, which is
        encrypted with a password no master could type)."""
        return base64.b64encode(ALGORITHM + self.key_id + self.seed).decode()

    @classmethod
    def parse(cls, text: str) -> "SecretKey":
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("the release signing key in the secret store is damaged") \
                from None
        if len(raw) != 42 or raw[:2] != ALGORITHM:
            raise SignatureError("the release signing key in the secret store is damaged")
        return cls(raw[2:10], raw[10:])

    def sign(self, data: bytes, trusted_comment: str, untrusted_comment: str = "") -> str:
        if "\n" in trusted_comment or "\n" in untrusted_comment:
            raise ValueError("a signature's comments are one line each")
        private = self._private()
        signature = private.sign(hashlib.blake2b(data).digest())
        global_signature = private.sign(signature + trusted_comment.encode())
        untrusted = untrusted_comment or f"signature from rustfarm key {key_id_text(self.key_id)}"
        return (f"untrusted comment: {untrusted}\n"
                f"{base64.b64encode(PREHASHED + self.key_id + signature).decode()}\n"
                f"trusted comment: {trusted_comment}\n"
                f"{base64.b64encode(global_signature).decode()}\n")


def signing_key_id(signature_text: str) -> str:
    """Which key made a signature (its id as minisign prints it)."""
    return key_id_text(_signature_parts(signature_text)[1])


def _signature_parts(text: str) -> tuple[bytes, bytes, bytes, str, bytes]:
    lines = text.splitlines()
    if len(lines) < 4 or not lines[0].startswith("untrusted comment:") \
            or not lines[2].startswith("trusted comment: "):
        raise SignatureError("not a minisign signature (four lines: comment, signature, "
                             "trusted comment, its signature)")
    try:
        raw = base64.b64decode(lines[1], validate=True)
        global_signature = base64.b64decode(lines[3], validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("the signature is not base64") from None
    if len(raw) != 74 or raw[:2] not in (PREHASHED, ALGORITHM) or len(global_signature) != 64:
        raise SignatureError("not an Ed25519 minisign signature")
    return raw[:2], raw[2:10], raw[10:], lines[2][len("trusted comment: "):], global_signature


def verify(data: bytes, signature_text: str, keys: list[PublicKey]) -> tuple[PublicKey, str]:
    """The key (of ``keys``) that signed ``data`` and the signature's trusted comment;
    SignatureError when no key of them did, or the data or comment changed."""
    algorithm, key_id, signature, comment, global_signature = _signature_parts(signature_text)
    key = next((k for k in keys if k.key_id == key_id), None)
    if key is None:
        raise SignatureError(f"signed by key {key_id_text(key_id)}, which is not one of the "
                             f"trusted keys ({', '.join(k.id_text for k in keys) or 'none'})")
    public = Ed25519PublicKey.from_public_bytes(key.key)
    signed = hashlib.blake2b(data).digest() if algorithm == PREHASHED else data
    try:
        public.verify(signature, signed)
    except InvalidSignature:
        raise SignatureError(f"the signature by key {key.id_text} does not match the file") \
            from None
    try:
        public.verify(global_signature, signature + comment.encode())
    except InvalidSignature:
        raise SignatureError("the signature's trusted comment was changed") from None
    return key, comment

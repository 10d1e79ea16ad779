"""Objects encrypted at rest: AES-256-GCM (an AEAD from `cryptography`) per object, under a
key named in the object's own header so keys rotate.

An encrypted object is `MAGIC + len(kid) + kid + nonce + ciphertext‖tag`. The header (magic and
key id) and the object's key (without the archive prefix, so an archived copy still opens) are
the associated data: a byte changed anywhere, or an object moved under another student's key,
fails to open. Objects written before encryption carry no magic (JPEG, PNG, PDF and JSON never
start with a NUL byte) and are read as they are until `python -m backend storage reencrypt`
rewrites them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"\x00RGOBJ1"
NONCE_BYTES = 12


class ObjectTampered(ValueError):
    """An encrypted object that does not open: altered bytes, a wrong key, or a key id that
    the settings no longer list."""


def derive_key(secret: str) -> bytes:
    """The AES-256 key of a configured secret (any string of 32 characters or more)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"registry objects v1"
    ).derive(secret.encode())


def is_encrypted(data: bytes) -> bool:
    return data.startswith(MAGIC)


def key_id_of(data: bytes) -> str | None:
    """The key id an encrypted object names; None for a plaintext one."""
    if not is_encrypted(data) or len(data) <= len(MAGIC):
        return None
    size = data[len(MAGIC)]
    return data[len(MAGIC) + 1 : len(MAGIC) + 1 + size].decode("ascii", "replace")


@dataclass(frozen=True)
class ObjectCipher:
    """Every key that may still open objects, by key id; new objects use the active one."""

    keys: Mapping[str, bytes]
    active_kid: str

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, str], active_kid: str) -> ObjectCipher:
        if active_kid not in secrets:
            raise ValueError(f"storage key id {active_kid!r} is not among the storage keys")
        return cls({kid: derive_key(secret) for kid, secret in secrets.items()}, active_kid)

    def seal(self, name: str, plaintext: bytes) -> bytes:
        kid = self.active_kid.encode("ascii")
        header = MAGIC + bytes([len(kid)]) + kid
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keys[self.active_kid]).encrypt(
            nonce, plaintext, header + name.encode()
        )
        return header + nonce + sealed

    def open(self, name: str, data: bytes) -> bytes:
        """The plaintext of a stored object (a plaintext one as it is); `ObjectTampered` if an
        encrypted one does not open."""
        if not is_encrypted(data):
            return data
        kid = key_id_of(data)
        start = len(MAGIC) + 1 + len(kid or "")
        key = self.keys.get(kid or "")
        if key is None:
            raise ObjectTampered(f"{name}: sealed with key {kid!r}, which is not configured")
        header, nonce = data[:start], data[start : start + NONCE_BYTES]
        try:
            return AESGCM(key).decrypt(nonce, data[start + NONCE_BYTES :], header + name.encode())
        except (InvalidTag, ValueError) as exc:
            raise ObjectTampered(f"{name}: does not open (altered or wrong key)") from exc

    def is_current(self, data: bytes) -> bool:
        """Sealed with the active key (nothing for `reencrypt` to do)."""
        return key_id_of(data) == self.active_kid

"""Sensitive values in the audit log, sealed: what an audit row keeps of an ID number, a phone
or an address is a keyed hash and a ciphertext, never the value.

`seal(data)` walks an audit row's `before`/`after` by key name: every value under a sensitive
key (`backend.masking.is_sensitive_key`: the catalog's sensitive fields, a guardian's, the
registry number) becomes

    {"h": "<kid>:<HMAC-SHA256, base64url>", "c": "<kid>:<base64url of nonce ‖ AES-256-GCM>"}

and a registry number G + ID number `{"p": "G", "h": …, "c": …}` (the ID number sealed, so a
look-up by ID number finds it). Keys, `None`, "" and every other value stay readable: who did
what, when, to which field, and — the hashes of one row being under one key — whether a
field's value changed (`before.h != after.h`). As a safety net any string anywhere (a reason,
a dict key) has each ID number, mobile number or long digit run (`backend.masking.IN_TEXT`)
that stands on its own (not inside a hash or token of letters and digits) replaced by
`[sealed h=<kid>:<…> c=<kid>:<…>]`.

Keys: `AUDIT_SEAL_KEY=kid:secret[,kid:secret…]`, the first active; the others still open and
look up older rows. From each secret HKDF derives an AES key and an HMAC key. The ciphertext's
associated data is the key id. `reveal(data)` undoes `seal`; `digests(value)` are the hashes
a value has under every key held (`audit.rows_mentioning` searches them).
"""

from __future__ import annotations

import base64
import functools
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from backend.config import Settings, get_settings
from backend.masking import IN_TEXT, is_sensitive_key

NONCE_BYTES = 12
_B64 = r"[A-Za-z0-9_-]+"
_KID = r"[^:\s\]]+"
_TOKEN = rf"\[sealed h=({_KID}:{_B64}) c=({_KID}:{_B64})\]"
# A token already sealed is kept as it is (sealing twice changes nothing); else a sensitive run
# standing on its own: not inside a longer run of letters and digits, such as the hex SHA-256
# of an archived object (`archive verify` compares it), where 11 digits in a row are common.
_IN_TEXT = re.compile(rf"{_TOKEN}|(?<![0-9A-Za-z])(?:{IN_TEXT.pattern})(?![0-9A-Za-z])")
_SEALED_TOKEN = re.compile(_TOKEN)
_SPACING = re.compile(r"[\s-]")


class SealBroken(ValueError):
    """A sealed value that does not open: altered, or under a key id no longer held."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(secret: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret.encode())


def normalise(value: str) -> str:
    """One spelling per value for the hash: an ID number or phone without spaces or dashes,
    its X upper-case; anything else trimmed."""
    value = value.strip()
    if re.fullmatch(r"[\d\s-]+[Xx]?", value):
        return _SPACING.sub("", value).upper()
    return value


def is_sealed(value: object) -> bool:
    return (
        isinstance(value, Mapping)
        and set(value) in ({"h", "c"}, {"p", "h", "c"})
        and all(isinstance(v, str) for v in value.values())
    )


@dataclass(frozen=True)
class Sealer:
    """Every audit seal key by id (AES-GCM and HMAC keys); new rows use the active one."""

    ciphers: Mapping[str, AESGCM]
    macs: Mapping[str, bytes]
    active: str

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, str], active: str) -> Sealer:
        if active not in secrets:
            raise ValueError(f"audit seal key id {active!r} is not among the audit seal keys")
        return cls(
            {k: AESGCM(_derive(s, b"registry audit values v1 aead")) for k, s in secrets.items()},
            {k: _derive(s, b"registry audit values v1 hmac") for k, s in secrets.items()},
            active,
        )

    @classmethod
    def of(cls, settings: Settings | None = None) -> Sealer:
        settings = settings or get_settings()
        return _cached(tuple(settings.audit_seal_keys.items()), settings.audit_seal_active_kid)

    # --- one value ------------------------------------------------------------------------

    def digest(self, kid: str, value: str) -> str:
        mac = hmac.digest(self.macs[kid], normalise(value).encode(), "sha256")
        return f"{kid}:{_b64(mac)}"

    def digests(self, value: str) -> list[str]:
        """The hash `value` has under every key held: what a row mentioning it contains."""
        return [self.digest(kid, value) for kid in self.macs]

    def seal_value(self, value: str) -> dict[str, str]:
        kid = self.active
        nonce = os.urandom(NONCE_BYTES)
        sealed = self.ciphers[kid].encrypt(nonce, value.encode(), kid.encode())
        return {"h": self.digest(kid, value), "c": f"{kid}:{_b64(nonce + sealed)}"}

    def open_value(self, sealed: str) -> str:
        kid, _, body = sealed.partition(":")
        cipher = self.ciphers.get(kid)
        if cipher is None:
            raise SealBroken(f"sealed with audit seal key {kid!r}, which is not held")
        try:
            data = _unb64(body)
            return cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], kid.encode()).decode()
        except (InvalidTag, ValueError) as error:
            raise SealBroken("a sealed value does not open (altered or wrong key)") from error

    # --- a whole before/after -------------------------------------------------------------

    def seal(self, data: Any) -> Any:
        """`data` with every sensitive value sealed (see the module docstring)."""
        if isinstance(data, Mapping):
            if is_sealed(data):
                return dict(data)
            return {self._text(str(k)): self._under(str(k), v) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self.seal(item) for item in data]
        if isinstance(data, str):
            return self._text(data)
        if isinstance(data, int) and not isinstance(data, bool) and abs(data) >= 10**10:
            return self._text(str(data))  # a phone or ID number typed as a number
        return data

    def _under(self, key: str, value: Any) -> Any:
        if not is_sensitive_key(key) or value is None or value == "" or is_sealed(value):
            return self.seal(value)
        if isinstance(value, Mapping | list | tuple):
            return self._all(value)
        text = str(value)
        if key.endswith("registry_number") and text.startswith("G") and len(text) > 1:
            return {"p": "G", **self.seal_value(text[1:])}
        return self.seal_value(text)

    def _all(self, data: Any) -> Any:
        """Every leaf sealed: a structure under a sensitive key is sensitive throughout."""
        if is_sealed(data):
            return dict(data)
        if isinstance(data, Mapping):
            return {self._text(str(k)): self._all(v) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self._all(item) for item in data]
        return data if data is None or data == "" else self.seal_value(str(data))

    def _text(self, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            if match.group(1):
                return match.group(0)
            sealed = self.seal_value(match.group(0))
            return f"[sealed h={sealed['h']} c={sealed['c']}]"

        return _IN_TEXT.sub(one, text)

    def reveal(self, data: Any) -> Any:
        """`seal` undone: the values as they were written (SealBroken if one does not open)."""
        if is_sealed(data):
            return data.get("p", "") + self.open_value(data["c"])
        if isinstance(data, Mapping):
            return {self._open_text(str(k)): self.reveal(v) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self.reveal(item) for item in data]
        if isinstance(data, str):
            return self._open_text(data)
        return data

    def _open_text(self, text: str) -> str:
        return _SEALED_TOKEN.sub(lambda m: self.open_value(m.group(2)), text)


@functools.lru_cache(maxsize=4)
def _cached(secrets: tuple[tuple[str, str], ...], active: str) -> Sealer:
    return Sealer.from_secrets(dict(secrets), active)

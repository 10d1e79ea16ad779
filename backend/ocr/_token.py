"""The signed form token carried in the QR code: `F1.<form_id>.<mac>`.

`mac` is the first 80 bits of HMAC-SHA256(key, "F1." + form_id) in RFC 4648 base32
without padding (16 characters, upper case). 80 bits is plenty against forgery by
guessing (an attacker cannot test guesses offline without the key) and keeps the QR small
enough for version 4 with medium error correction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from .exceptions import ForgedFormToken, MalformedFormToken

PREFIX = "F1"
MAC_CHARS = 16
MAX_FORM_ID = 40  # what fits a version-4 QR with medium error correction
_FORM_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_FORM_ID}}}")
_MAC = re.compile(rf"[A-Z2-7]{{{MAC_CHARS}}}")


def _mac(form_id: str, key: bytes) -> str:
    digest = hmac.new(key, f"{PREFIX}.{form_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode("ascii")


def sign_form_token(form_id: str, key: bytes) -> str:
    """The token for `form_id` (printable ASCII without spaces, at most 40 characters)."""
    if not _FORM_ID.fullmatch(form_id):
        raise ValueError(
            f"form_id must be 1–{MAX_FORM_ID} printable ASCII characters without spaces"
        )
    if not key:
        raise ValueError("the form token key must not be empty")
    return f"{PREFIX}.{form_id}.{_mac(form_id, key)}"


def verify_form_token(token: str, key: bytes) -> str:
    """The form_id a token binds; `MalformedFormToken` or `ForgedFormToken` otherwise."""
    prefix, _, rest = token.partition(".")
    form_id, _, mac = rest.rpartition(".")
    if prefix != PREFIX or not _FORM_ID.fullmatch(form_id) or not _MAC.fullmatch(mac):
        raise MalformedFormToken("not a form token")
    if not hmac.compare_digest(mac, _mac(form_id, key)):
        raise ForgedFormToken("the form token's signature does not match")
    return form_id

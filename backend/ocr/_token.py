"""The signed form token carried in the QR code: `F1.<form_id>.<mac>`.

The QR code carries it inside a link, `{public base URL}/m/f/{token}`, so a phone's camera
or a messaging app that scans the form opens the service's page for it instead of showing
meaningless text. Wherever a form code is read, the bare token and the link are both
accepted (`token_from_code`): the token is signed, so the link's host does not matter.

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
LINK_PATH = "/m/f/"
# Any http(s) origin and path prefix, then /m/f/<token>, an optional trailing slash, query or
# fragment (a messaging app may add its own parameters).
_LINK = re.compile(r"https?://[^/?#\s]+(?:/[^?#\s]*)?/m/f/([^/?#\s]+)/?(?:[?#]\S*)?", re.I)


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


def form_link(base_url: str, token: str) -> str:
    """The link the QR code carries: `{base_url}/m/f/{token}`."""
    return f"{base_url.rstrip('/')}{LINK_PATH}{token}"


def token_from_code(code: str) -> str:
    """The token in a scanned or typed form code: the bare token, or the one a form link
    carries (`form_link`, from any host). Anything else comes back as it is, for
    `verify_form_token` to refuse."""
    code = code.strip()
    link = _LINK.fullmatch(code)
    return link[1] if link else code


def verify_form_token(code: str, key: bytes) -> str:
    """The form_id a token (bare, or inside a form link) binds; `MalformedFormToken` or
    `ForgedFormToken` otherwise."""
    token = token_from_code(code)
    prefix, _, rest = token.partition(".")
    form_id, _, mac = rest.rpartition(".")
    if prefix != PREFIX or not _FORM_ID.fullmatch(form_id) or not _MAC.fullmatch(mac):
        raise MalformedFormToken("not a form token")
    if not hmac.compare_digest(mac, _mac(form_id, key)):
        raise ForgedFormToken("the form token's signature does not match")
    return form_id

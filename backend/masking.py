"""The one masking rule for sensitive values: every response, report, list, export,
notification and log line that carries an ID number, a phone, an address or a registry number
shows it through these functions, never in full (a registrar and above may reveal one value,
audited: `backend.records.reads.reveal`).

Which fields are sensitive is the field catalog's `sensitive` flag
(`backend.records.catalog`); `mask(field, value)` picks the mask by the field's type. This
module is pure (no domain import) so that channels and logging may use it too.

The masks are chosen so that fields shown *together* cannot undo them. A resident ID number is
region (6) + birth date (8) + sequence (3, the last one odd for a boy) + check digit. Lists
show the birth date and the sex beside the ID, and the region is the school's: so the mask
shows the region and nothing of the last four characters — each shown digit of the tail would
divide the candidates by ten (the old mask, region + last four, left exactly one). What stays
hidden is 100 × 5 sequences, each with its own check digit: 500 valid ID numbers fit what a
list shows (`tests/records/test_masking.py` counts them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

STARS = "****"

# The keys whose values are sensitive wherever they appear (a record's fields, an audit row's
# before and after): the catalog's sensitive fields (`backend.records.catalog`, a test keeps the
# two in step), a guardian's by the same names after `guardian<n>_`, and the registry number
# (G + the ID number). `backend/accounts/audit_seal.py` seals these in the audit log.
SENSITIVE_KEYS = frozenset(
    {"id_number", "phone", "household_address", "current_address", "address", "registry_number"}
)
_GUARDIAN_KEY = re.compile(r"^guardian\d+_")


def is_sensitive_key(name: str) -> bool:
    """Is a value stored under this key (a field code, a JSON key) sensitive?"""
    return _GUARDIAN_KEY.sub("", name) in SENSITIVE_KEYS


_RESIDENT_ID = re.compile(r"^(?:\d{17}[\dXx]|\d{15})$")
# An address keeps its province and city (at most), never the county, street or building.
_ADDRESS_HEAD = re.compile(
    r"^(?:[^\d\s省市区县盟路街道号村镇乡]{1,7}?(?:省|自治区|特别行政区))?"
    r"(?:[^\d\s省市区县盟路街道号村镇乡]{1,7}?(?:市|自治州|州(?!市)|盟|地区))?"
)


class MaskedField(Protocol):
    """What a mask needs to know of a catalog field (`backend.records.catalog.Field`)."""

    @property
    def sensitive(self) -> bool: ...

    @property
    def type(self) -> str: ...


def mask_push_token(token: str) -> str:
    """A device's push token or endpoint: enough to tell one's devices apart in a list, never
    enough to push to one (an endpoint URL keeps only its scheme and host)."""
    if token.startswith(("https://", "http://")):
        parts = urlsplit(token)  # the host and port alone: no user, password, query or fragment
        return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/…"
    return f"…{token[-6:]}" if len(token) > 12 else "…"


def mask_id_number(value: str | None) -> str | None:
    """A resident ID keeps its 6-digit region only; any other document number its first
    characters (at most a third of it)."""
    if not value:
        return value
    if _RESIDENT_ID.match(value):
        return value[:6] + "*" * (len(value) - 6)
    keep = min(2, len(value) // 3)
    return value[:keep] + "*" * (len(value) - keep)


def mask_registry_number(value: str) -> str:
    """G + ID number is masked like the ID number; J + school + birth date + 4 digits keeps
    the school part only."""
    if value.startswith("G"):
        return "G" + (mask_id_number(value[1:]) or "")
    if value.startswith("J") and len(value) > 7:
        return value[:7] + "*" * (len(value) - 7)
    return mask_id_number(value) or ""


def mask_phone(value: str | None) -> str | None:
    """A mobile number as 138****5678 (10⁴ candidates); short numbers keep at most their last
    two digits."""
    if not value:
        return value
    if len(value) <= 4:
        return "*" * len(value)
    if len(value) <= 7:
        return "*" * (len(value) - 2) + value[-2:]
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_address(value: str | None) -> str | None:
    """The province and city at most (浙江省杭州市****); the rest, or all of an address that
    does not start with them, is hidden."""
    if not value:
        return value
    head = _ADDRESS_HEAD.match(value)
    shown = head.group(0) if head else ""
    return shown + STARS


def mask(field: MaskedField | None, value: str | None) -> str | None:
    """A value of a catalog field as any response shows it. An unknown field (None) is
    treated as sensitive: a value nobody has classified is hidden."""
    if value is None or value == "":
        return value
    if field is not None and not field.sensitive:
        return value
    kind = field.type if field is not None else ""
    if kind == "id_number":
        return mask_id_number(value)
    if kind == "phone":
        return mask_phone(value)
    if kind == "text":
        return mask_address(value)
    return STARS


def mask_values(
    catalog: Mapping[str, MaskedField], values: Mapping[str, str | None]
) -> dict[str, str | None]:
    """A whole record (or report, export row, notification's data) masked field by field."""
    return {code: mask(catalog.get(code), value) for code, value in values.items()}


def is_masked(field: MaskedField | None, value: str | None) -> bool:
    return value is not None and value != "" and (field is None or field.sensitive)


# Inside free text (an imported list's description, as a clerk typed it): an ID number (18
# or 15 characters) and a mainland mobile number (also as 139 1234 5678 or 139-1234-5678) are
# masked by the same rule as the fields themselves; any other run of 11 digits or more (+86
# and a phone, an ID number with a digit missing or one too many) as a document number, so
# that no tail of an ID number shows. The audit log seals the same runs (accounts/audit_seal.py).
IN_TEXT = re.compile(
    r"(?<![0-9])(\d{17}[0-9Xx]|\d{15})(?![0-9Xx])"
    r"|(?<![0-9])(1\d{2}[ -]?\d{4}[ -]?\d{4})(?![0-9])"
    r"|(?<![0-9])(\d{11,}[Xx]?)"
)


def mask_text(text: str) -> str:
    """Free text with every ID number and phone inside it masked (see `IN_TEXT`)."""

    def one(match: re.Match[str]) -> str:
        if match.group(1):
            return mask_id_number(match.group(1)) or ""
        if match.group(2):
            return mask_phone(re.sub(r"[ -]", "", match.group(2))) or ""
        return mask_id_number(match.group(3)) or ""

    return IN_TEXT.sub(one, text)

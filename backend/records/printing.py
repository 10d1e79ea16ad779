"""The confirmation form as the records domain prints it: the catalog's printed fields turned
into the form layout, values into printed text, and the codes a form carries.

One place for both the server and `python -m backend.ocr`, so what is printed and what is
read back come from the same catalog and the same layout.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from functools import lru_cache

from backend.ocr import FormTokenError, Layout, PrintedField, build_layout, verify_form_token
from backend.records.catalog import PRINTED_FIELDS, YES_NO, Field, FieldType

_DIGIT_TYPES = {FieldType.id_number, FieldType.date, FieldType.year_month, FieldType.phone}
# No 0/O, 1/I/L: a parent types this from paper.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def printed_field(field: Field) -> PrintedField:
    """A catalog field as the form layout sees it."""
    return PrintedField(
        code=field.code,
        label=field.label,
        read_kind="digits" if field.type in _DIGIT_TYPES else "text",
        wide=field.type is FieldType.text and field.max_length >= 120,
        # Every text a closed choice can print, so the reader can match against them.
        options=tuple(
            YES_NO.values() if field.type is FieldType.yes_no else field.options.values()
        ),
    )


def catalog_fields() -> tuple[PrintedField, ...]:
    return tuple(printed_field(f) for f in PRINTED_FIELDS)


SCREEN_DPI = 200  # what photos are read against, and the PNG of one form
PRINT_DPI = 300  # the printable PDF: bilevel pages, ≈ 35 KB each


@lru_cache(maxsize=2)
def form_layout(dpi: int = SCREEN_DPI) -> Layout:
    """The one layout; positions are in millimetres, so a 300-dpi print reads against the
    200-dpi layout."""
    return build_layout(catalog_fields(), dpi=dpi)


def printed_values(record: Mapping[str, str | None]) -> dict[str, str]:
    """Stored values → the text the form prints (choices by label)."""
    return {f.code: f.label_of(record.get(f.code)) for f in PRINTED_FIELDS}


def snapshot_of(record: Mapping[str, str]) -> dict[str, str]:
    """The stored values a form prints, kept with the issued form."""
    return {f.code: record[f.code] for f in PRINTED_FIELDS if record.get(f.code)}


def new_form_id() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))


def registration_code(form_id: str, key: bytes) -> str:
    """The parent's code printed on the form, derived from the form id with the server's key
    (so it is never stored in the clear, yet every reprint shows the same code)."""
    digest = hmac.new(key, f"registration:{form_id}".encode(), hashlib.sha256).digest()
    number = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(8):
        number, index = divmod(number, len(CODE_ALPHABET))
        chars.append(CODE_ALPHABET[index])
    return "".join(chars[:4]) + "-" + "".join(chars[4:])


def registration_code_of(code: str, key: bytes) -> str:
    """The registration code a parent gave: as typed, or the one of the form whose QR code the
    phone scanned (the bare token or the link; both are printed on the same sheet as the
    code). A text that is neither comes back as it is, to be refused as a wrong code."""
    try:
        form_id = verify_form_token(code, key)
    except FormTokenError:
        return code
    return registration_code(form_id, key)


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def code_hash(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()

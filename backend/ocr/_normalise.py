"""Text comparison that ignores what printing and reading cannot keep: width, spacing, case
of a final X, dash shapes."""

from __future__ import annotations

import re
import unicodedata

from ._layout import ReadKind

_SPACE = re.compile(r"\s+")
_DASHES = str.maketrans(
    {"‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-", "一": "-"}
)
# In a digits field these letters can only be misread digits (OCR without a whitelist).
_DIGIT_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "I": "1", "l": "1", "|": "1", "x": "X"})


def normalise(text: str | None, kind: ReadKind) -> str:
    """`text` in the form compared: NFKC (full width to half width), no white space; for
    digits also one dash shape, lookalike letters as digits and an upper-case X."""
    if not text:
        return ""
    text = _SPACE.sub("", unicodedata.normalize("NFKC", text))
    if kind == "digits":
        text = text.translate(_DASHES).translate(_DIGIT_LOOKALIKES).upper()
    return text


def matches(read: str | None, expected: str | None, kind: ReadKind) -> bool:
    """Whether a reading (or a stored value's printed text) equals the expected text."""
    return normalise(read, kind) == normalise(expected, kind)

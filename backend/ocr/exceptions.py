"""Errors raised by `backend.ocr`.

Reading a photo never raises for a bad photo: a blurred, dark or foreign photo is an
answer (a `CheckReport` verdict), not an error. These exceptions are for misuse and for
a machine that lacks what the package needs::

    OcrError                      base class of everything raised here
    ├── FontNotFound              no CJK font file on this machine
    ├── LayoutError               the fields do not fit on one A4 page, or a bad field
    ├── EngineUnavailable         Tesseract or its chi_sim data is missing
    └── FormTokenError            a form token that does not verify
        ├── MalformedFormToken    not a token of ours (wrong shape or version)
        └── ForgedFormToken       our shape, but the signature does not match
"""

from __future__ import annotations


class OcrError(Exception):
    """Base class of every error raised by `backend.ocr`."""


class FontNotFound(OcrError):
    """No CJK font file was found (install Debian's fonts-wqy-microhei)."""


class LayoutError(OcrError):
    """The printed fields cannot be laid out on one page, or a field is invalid."""


class EngineUnavailable(OcrError):
    """An OCR engine or its language data is missing on this machine."""


class FormTokenError(OcrError):
    """A form token did not verify."""


class MalformedFormToken(FormTokenError):
    """The text is not a form token of ours (wrong shape or version)."""


class ForgedFormToken(FormTokenError):
    """The token has our shape but its signature does not match: forged or edited."""

"""The confirmation form as pure image code: its layout (data), the renderer, the signed
form token, and the reader that checks a phone photo of the signed form.

No web and no database here; everything is synchronous. Typical use::

    layout = build_layout(fields)                      # once; immutable, share it
    token = sign_form_token(form_id, key)
    header = FormHeader(school, class_name, code, token, public_base_url=base_url)
    page = render_form(layout, printed, header)        # the QR: form_link(base_url, token)
    pdf = render_pdf([page, ...])

    report = check_photo(photo_bytes, layout, printed, key, expected_form_id=form_id)
    report.verdict  # retake, not_this_form, differs, corrections_written, unsigned, undated,
    #               matches

A form printed by another system (no QR code, no corner squares) is read by its labels:
pass `other_systems=ForeignForms(fields, names, LayoutMemory())` to `check_photo`, or call
`check_foreign_photo`; `report.layout_way` says whether its layout was already learned.

`backend.ocr.synth` makes synthetic phone photos for tests.
"""

from ._check import check_photo
from ._foreign import ForeignForms, check_foreign_photo
from ._layout import Box, FieldCells, Layout, PrintedField, ReadKind, build_layout
from ._memory import LayoutMemory, LearnedLayout
from ._normalise import matches, normalise
from ._ocr import warm_up
from ._render import FormHeader, append_pdf_page, render_form, render_pdf
from ._report import (
    DEFAULT_THRESHOLDS,
    RETAKE_MESSAGES,
    CheckReport,
    FieldReading,
    Quality,
    RetakeReason,
    Thresholds,
    Verdict,
)
from ._token import form_link, sign_form_token, token_from_code, verify_form_token
from .exceptions import (
    EngineUnavailable,
    FontNotFound,
    ForgedFormToken,
    FormTokenError,
    LayoutError,
    MalformedFormToken,
    OcrError,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "RETAKE_MESSAGES",
    "Box",
    "CheckReport",
    "EngineUnavailable",
    "FieldCells",
    "FieldReading",
    "FontNotFound",
    "ForeignForms",
    "ForgedFormToken",
    "FormHeader",
    "FormTokenError",
    "Layout",
    "LayoutError",
    "LayoutMemory",
    "LearnedLayout",
    "MalformedFormToken",
    "OcrError",
    "PrintedField",
    "Quality",
    "ReadKind",
    "RetakeReason",
    "Thresholds",
    "Verdict",
    "append_pdf_page",
    "build_layout",
    "check_foreign_photo",
    "check_photo",
    "form_link",
    "matches",
    "normalise",
    "render_form",
    "render_pdf",
    "sign_form_token",
    "token_from_code",
    "verify_form_token",
    "warm_up",
]

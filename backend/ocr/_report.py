"""What a check answers: the verdict, its reasons and everything found on the way."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

TokenError = Literal["malformed", "forged"]
# How another system's form was mapped: its layout learned before, or its labels read now.
LayoutWay = Literal["learned", "read_by_labels"]


class Verdict(StrEnum):
    """One answer for the parent, by precedence: the first that applies wins.

    `undated` (signed, the date box empty) ranks just above `matches`: it is the only thing
    between the form and done, so it must not hide anything that asks more of the family or
    the school. A form with no signature is `unsigned`, whose message already asks for the
    signature and the date; printed values that differ, or corrections written, are answered
    first because they change what happens to the record (the school acts on them whether
    or not the date is there).
    """

    retake = "retake"
    not_this_form = "not_this_form"
    differs = "differs"
    corrections_written = "corrections_written"
    unsigned = "unsigned"
    undated = "undated"
    matches = "matches"


class RetakeReason(StrEnum):
    unreadable_image = "unreadable_image"
    too_dark = "too_dark"
    blurry = "blurry"
    page_not_visible = "page_not_visible"
    too_small = "too_small"
    unclear_fields = "unclear_fields"
    unclear_handwriting = "unclear_handwriting"


RETAKE_MESSAGES: Mapping[RetakeReason, str] = {
    RetakeReason.unreadable_image: "无法打开这张照片，请重新拍照上传（JPG 或 PNG）。",
    RetakeReason.too_dark: "照片太暗，请在光线充足的地方重新拍照。",
    RetakeReason.blurry: "照片模糊，请把手机拿稳、对准表格，等画面清晰后再拍。",
    RetakeReason.page_not_visible: (
        "没有拍全整张表格，请让四个角的黑色方块和右上角的二维码都在画面内，再拍一次。"
    ),
    RetakeReason.too_small: "表格在照片里太小，请靠近一些，让表格占满画面后再拍。",
    RetakeReason.unclear_fields: "有些信息看不清，请在光线充足处拿稳手机、对准表格重新拍照。",
    RetakeReason.unclear_handwriting: (
        "照片太暗或不够清晰，看不出“更正后信息”栏里有没有字迹。"
        "请在光线充足处拿稳手机、对准表格重新拍照。"
    ),
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Decision thresholds, measured on the benchmark (bench/ocr); see its report."""

    # Paper (90th percentile, 0–255) darker than this: nothing can be seen. Dimmer photos
    # are checked; their grain decides whether the handwriting can be (below).
    dark_paper: float = 30.0
    # Laplacian variance of the 1600-px copy: decides nothing alone; a page that cannot be
    # found in a photo below 4 × this is called blurred rather than cut off.
    sharpness_min: float = 25.0
    # Edge spread (σ, layout pixels) of the straightened markers beyond which nothing on
    # the page can be checked; below it, the cells themselves decide.
    blur_max_px: float = 3.25
    # The faintest pencil stroke must reach this multiple of the photo's handwriting level
    # (which stays above its paper noise), or the correction boxes cannot be decided.
    handwriting_margin: float = 1.05
    min_scale: float = 0.6  # photo pixels per layout pixel (page at ≥ 120 dpi)
    text_glyph_min: float = 0.85  # the worst Chinese glyph's correlation to verify a cell
    text_glyph_per_sigma: float = 0.05  # … raised by this per pixel of template blur σ > 1
    text_glyph_max: float = 0.92  # … up to this
    # On a photo soft enough (template σ ≥ 1.5) a cell verified below this is read by OCR
    # too; a reading that explains the cell better by text_differ_lead differs.
    text_glyph_sure: float = 0.95
    text_differ_lead: float = 0.02
    # A choice of at most this many options, on a photo softer than a sharp one, verifies
    # only if its expected option beats each other option by option_margin.
    rival_options_max: int = 4
    option_margin: float = 0.02
    digit_glyph_min: float = 0.75
    # How far a digit must beat every other digit on a sharp photo; divided by the square of
    # the templates' blur σ (a digit's strokes are finer than the blur, so what tells it
    # from its rivals fades about as σ²). A digit that differs trails its rival.
    digit_margin: float = 0.02
    extra_max: float = 0.002  # unexplained ink in a value cell
    # A reading that differs from the record must itself explain the cell, rendered and
    # compared like the expected text, if more loosely; otherwise the field is unclear.
    text_glyph_loose: float = 0.7
    digit_glyph_loose: float = 0.6
    # Dark share of an empty box (benchmark): 0.000 %; one faint pencil character ≥ 0.18 %;
    # written corrections ≥ 2 %, signatures ≥ 1.5 %.
    correction_ink: float = 0.0006
    signature_ink: float = 0.003
    date_ink: float = 0.002
    # Another system's form (no markers): the blur, in canvas pixels at 200 dpi, from the
    # spread of its table's rules, beyond which nothing on it can be checked.
    foreign_blur_max_px: float = 3.75
    # The recogniser's odds (natural log) by which the record's text may trail the best
    # reading and still count as what the cell says; a closed choice's best option, the same.
    foreign_verify_slack: float = 3.0
    foreign_option_slack: float = 8.0
    # … and by which it must trail for the cell to differ from the record (in between,
    # the field is unclear).
    foreign_differ_gap: float = 10.0
    # A reading that differs from the record is a difference only when read this surely
    # (mean character probability); otherwise the field is unclear.
    foreign_read_min: float = 0.8


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True, slots=True)
class FieldReading:
    """One printed value as read.

    method "verified": the expected text, rendered, matched the cell (no OCR ran).
    "options": the field is a closed choice; the option that best matches the cell.
    "ocr": what OCR read. "unsure": neither the expected text nor the reading explains
    the cell (the check then asks for a retake rather than claim a difference).
    "unread": not read at all (a form of another student); `text` is None.
    """

    text: str | None
    confidence: float
    match: bool
    method: Literal["verified", "options", "ocr", "unsure", "unread"]


@dataclass(frozen=True, slots=True)
class Quality:
    paper: float  # brightness of the paper, 0–255
    sharpness: float  # Laplacian variance of the 1600-px copy
    scale: float | None = None  # photo pixels per layout pixel, once the page is found
    blur_px: float | None = None  # σ of the markers' edges on the straightened page
    noise: float | None = None  # darkness that noise alone reaches on blank paper (ink map)
    ink_level: float | None = None  # darkness that counted as handwriting on this photo


@dataclass(frozen=True)
class CheckReport:
    verdict: Verdict
    message: str  # for the parent, in Chinese
    quality: Quality
    retake_reason: RetakeReason | None = None
    form_id: str | None = None  # from a verified token
    token_error: TokenError | None = None
    fields: Mapping[str, FieldReading] = field(default_factory=dict)
    corrections: Mapping[str, bytes] = field(default_factory=dict)  # code → PNG crop
    ink: Mapping[str, float] = field(default_factory=dict)  # codes, "signature", "date"
    signed: bool = False
    date_written: bool = False
    timings: Mapping[str, float] = field(default_factory=dict)  # wall seconds per stage
    cpu_timings: Mapping[str, float] = field(default_factory=dict)  # CPU seconds per stage
    seconds: float = 0.0
    # Another system's form: how its layout was mapped, and the layout's fingerprint.
    layout_way: LayoutWay | None = None
    layout_fingerprint: str | None = None

    @property
    def differing(self) -> tuple[str, ...]:
        return tuple(code for code, r in self.fields.items() if not r.match)

    def summary(self) -> dict[str, Any]:
        """The JSON the CLI prints (no crops); a form of another system's adds "layout"."""
        out: dict[str, Any] = {
            "verdict": self.verdict.value,
            "fields": {
                code: {
                    "text": r.text,
                    "match": r.match,
                    "confidence": round(r.confidence, 3),
                    "method": r.method,
                }
                for code, r in self.fields.items()
            },
            "corrections": list(self.corrections),
            "signed": self.signed,
            "date_written": self.date_written,
            "form_id": self.form_id,
            "token_error": self.token_error,
            "retake_reason": self.retake_reason.value if self.retake_reason else None,
            "message": self.message,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "seconds": round(self.seconds, 3),
        }
        if self.layout_way is not None:
            out["layout"] = {"way": self.layout_way, "fingerprint": self.layout_fingerprint}
        return out

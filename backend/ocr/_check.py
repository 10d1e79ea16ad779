"""Check a phone photo of a signed form: quality, page, token, printed values, ink."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Literal

import cv2
import numpy as np

from ._foreign import ForeignForms, check_foreign
from ._ink import (
    box_noise,
    crop_png,
    faint_stroke_level,
    handwriting_level,
    ink_share,
    local_noise,
    speck_px,
)
from ._layout import FieldCells, Layout
from ._locate import PageFound, locate_page, straighten
from ._normalise import matches
from ._ocr import read_chinese, read_digits
from ._photo import decode, marker_blur, quality_of, shrink
from ._report import (
    DEFAULT_THRESHOLDS,
    RETAKE_MESSAGES,
    CheckReport,
    FieldReading,
    Quality,
    RetakeReason,
    Thresholds,
    TokenError,
    Verdict,
)
from ._token import verify_form_token
from ._verify import INK_LEVEL, Verification, crop, ink_map, template_sigma, verify_value
from .exceptions import ForgedFormToken, MalformedFormToken


def _labels(layout: Layout, codes: list[str] | tuple[str, ...]) -> str:
    return "、".join(layout.cells(c).field.label for c in codes)


class _Clock:
    """Wall and CPU seconds (this thread's) per stage."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.cpu_last = time.thread_time()
        self.stages: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        self.stages[stage] = self.stages.get(stage, 0.0) + now - self.last
        self.cpu[stage] = self.cpu.get(stage, 0.0) + cpu - self.cpu_last
        self.last, self.cpu_last = now, cpu

    @property
    def total(self) -> float:
        return time.perf_counter() - self.start


def _retake(reason: RetakeReason, quality: Quality, clock: _Clock) -> CheckReport:
    return CheckReport(
        verdict=Verdict.retake,
        message=RETAKE_MESSAGES[reason],
        quality=quality,
        retake_reason=reason,
        timings=clock.stages,
        cpu_timings=clock.cpu,
        seconds=clock.total,
    )


def _read_field(
    ink: np.ndarray,
    ink_smooth: np.ndarray,
    layout: Layout,
    cells: FieldCells,
    expected: str,
    t: Thresholds,
    clock: _Clock,
    blur_px: float,
) -> tuple[FieldReading, tuple[int, int]]:
    kind = cells.field.read_kind
    digits = kind == "digits"
    # Blur makes every digit's template more like every other's, so the lead a digit must
    # have over its rivals shrinks with the templates' blur (it stays > 0: a printed digit
    # that differs still beats the expected one).
    sigma = template_sigma(blur_px)
    margin = t.digit_margin / sigma
    # ...while blurred Chinese glyphs grow alike (是 and 否 correlate 0.92 at σ 2.5), so
    # a text glyph must match the more closely the softer the photo.
    text_min = min(t.text_glyph_max, t.text_glyph_min + t.text_glyph_per_sigma * (sigma - 1))
    strict = (t.digit_glyph_min if digits else text_min, t.extra_max, margin)
    loose = (t.digit_glyph_loose if digits else t.text_glyph_loose, 2 * t.extra_max, 0.0)

    def compare(text: str) -> Verification:
        return verify_value(ink, ink_smooth, layout, cells, text, blur_px)

    first = compare(expected)
    clock.lap("verify")
    options = cells.field.options
    # A short choice on a soft photo: the expected option must also beat the others.
    rivals = bool(options) and sigma > 1.25 and len(options) <= t.rival_options_max
    if first.passes(*strict) and (
        not rivals
        or all(compare(o).score < first.score - t.option_margin for o in options if o != expected)
    ):
        return FieldReading(expected, first.score, True, "verified"), first.shift

    method: Literal["options", "ocr"]
    if options:
        # A closed choice: the option whose rendering matches best is what is printed.
        method = "options"
        compared = [(compare(o), o) for o in options if o != expected]
        compared.append((first, expected))
        best, text = max(compared, key=lambda vt: (vt[0].passes(*loose), vt[0].score))
        confidence = best.score
    else:
        method = "ocr"
        text, confidence = _ocr(ink, layout, cells, first.shift)
        best = compare(text) if not matches(text, expected, kind) else first
    clock.lap("ocr")
    if matches(text, expected, kind):
        return FieldReading(text, confidence, True, method), first.shift
    # Claim a difference only when the reading explains the cell better than the record's
    # text does: an OCR slip on a poor photo must not tell a parent the form is wrong.
    if best.passes(*loose) and (not first.passes(*loose) or best.score > first.score):
        return FieldReading(text, confidence, False, method), best.shift
    return FieldReading(text, confidence, False, "unsure"), first.shift


def _ocr(
    ink: np.ndarray, layout: Layout, cells: FieldCells, shift: tuple[int, int]
) -> tuple[str, float]:
    x0, y0, x1, y1 = cells.value_box
    dx, dy = shift
    m = layout.px(0.6)
    cell = np.ascontiguousarray(255 - crop(ink, x0 + m + dx, y0 + m + dy, x1 - m + dx, y1 - m + dy))
    if not np.any(cell <= 255 - INK_LEVEL):
        return "", 1.0
    if cells.field.read_kind == "digits":
        return read_digits(cell)
    return read_chinese(cell, min_gap=layout.px(0.5))


def check_photo(
    photo: bytes,
    layout: Layout,
    expected: Mapping[str, str],
    key: bytes,
    expected_form_id: str | None = None,
    *,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    other_systems: ForeignForms | None = None,
    other_expected: Mapping[str, str] | None = None,
) -> CheckReport:
    """Check a photo of a printed form against the values it should show.

    `expected` maps field codes to printed text (labels, as rendered); a code missing from
    it is expected empty. With `expected_form_id`, a photo of another form is
    `not_this_form`; without, the caller compares `report.form_id` itself. Synchronous,
    CPU-bound and thread-safe: run it off the event loop.

    With `other_systems`, a photo that carries no QR code of ours is read as a form printed
    by another system (`check_foreign`), against `other_expected` (default `expected`).
    """
    t = thresholds
    clock = _Clock()
    try:
        full = decode(photo)
    except ValueError:
        return _retake(RetakeReason.unreadable_image, Quality(0.0, 0.0), clock)
    small = shrink(full)
    clock.lap("decode")

    quality = quality_of(small)
    if quality.paper < t.dark_paper:
        return _retake(RetakeReason.too_dark, quality, clock)
    clock.lap("quality")
    # No global sharpness cut-off: a soft photo is sent back only if what matters on it
    # cannot be decided (the markers' blur, the printed cells, the handwriting below).

    found = locate_page(full, small, layout)
    clock.lap("locate")
    if not isinstance(found, PageFound) and found.reason == "qr" and other_systems is not None:
        return check_foreign(
            full, small, quality, other_systems, other_expected or expected, t, started=clock.start
        )
    if not isinstance(found, PageFound):
        # A page we cannot find in a soft photo is more likely blurred than cut off.
        soft = quality.sharpness < 4 * t.sharpness_min
        return _retake(
            RetakeReason.blurry if soft else RetakeReason.page_not_visible, quality, clock
        )
    quality = Quality(quality.paper, quality.sharpness, found.photo_px_per_layout_px)
    if found.photo_px_per_layout_px < t.min_scale:
        return _retake(RetakeReason.too_small, quality, clock)

    form_id, token_error = _verify_token(found.token, key)
    foreign = token_error is not None or (
        expected_form_id is not None and form_id != expected_form_id
    )

    page = straighten(full, found, layout)
    blur_px = marker_blur(page, layout)
    if blur_px > t.blur_max_px:
        quality = Quality(quality.paper, quality.sharpness, found.photo_px_per_layout_px, blur_px)
        return _retake(RetakeReason.blurry, quality, clock)
    ink = ink_map(page)
    ink_smooth = cv2.GaussianBlur(ink, (0, 0), 1.0)
    # Handwriting: the darkness that counts follows the blur (a faint stroke keeps the
    # same share of its peak) and stays above the grain around each box.
    tails = box_noise(ink_smooth, layout, blur_px)
    local = local_noise(tails, layout)
    noise = float(np.median(list(tails.values())))
    specks = speck_px(max(local.values()))
    levels = {code: handwriting_level(blur_px, n) for code, n in local.items()}
    level = handwriting_level(blur_px, noise)  # the signature and date boxes
    quality = Quality(
        quality.paper,
        quality.sharpness,
        found.photo_px_per_layout_px,
        blur_px,
        max(local.values()),
        max(levels.values()),
    )
    clock.lap("straighten")

    readings: dict[str, FieldReading] = {}
    shifts: dict[str, tuple[int, int]] = {}
    for cells in layout.fields:
        if foreign:
            # Another student's form: comparing it with this record would only list noise.
            readings[cells.code] = FieldReading(None, 0.0, False, "unread")
            continue
        readings[cells.code], shifts[cells.code] = _read_field(
            ink, ink_smooth, layout, cells, expected.get(cells.code, ""), t, clock, blur_px
        )

    def share(
        box: tuple[int, int, int, int], level: float, shift: tuple[int, int] = (0, 0)
    ) -> float:
        return ink_share(
            ink_smooth, layout, box, shift, level=level, blur_px=blur_px, speck_px=specks
        )

    shares = {
        cells.code: share(cells.correction_box, levels[cells.code], shifts.get(cells.code, (0, 0)))
        for cells in layout.fields
    }
    corrections = {
        code: crop_png(page, layout, layout.cells(code).correction_box)
        for code, share in shares.items()
        if share >= t.correction_ink
    }
    shares["signature"] = share(layout.signature_box, level)
    shares["date"] = share(layout.date_box, level)
    signed = shares["signature"] >= t.signature_ink
    # The date box is measured like the signature box: the same handwriting level, its
    # printed rules found and left out. A date is a few digits, so less ink than a name.
    dated = shares["date"] >= t.date_ink
    clock.lap("ink")

    verdict, message = _verdict(layout, readings, corrections, signed, dated, foreign, token_error)
    unclear = [code for code, r in readings.items() if r.method == "unsure"]
    retake_reason = RetakeReason.unclear_fields if unclear else None
    # Could the faintest pencil mark in each correction box be told from the grain around
    # it? Only matters when the answer rests on the handwriting: another student's form,
    # or a printed value that differs, is answered whatever the boxes hold.
    faint = faint_stroke_level(blur_px)
    undecided = [
        code
        for code, lv in levels.items()
        if faint < t.handwriting_margin * lv and code not in corrections
    ]
    if not unclear and undecided and verdict not in (Verdict.not_this_form, Verdict.differs):
        verdict, retake_reason = Verdict.retake, RetakeReason.unclear_handwriting
        message = (
            "照片太暗或不够清晰，看不出这些信息的“更正后信息”栏里有没有字迹："
            f"{_labels(layout, undecided)}。请在光线充足处拿稳手机、对准表格重新拍照。"
        )
    elif unclear:
        verdict = Verdict.retake
        labels = _labels(layout, unclear)
        message = (
            f"这些信息看不清或被涂改：{labels}。如需更正，请写在“更正后信息”栏，"
            "然后在光线充足处拿稳手机重新拍照。"
        )
    return CheckReport(
        verdict=verdict,
        message=message,
        quality=quality,
        retake_reason=retake_reason,
        form_id=form_id,
        token_error=token_error,
        fields=readings,
        corrections=corrections,
        ink=shares,
        signed=signed,
        date_written=dated,
        timings=clock.stages,
        cpu_timings=clock.cpu,
        seconds=clock.total,
    )


def _verify_token(token: str, key: bytes) -> tuple[str | None, TokenError | None]:
    """The form_id, or why the token is not ours. A forged or malformed token is
    not_this_form, not retake: the QR decoded (its own error correction makes a misread
    that still decodes all but impossible), so another photo of the same sheet would
    only give the same answer."""
    try:
        return verify_form_token(token, key), None
    except MalformedFormToken:
        return None, "malformed"
    except ForgedFormToken:
        return None, "forged"


def _verdict(
    layout: Layout,
    readings: Mapping[str, FieldReading],
    corrections: Mapping[str, bytes],
    signed: bool,
    dated: bool,
    foreign: bool,
    token_error: TokenError | None,
) -> tuple[Verdict, str]:
    differing = [code for code, r in readings.items() if not r.match]
    if foreign:
        if token_error:
            return Verdict.not_this_form, "照片上的二维码无法验证，请拍摄学校发放的原表。"
        return (
            Verdict.not_this_form,
            "这不是本学生的确认表（二维码不符），请拍摄发给您孩子的那一张。",
        )
    if differing:
        labels = _labels(layout, differing)
        return Verdict.differs, f"表上打印的信息与学籍记录不一致：{labels}。请联系班主任。"
    if corrections:
        labels = _labels(layout, list(corrections))
        return (
            Verdict.corrections_written,
            f"看到您在“更正后信息”栏填写了：{labels}。学校会核对后录入。",
        )
    if not signed:
        return Verdict.unsigned, "表格还没有签名，请在“家长签名”处签名后重新拍照上传。"
    if not dated:
        return (
            Verdict.undated,
            "表格已签名，但还没有填写日期，请在“日期”栏写上签字日期后重新拍照上传。",
        )
    return Verdict.matches, "表上信息与学籍记录一致，已签名，核对完成。"

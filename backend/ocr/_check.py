"""Check a phone photo of a signed form: quality, page, token, printed values, ink."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from difflib import SequenceMatcher
from typing import Literal

import cv2
import numpy as np

from ._foreign import ForeignForms, check_foreign
from ._ink import (
    LINE_KEEP,
    LINE_PX,
    along_strokes,
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


# The smoothing (σ, layout pixels) of the second ink map, beside the usual one's σ 1, made
# only for a photo where the first cannot decide something: grain that hides the faintest
# pencil stroke, a printed cell that neither verifies nor reads. The grain falls as the
# smoothing grows; a stroke, a line, keeps more of its darkness. (σ 3 found structure
# that is no grain — JPEG blocks and shadow edges in dim corners — as handwriting.)
SMOOTHER = 2.0
# On the line map, grain that crosses the level does so in streaks up to about 40 pixels
# (a dim, shaded 12-MP photo); a faint pencil stroke's run is longer. Smaller are dropped.
LINE_SPECKS = 40


class _Smoother:
    """The ink map smoothed by SMOOTHER in all, made on first use."""

    def __init__(self, ink_smooth: np.ndarray) -> None:
        self._from: np.ndarray | None = ink_smooth
        self._map: np.ndarray | None = None

    def __call__(self) -> np.ndarray:
        if self._map is None:
            assert self._from is not None
            extra = float(np.sqrt(SMOOTHER * SMOOTHER - 1.0))
            self._map = cv2.GaussianBlur(self._from, (0, 0), extra)
            self._from = None
        return self._map


def _strict(
    t: Thresholds, digits: bool, blur_px: float
) -> tuple[float, tuple[float, float, float]]:
    """The templates' σ at this blur, and what a verified cell must reach: its worst glyph's
    correlation, its unexplained ink, and (digits) its worst digit's lead over a rival."""
    # Blur makes every digit's template more like every other's, so the lead a digit must
    # have over its rivals shrinks with the square of the templates' blur (it stays > 0: a
    # printed digit that differs still beats the expected one).
    sigma = template_sigma(blur_px)
    margin = t.digit_margin / (sigma * sigma)
    # ...while blurred Chinese glyphs grow alike (是 and 否 correlate 0.92 at σ 2.5), so
    # a text glyph must match the more closely the softer the photo.
    text_min = min(t.text_glyph_max, t.text_glyph_min + t.text_glyph_per_sigma * (sigma - 1))
    return sigma, (t.digit_glyph_min if digits else text_min, t.extra_max, margin)


@dataclass(frozen=True, slots=True)
class _Hand:
    """How handwriting is measured on this photo."""

    map: np.ndarray  # the ink map, smoothed by `smoothing`
    smoothing: float
    spread: float  # the blur (σ) a printed rule has on that map, the photo's and the map's
    levels: dict[str, float]  # correction boxes: the darkness that counts as handwriting
    level: float  # the signature and date boxes
    local: dict[str, float]  # the grain around each correction box
    specks: int  # dark specks this small are grain
    undecided: list[str]  # boxes where the faintest pencil stroke is lost in the grain


def _handwriting(
    ink_smooth: np.ndarray,
    layout: Layout,
    blur_px: float,
    t: Thresholds,
    smoothing: float = 1.0,
    grain: float | None = None,
    keep: float = 1.0,
) -> _Hand:
    """The darkness that counts as handwriting follows the blur (a faint stroke keeps the
    same share of its peak) and stays above the grain around each box. `grain`: the
    worst grain around a box at smoothing 1, which says whether specks are dropped;
    `keep`: the share of a stroke's darkness the map keeps beyond blur and smoothing."""
    spread = float(np.sqrt(blur_px * blur_px + smoothing * smoothing - 1.0))
    tails = box_noise(ink_smooth, layout, spread)
    local = local_noise(tails, layout)
    noise = float(np.median(list(tails.values())))
    levels = {code: handwriting_level(blur_px, n, smoothing, keep) for code, n in local.items()}
    faint = faint_stroke_level(blur_px, smoothing, keep)
    return _Hand(
        map=ink_smooth,
        smoothing=smoothing,
        spread=spread,
        levels=levels,
        level=handwriting_level(blur_px, noise, smoothing),
        local=local,
        # A speck's area grows with the square of the smoothing.
        specks=round(speck_px(max(local.values()) if grain is None else grain) * smoothing**2),
        undecided=[code for code, lv in levels.items() if faint < t.handwriting_margin * lv],
    )


def _steadier_hand(
    hand: _Hand,
    full: np.ndarray,
    found: PageFound,
    layout: Layout,
    blur_px: float,
    t: Thresholds,
    smoother: _Smoother,
) -> _Hand:
    """Grain hides the faintest pencil stroke on the usual map (`hand.undecided`): the
    measure, of those that decide the most boxes, from the smoother map, then from the
    page straightened from the photo's averaged pixels (where the photo has more pixels
    than the layout, its grain averages out while a stroke keeps its darkness), on its
    usual and its smoother map. Made one by one, only as long as boxes stay undecided."""
    grain = max(hand.local.values())

    def better(candidate: _Hand) -> _Hand:
        return candidate if len(candidate.undecided) < len(hand.undecided) else hand

    sampled = hand.map
    hand = better(_handwriting(smoother(), layout, blur_px, t, SMOOTHER, grain))
    averaged: np.ndarray | None = None
    if hand.undecided and found.photo_px_per_layout_px > 1.0:
        averaged = cv2.GaussianBlur(
            ink_map(straighten(full, found, layout, averaged=True)), (0, 0), 1.0
        )
        # The grain left on the averaged page is smoother, so it crosses the level in
        # larger specks (up to 16 pixels where the sampled page's reach 10; a faint pencil
        # stroke, 30 and more): twice the specks are dropped.
        on_averaged = _handwriting(averaged, layout, blur_px, t)
        on_averaged = replace(on_averaged, specks=2 * on_averaged.specks)
        hand = better(on_averaged)
        if hand.undecided:
            smoother_averaged = _handwriting(
                _Smoother(averaged)(),
                layout,
                blur_px,
                t,
                SMOOTHER,
                max(on_averaged.local.values()),
            )
            hand = better(replace(smoother_averaged, specks=2 * smoother_averaged.specks))
    if hand.undecided:
        # Still lost in the grain: look along the strokes, as a reader's eye does. The
        # grain is averaged over a short line, a stroke keeps its darkness along it.
        lines = _handwriting(
            along_strokes(sampled if averaged is None else averaged),
            layout,
            blur_px,
            t,
            keep=LINE_KEEP,
        )
        # A line across a printed rule carries the rule's darkness up to half a line
        # from it: the rules are kept that much further out (3σ of the spread).
        lines = replace(lines, spread=lines.spread + LINE_PX / 6, specks=LINE_SPECKS)
        hand = better(lines)
    return hand


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
    smoother: _Smoother,
) -> tuple[FieldReading, tuple[int, int]]:
    kind = cells.field.read_kind
    digits = kind == "digits"
    loose = (t.digit_glyph_loose if digits else t.text_glyph_loose, 2 * t.extra_max, 0.0)
    options = cells.field.options

    def compare(text: str, on: np.ndarray = ink_smooth, blur: float = blur_px) -> Verification:
        return verify_value(ink, on, layout, cells, text, blur)

    def verified(on: np.ndarray, blur: float, v: Verification | None = None) -> Verification | None:
        """The expected text's verification on `on` if it passes (`v`: already made)."""
        sigma, strict = _strict(t, digits, blur)
        v = v or compare(expected, on, blur)
        # A short choice on a soft photo: the expected option must also beat the others.
        rivals = bool(options) and sigma > 1.25 and len(options) <= t.rival_options_max
        if v.passes(*strict) and (
            not rivals
            or all(
                compare(o, on, blur).score < v.score - t.option_margin
                for o in options
                if o != expected
            )
        ):
            return v
        return None

    def read_as(text: str) -> tuple[Verification, str]:
        """A reading other than the record's, compared with the cell: as read, or (OCR
        drops characters on a soft photo) with the record's characters it skipped put
        back, whichever explains the cell better."""
        tried = [(compare(c), c) for c in dict.fromkeys((text, _with_skipped(expected, text)))]
        return max(tried, key=lambda vc: vc[0].score)

    first = compare(expected)
    clock.lap("verify")
    if (v := verified(ink_smooth, blur_px, first)) is not None:
        if digits or options or v.score >= t.text_glyph_sure or template_sigma(blur_px) < 1.5:
            return FieldReading(expected, v.score, True, "verified"), v.shift
        # Soft enough that Chinese glyphs grow alike (张 passed for a printed 春 at 0.93,
        # σ 2.5): OCR too, and a reading that explains the cell clearly better differs.
        text, confidence = _ocr(ink, layout, cells, v.shift)
        clock.lap("ocr")
        if text and not matches(text, expected, kind):
            other, text = read_as(text)
            if other.passes(*_strict(t, digits, blur_px)[1]) and (
                other.score > v.score + t.text_differ_lead
            ):
                return FieldReading(text, confidence, False, "ocr"), other.shift
        return FieldReading(expected, v.score, True, "verified"), v.shift

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
        if matches(text, expected, kind):
            best = first
        else:
            best, text = read_as(text)
    clock.lap("ocr")
    if matches(text, expected, kind):
        return FieldReading(text, confidence, True, method), first.shift
    # Claim a difference only when the reading explains the cell better than the record's
    # text does: an OCR slip on a poor photo must not tell a parent the form is wrong.
    # An empty reading (nothing dark enough for OCR: pale toner in dim light) explains the
    # cell only if the record's text does not, even loosely: its score of 1 means no glyph
    # was compared, not that the cell is blank.
    explains = best.passes(*loose) and (
        not first.passes(*loose) or (bool(text) and best.score > first.score)
    )
    if explains:
        return FieldReading(text, confidence, False, method), best.shift
    # Neither: on a grainy or pale photo the glyphs may still show on the smoother map,
    # against templates as soft (the blur that gives them the map's σ in all).
    if expected:
        again = float(np.sqrt(blur_px * blur_px + SMOOTHER * SMOOTHER - 1.0))
        if (v := verified(smoother(), again)) is not None:
            clock.lap("verify")
            return FieldReading(expected, v.score, True, "verified"), v.shift
    return FieldReading(text, confidence, False, "unsure"), first.shift


def _with_skipped(expected: str, reading: str) -> str:
    """`reading` with the characters of `expected` it has nothing for put back."""
    if not reading:
        return reading
    out = []
    matcher = SequenceMatcher(None, expected, reading, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        out.append(expected[a0:a1] if op == "delete" else reading[b0:b1])
    return "".join(out)


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
    smoother = _Smoother(ink_smooth)
    hand = _handwriting(ink_smooth, layout, blur_px, t)
    if hand.undecided:
        hand = _steadier_hand(hand, full, found, layout, blur_px, t, smoother)
    quality = Quality(
        quality.paper,
        quality.sharpness,
        found.photo_px_per_layout_px,
        blur_px,
        max(hand.local.values()),
        max(hand.levels.values()),
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
            ink,
            ink_smooth,
            layout,
            cells,
            expected.get(cells.code, ""),
            t,
            clock,
            blur_px,
            smoother,
        )

    def share(
        box: tuple[int, int, int, int], level: float, shift: tuple[int, int] = (0, 0)
    ) -> float:
        return ink_share(
            hand.map, layout, box, shift, level=level, blur_px=hand.spread, speck_px=hand.specks
        )

    shares = {
        cells.code: share(
            cells.correction_box, hand.levels[cells.code], shifts.get(cells.code, (0, 0))
        )
        for cells in layout.fields
    }
    corrections = {
        code: crop_png(page, layout, layout.cells(code).correction_box)
        for code, share in shares.items()
        if share >= t.correction_ink
    }
    shares["signature"] = share(layout.signature_box, hand.level)
    shares["date"] = share(layout.date_box, hand.level)
    signed = shares["signature"] >= t.signature_ink
    # The date box is measured like the signature box: the same handwriting level, its
    # printed rules found and left out. A date is a few digits, so less ink than a name.
    dated = shares["date"] >= t.date_ink
    clock.lap("ink")

    verdict, message = _verdict(layout, readings, corrections, signed, dated, foreign, token_error)
    retake_reason = None
    # Another student's form, or a printed value that surely differs, is answered whatever
    # the correction boxes hold: the family is sent to the teacher either way. A value that
    # differs is answered even beside a field that could not be made out, unless the photo
    # is also too grainy to decide the boxes: there a reading that differs is suspect too.
    # Otherwise a field neither verified nor read surely, or a correction box where the
    # faintest pencil mark could not be told from the grain, means the answer cannot be
    # given: a retake, naming what could not be seen.
    unclear = [code for code, r in readings.items() if r.method == "unsure"]
    undecided = [code for code in hand.undecided if code not in corrections]
    if verdict is Verdict.not_this_form or (
        verdict is Verdict.differs and not (unclear and undecided)
    ):
        pass
    elif unclear:
        verdict, retake_reason = Verdict.retake, RetakeReason.unclear_fields
        labels = _labels(layout, unclear)
        message = (
            f"这些信息看不清或被涂改：{labels}。如需更正，请写在“更正后信息”栏，"
            "然后在光线充足处拿稳手机重新拍照。"
        )
    elif undecided:
        verdict, retake_reason = Verdict.retake, RetakeReason.unclear_handwriting
        message = (
            "照片太暗或不够清晰，看不出这些信息的“更正后信息”栏里有没有字迹："
            f"{_labels(layout, undecided)}。请在光线充足处拿稳手机、对准表格重新拍照。"
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
    # A field read unsure is not a difference: the caller asks for a retake for it.
    differing = [code for code, r in readings.items() if not r.match and r.method != "unsure"]
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

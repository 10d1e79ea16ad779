"""Check a photo of a form printed by another system (no QR code, no corner squares): the
sheet and its table from the photo itself, the fields by their labels, the same report as
for our own forms.

    forms = ForeignForms(fields, names, LayoutMemory())
    report = check_foreign_photo(photo_bytes, forms, expected)

The printed values are read by OCR (we did not print them, so there is nothing to verify
by rendering); a field the form does not print is not checked. A layout read well once is
remembered (`LayoutMemory`), and its next photos skip reading the label column.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from ._ctc import cell_odds
from ._ink import faint_stroke_level, handwriting_level, ink_share, speck_px
from ._labels import DATE_WORDS, SIGNATURE_WORDS, LabelMatcher, Role, clean, role_of
from ._layout import Box, PrintedField, build_layout
from ._memory import CellRef, FieldMap, LayoutMemory, LearnedLayout, columns, fingerprint
from ._normalise import matches, normalise
from ._photo import decode, quality_of, shrink
from ._report import (
    DEFAULT_THRESHOLDS,
    RETAKE_MESSAGES,
    CheckReport,
    FieldReading,
    LayoutWay,
    Quality,
    RetakeReason,
    Thresholds,
    Verdict,
)
from ._table import (
    CANVAS,
    DPI,
    Sheet,
    Table,
    find_sheet,
    find_table,
    mm,
    page_ink,
    rule_blur,
    sheet_transform,
    straighten_sheet,
    table_corners,
)
from ._verify import crop

# The canvas at 200 dpi, as the ink helpers see a page: they only need its scale.
_CANVAS = build_layout((), dpi=DPI)
SHARP_SPREAD = 1.2  # rule_blur() of a sharp photo (a printed rule's own width and smoothing)
NOT_VISIBLE = "没有拍全整张表格，请让整张纸（包括签名和日期处）都在画面内，平放拍摄，再拍一次。"
BLANK_INK = 55  # a cell whose darkest ink stays below this (ink map) holds no text
MIN_FIELDS = 3  # fewer labels recognised: upside down, or not a confirmation form
ANCHORS = ("id_number", "name")  # read on every photo of a learned layout, to be sure


@dataclass(frozen=True)
class ForeignForms:
    """What reading other systems' forms needs: the catalog's fields as printed, every
    name a form may give each of them (code → labels), and the layouts learned so far."""

    fields: tuple[PrintedField, ...]
    names: Mapping[str, tuple[str, ...]]
    memory: LayoutMemory

    def matcher(self) -> LabelMatcher:
        return _matcher(self)


_matchers: dict[int, LabelMatcher] = {}


def _matcher(forms: ForeignForms) -> LabelMatcher:
    key = id(forms.names)
    if key not in _matchers:
        _matchers[key] = LabelMatcher(forms.names)
    return _matchers[key]


class _Clock:
    def __init__(self, started: float | None = None) -> None:
        self.start = started or time.perf_counter()
        self.last = time.perf_counter()
        self.cpu_last = time.thread_time()
        self.stages: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        self.stages[stage] = self.stages.get(stage, 0.0) + now - self.last
        self.cpu[stage] = self.cpu.get(stage, 0.0) + cpu - self.cpu_last
        self.last, self.cpu_last = now, cpu


def _retake(
    reason: RetakeReason, quality: Quality, clock: _Clock, message: str | None = None
) -> CheckReport:
    return CheckReport(
        verdict=Verdict.retake,
        message=message or RETAKE_MESSAGES[reason],
        quality=quality,
        retake_reason=reason,
        timings=clock.stages,
        cpu_timings=clock.cpu,
        seconds=time.perf_counter() - clock.start,
    )


def _text_crop(ink: np.ndarray, box: Box, inset: int) -> np.ndarray | None:
    """The cell's inside as a paper-white greyscale crop for OCR; None when it is blank."""
    x0, y0, x1, y1 = box
    cell = crop(ink, x0 + inset, y0 + inset, x1 - inset, y1 - inset)
    if cell.size == 0:
        return None
    darkest = float(np.percentile(cell, 99.7))
    if darkest < BLANK_INK:
        return None
    # Pale toner on a soft photo prints text at half its darkness: stretch it back, or
    # the line finder loses a glyph's thin strokes (a leading 3 of an ID number).
    stretched = np.clip(cell.astype(np.float32) * (255.0 / max(darkest, 120.0)), 0, 255)
    return np.ascontiguousarray(255 - stretched.astype(np.uint8))


def _read_text(ink: np.ndarray, box: Box) -> tuple[str, float]:
    cell = _text_crop(ink, box, mm(0.8))
    odds = None if cell is None else cell_odds(cell, min_gap=mm(0.5))
    return ("", 1.0) if odds is None else (odds.text, odds.score)


@dataclass
class _Mapped:
    """A layout as read from this photo: the map, and what was read on the way."""

    fields: dict[str, FieldMap]
    signature: CellRef | Box | None
    date: CellRef | Box | None
    labels: dict[str, str]


def _cell(table: Table, ref: CellRef) -> Box | None:
    row, index = ref
    if row < len(table.rows) and index < len(table.rows[row]):
        return table.rows[row][index]
    return None


def _header_roles(ink: np.ndarray, table: Table) -> list[tuple[int, int, Role]]:
    """The header row's columns (x-range and role), if the first row is captions."""
    columns = []
    for box in table.rows[0]:
        text, _ = _read_text(ink, box)
        role = role_of(text)
        if role is not None:
            columns.append((box[0], box[2], role))
    return columns if any(r == "label" for _, _, r in columns) else []


def _role_at(columns: list[tuple[int, int, Role]], box: Box) -> Role | None:
    centre = (box[0] + box[2]) / 2
    for x0, x1, role in columns:
        if x0 <= centre <= x1:
            return role
    # A cell spanning several columns (an address across the row): its right edge.
    for x0, x1, role in columns:
        if x0 <= box[2] - mm(3) <= x1:
            return role
    return None


def _map_by_labels(ink: np.ndarray, table: Table, forms: ForeignForms) -> _Mapped:
    """Read the label column and map each label's row cells to its field."""
    matcher = forms.matcher()
    columns = _header_roles(ink, table)
    has_correction = any(r == "correction" for _, _, r in columns)
    fields: dict[str, FieldMap] = {}
    labels: dict[str, str] = {}
    signature: CellRef | Box | None = None
    date: CellRef | Box | None = None
    first = 1 if columns else 0
    for r in range(first, len(table.rows)):
        row = table.rows[r]
        skip = -1
        for i, box in enumerate(row[:-1]):
            # Labels sit under a label caption; without captions, any cell may be one
            # (but not the value right after a label).
            if i == skip or (columns and _role_at(columns, box) != "label"):
                continue
            text, _ = _read_text(ink, box)
            if not text:
                continue
            code, _ = matcher.match(text)
            words = clean(text)
            if code is not None and code not in fields:
                correction = None
                if i + 2 < len(row) and _role_at(columns, row[i + 2]) == "correction":
                    correction = (r, i + 2)
                fields[code] = FieldMap((r, i), (r, i + 1), correction)
                labels[code] = text
                skip = i + 1
            elif any(w in words for w in SIGNATURE_WORDS) and signature is None:
                signature = (r, i + 1)
            elif any(w in words for w in DATE_WORDS) and date is None:
                date = (r, i + 1)
    # A wide row's correction cell is its last one, under a correction caption.
    for code, m in list(fields.items()):
        row = table.rows[m.value[0]]
        if (
            m.correction is None
            and has_correction
            and m.value[1] == len(row) - 2
            and _role_at(columns, row[-1]) == "correction"
        ):
            fields[code] = FieldMap(m.label, m.value, (m.value[0], len(row) - 1))
    if signature is None or date is None:
        sig, day = _footer_blanks(ink, table)
        signature = signature or sig
        date = date or day
    return _Mapped(fields, signature, date, labels)


def _footer_blanks(ink: np.ndarray, table: Table) -> tuple[Box | None, Box | None]:
    """Blanks below the table: an underline whose text on the left says 签名/签字 or 日期.
    Boxes relative to the table's bottom-left corner."""
    signature = date = None
    tx, ty = table.box[0], table.box[3]
    for x0, y0, x1, _ in table.underlines:
        label_box = (max(0, x0 - mm(40)), y0 - mm(7), x0 + mm(1), y0 + mm(0.5))
        text, _ = _read_text(ink, label_box)
        words = clean(text)
        blank = (x0 - tx, y0 - mm(12) - ty, x1 - tx, y0 - mm(0.6) - ty)
        # The text ends where the blank starts: the last words name it.
        tail = words[-4:]
        if signature is None and any(w in tail for w in SIGNATURE_WORDS):
            signature = blank
        elif date is None and any(w in tail for w in DATE_WORDS):
            date = blank
    return signature, date


def _box_of(table: Table, where: CellRef | Box | None, inset: int) -> Box | None:
    if where is None:
        return None
    if len(where) == 2:
        return _cell(table, where)
    x0, y0, x1, y1 = where
    tx, ty = table.box[0], table.box[3]
    box = (x0 + tx, y0 + ty, x1 + tx, y1 + ty)
    # The blank's own underline on this photo, if one lies near where it was learned.
    near = [
        u
        for u in table.underlines
        if abs(u[0] - box[0]) <= mm(6) and abs(u[1] - (box[3] + mm(0.6))) <= mm(8)
    ]
    if near:
        ux0, uy0, ux1, _ = min(near, key=lambda u: abs(u[0] - box[0]) + abs(u[1] - box[3]))
        return (ux0, uy0 - mm(12), ux1, uy0 - mm(0.6))
    return box


def _read_value(
    ink: np.ndarray, box: Box, field: PrintedField, expected: str, t: Thresholds
) -> FieldReading:
    """The printed value: the recogniser's best reading, unless the record's text (or, for
    a closed choice, one of its options) explains the cell about as well."""
    cell = _text_crop(ink, box, mm(0.7))
    odds = None if cell is None else cell_odds(cell, min_gap=mm(0.5))
    if odds is None or not odds.text:
        empty = not expected
        return FieldReading("", 1.0, empty, "ocr" if empty else "unsure")
    kind = field.read_kind
    best = odds.best_logp()
    if field.options:
        ranked = sorted(((odds.logp_of(o), o) for o in field.options), reverse=True)
        logp, option = ranked[0]
        if logp >= best - t.foreign_option_slack:
            confidence = float(np.exp(logp - best)) if logp < best else 1.0
            return FieldReading(option, confidence, matches(option, expected, kind), "options")
        return FieldReading(odds.text, odds.score, False, "unsure")
    if matches(odds.text, expected, kind):
        return FieldReading(odds.text, odds.score, True, "ocr")
    read, want = normalise(odds.text, kind), normalise(expected, kind)
    logp = odds.logp_of(expected)
    if expected and logp >= best - t.foreign_verify_slack:
        return FieldReading(expected, float(np.exp(min(0.0, logp - best))), True, "verified")
    # A difference only when read surely: the record's text far less likely than the
    # reading (a glyph the model hesitated over, 圳 or 场 on a soft photo, is no proof),
    # and not a reading that merely lost characters of the record's text (the recogniser
    # drops a lone 一 or a faint first glyph).
    sure = (
        odds.score >= t.foreign_read_min
        and (not expected or best - logp >= t.foreign_differ_gap)
        and not (len(read) < len(want) and _subsequence(read, want))
        and (kind != "digits" or len(read) == len(want))
    )
    return FieldReading(odds.text, odds.score, False, "ocr" if sure else "unsure")


def _subsequence(short: str, long: str) -> bool:
    it = iter(long)
    return all(ch in it for ch in short)


def check_foreign_photo(
    photo: bytes,
    forms: ForeignForms,
    expected: Mapping[str, str],
    *,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> CheckReport:
    """Check a photo of another system's form against the values the record holds."""
    clock = _Clock()
    try:
        full = decode(photo)
    except ValueError:
        return _retake(RetakeReason.unreadable_image, Quality(0.0, 0.0), clock)
    small = shrink(full)
    clock.lap("decode")
    quality = quality_of(small)
    if quality.paper < thresholds.dark_paper:
        return _retake(RetakeReason.too_dark, quality, clock)
    return check_foreign(full, small, quality, forms, expected, thresholds, started=clock.start)


def check_foreign(
    full: np.ndarray,
    small: np.ndarray,
    quality: Quality,
    forms: ForeignForms,
    expected: Mapping[str, str],
    t: Thresholds = DEFAULT_THRESHOLDS,
    *,
    started: float | None = None,
) -> CheckReport:
    """The reading itself, on a decoded photo (`check_photo` hands over a photo without
    our QR code here; `started`, its perf_counter() start)."""
    clock = _Clock(started)
    sheet = find_sheet(full, small)
    if sheet is None:
        soft = quality.sharpness < 4 * t.sharpness_min
        why = RetakeReason.blurry if soft else RetakeReason.page_not_visible
        return _retake(why, quality, clock, None if soft else NOT_VISIBLE)
    if sheet.touches_frame:
        return _retake(RetakeReason.page_not_visible, quality, clock, NOT_VISIBLE)
    corners = table_corners(small)
    if corners is not None:
        corners = corners * (full.shape[1] / small.shape[1])
    clock.lap("locate")

    attempt = _straighten(full, sheet, corners, upside_down=False)
    clock.lap("straighten")
    if attempt is None:
        return _retake(RetakeReason.blurry, quality, clock)
    ink, table = attempt
    spread = rule_blur(ink, table)
    blur_px = float(np.sqrt(max(0.81, spread * spread - SHARP_SPREAD * SHARP_SPREAD)))
    quality = Quality(quality.paper, quality.sharpness, sheet.scale, blur_px)
    if blur_px > t.foreign_blur_max_px:
        return _retake(RetakeReason.blurry, quality, clock)

    way: LayoutWay = "learned"
    key = fingerprint(table.rows)
    mapped = _recall(ink, table, forms)
    if mapped is None and forms.memory.get(key, columns(table.rows, table.box)) is None:
        # Known lines, read the wrong way up? (Upside down, the rows come out reversed.)
        flipped = _straighten(full, sheet, corners, upside_down=True)
        if flipped is not None and (mapped := _recall(*flipped, forms)) is not None:
            ink, table = flipped
            key = fingerprint(table.rows)
    clock.lap("labels")
    if mapped is None:
        way = "read_by_labels"
        mapped = _map_by_labels(ink, table, forms)
        if len(mapped.fields) < MIN_FIELDS:
            flipped = _straighten(full, sheet, corners, upside_down=True)
            if flipped is not None:
                other = _map_by_labels(*flipped, forms)
                if len(other.fields) > len(mapped.fields):
                    (ink, table), mapped = flipped, other
                    key = fingerprint(table.rows)
        clock.lap("labels")
    if len(mapped.fields) < MIN_FIELDS:
        return _retake(RetakeReason.page_not_visible, quality, clock, NOT_VISIBLE)

    by_code = {f.code: f for f in forms.fields}
    readings: dict[str, FieldReading] = {}
    for code, m in mapped.fields.items():
        box = _cell(table, m.value)
        if box is None or code not in by_code:
            continue
        readings[code] = _read_value(ink, box, by_code[code], expected.get(code, ""), t)
    clock.lap("ocr")

    ink_smooth = cv2.GaussianBlur(ink, (0, 0), 1.0)
    boxes = {
        code: b
        for code, m in mapped.fields.items()
        if m.correction is not None and (b := _cell(table, m.correction)) is not None
    }
    noise = _noise(ink_smooth, [*boxes.values()])
    level = handwriting_level(blur_px, noise)
    specks = speck_px(noise)

    def share(box: Box) -> float:
        return ink_share(ink_smooth, _CANVAS, box, level=level, blur_px=blur_px, speck_px=specks)

    shares = {code: share(box) for code, box in boxes.items()}
    corrections = {
        code: _png(ink, box) for code, box in boxes.items() if shares[code] >= t.correction_ink
    }
    signature_box = _box_of(table, mapped.signature, 0)
    date_box = _box_of(table, mapped.date, 0)
    shares["signature"] = share(signature_box) if signature_box else 0.0
    shares["date"] = share(date_box) if date_box else 0.0
    signed = shares["signature"] >= t.signature_ink
    clock.lap("ink")

    names = {code: forms.names.get(code, (code,))[0] for code in by_code}
    labels = {code: mapped.labels.get(code) or names.get(code, code) for code in readings}
    verdict, message, reason = _verdict(
        readings, corrections, signed, signature_box is not None, labels
    )
    if (
        verdict not in (Verdict.retake, Verdict.not_this_form, Verdict.differs)
        and boxes
        and faint_stroke_level(blur_px) < t.handwriting_margin * level
    ):
        undecided = [c for c in boxes if c not in corrections]
        if undecided:
            verdict, reason = Verdict.retake, RetakeReason.unclear_handwriting
            message = RETAKE_MESSAGES[reason]
    if way == "read_by_labels" and verdict is not Verdict.retake and _learnable(mapped):
        forms.memory.put(
            LearnedLayout(
                key,
                mapped.fields,
                mapped.signature,
                mapped.date,
                mapped.labels,
                columns(table.rows, table.box),
            )
        )
    quality = Quality(quality.paper, quality.sharpness, sheet.scale, blur_px, noise, level)
    return CheckReport(
        verdict=verdict,
        message=message,
        quality=quality,
        retake_reason=reason,
        fields=readings,
        corrections=corrections,
        ink=shares,
        signed=signed,
        date_written=shares["date"] >= t.date_ink,
        timings=clock.stages,
        cpu_timings=clock.cpu,
        seconds=time.perf_counter() - clock.start,
        layout_way=way,
        layout_fingerprint=key,
    )


def _straighten(
    full: np.ndarray, sheet: Sheet, corners: np.ndarray | None, *, upside_down: bool
) -> tuple[np.ndarray, Table] | None:
    h, near = sheet_transform(sheet, corners, upside_down)
    ink = page_ink(straighten_sheet(full, h))
    table = find_table(ink, near)
    if table is None or _at_edge(table.box):
        # The corners taken for the table's were not (a shadow's edge joined them): find
        # the table on the sheet alone, then square it up by its own outer frame.
        h, _ = sheet_transform(sheet, None, upside_down)
        ink = page_ink(straighten_sheet(full, h))
        rough = find_table(ink, None)
        if rough is None:
            return None
        outline = cv2.perspectiveTransform(
            rough.outline.reshape(-1, 1, 2).astype(np.float64), np.linalg.inv(h)
        ).reshape(4, 2)
        if upside_down:
            outline = np.roll(outline, 2, axis=0)
        h, near = sheet_transform(sheet, outline.astype(np.float32), upside_down)
        ink = page_ink(straighten_sheet(full, h))
        table = find_table(ink, near)
    if table is None or len(table.rows) < 2:
        return None
    return ink, table


def _at_edge(box: Box) -> bool:
    x0, y0, x1, y1 = box
    m = mm(3)
    return x0 < m or y0 < m or x1 > CANVAS[0] - m or y1 > CANVAS[1] - m


def _recall(ink: np.ndarray, table: Table, forms: ForeignForms) -> _Mapped | None:
    """The learned map of this layout, if its lines are known and its anchor labels read
    as they did when it was learned."""
    learned = forms.memory.get(fingerprint(table.rows), columns(table.rows, table.box))
    if learned is None:
        return None
    matcher = forms.matcher()
    anchors = [c for c in ANCHORS if c in learned.fields][:2] or list(learned.fields)[:2]
    for code in anchors:
        box = _cell(table, learned.fields[code].label)
        if box is None or matcher.match(_read_text(ink, box)[0])[0] != code:
            return None
    return _Mapped(dict(learned.fields), learned.signature, learned.date, dict(learned.labels))


def _learnable(mapped: _Mapped) -> bool:
    return all(c in mapped.fields for c in ANCHORS) and mapped.signature is not None


def _noise(ink_smooth: np.ndarray, boxes: list[Box]) -> float:
    """What grain alone reaches on blank paper: the lower quartile, over the correction
    cells, of each one's 99.9th percentile (a written cell reads high, so the quartile)."""
    tails = []
    for x0, y0, x1, y1 in boxes:
        ix, iy = max(mm(1.5), (x1 - x0) // 10), max(mm(1.5), (y1 - y0) // 4)
        inner = crop(ink_smooth, x0 + ix, y0 + iy, x1 - ix, y1 - iy)[::2, ::2].ravel()
        if inner.size:
            k = int(0.999 * (inner.size - 1))
            tails.append(float(np.partition(inner, k)[k]))
    return float(np.percentile(tails, 25)) if tails else 0.0


def _png(ink: np.ndarray, box: Box) -> bytes:
    x0, y0, x1, y1 = box
    m = mm(1.0)
    ok, png = cv2.imencode(".png", 255 - crop(ink, x0 - m, y0 - m, x1 + m, y1 + m))
    if not ok:
        raise ValueError("could not encode a crop")
    return png.tobytes()


def _verdict(
    readings: Mapping[str, FieldReading],
    corrections: Mapping[str, bytes],
    signed: bool,
    signature_found: bool,
    labels: Mapping[str, str],
) -> tuple[Verdict, str, RetakeReason | None]:
    def named(codes: list[str]) -> str:
        return "、".join(labels.get(c, c) for c in codes)

    unclear = [c for c, r in readings.items() if r.method == "unsure"]
    differing = [c for c, r in readings.items() if not r.match and r.method != "unsure"]
    identity = [c for c in ANCHORS if c in readings]
    if identity and all(c in differing for c in identity) and len(identity) == len(ANCHORS):
        return (
            Verdict.not_this_form,
            "照片中表上的姓名和身份证件号都不是本学生的，请拍摄您孩子的那一张确认表。",
            None,
        )
    if unclear:
        return (
            Verdict.retake,
            f"这些信息看不清：{named(unclear)}。请在光线充足处拿稳手机、对准表格重新拍照。",
            RetakeReason.unclear_fields,
        )
    if not signature_found:
        return Verdict.retake, NOT_VISIBLE, RetakeReason.page_not_visible
    if differing:
        return (
            Verdict.differs,
            f"表上打印的信息与学籍记录不一致：{named(differing)}。请联系班主任。",
            None,
        )
    if corrections:
        return (
            Verdict.corrections_written,
            f"看到您在更正栏填写了：{named(list(corrections))}。学校会核对后录入。",
            None,
        )
    if not signed:
        return Verdict.unsigned, "表格还没有签名，请在签名处签名后重新拍照上传。", None
    return Verdict.matches, "表上信息与学籍记录一致，已签名，核对完成。", None

"""The form's layout as data: one spec that the renderer draws and the reader reads.

Everything is placed in millimetres on an A4 page and converted to pixels once, for the
dpi asked for; a form printed from a 300-dpi rendering is read against a 200-dpi layout of
the same fields. The table packs two field triples (label, printed value, corrected value)
per row; a `wide` field (a long address) takes a whole row.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._fonts import find_font
from .exceptions import LayoutError

ReadKind = Literal["digits", "text"]
Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels; x1 and y1 exclusive

LAYOUT_VERSION = 1  # bump when the geometry below changes: printed forms then differ
PAGE_MM = (210.0, 297.0)
MARKER_MM = 7.0  # solid corner squares
MARKER_INSET_MM = 6.0  # from the paper's edge; printers leave 3–5 mm blank
CONTENT_X_MM = (15.0, 195.0)
QR_VERSION = 4  # 33 modules; fixed, so the reader knows the symbol's size
QR_MODULES = 17 + 4 * QR_VERSION
QR_MODULE_MM = 0.8
QR_ORIGIN_MM = (164.0, 9.0)  # symbol's top-left; a 4-module quiet zone stays blank
TABLE_TOP_MM = 39.0
CAPTION_MM = 6.0
TABLE_BOTTOM_MM = 264.0
ROW_MM = (8.0, 11.0)  # the shortest row that still takes handwriting, and the tallest
LABEL_MM = 22.0
HALF_VALUE_MM = 34.0
WIDE_VALUE_MM = 90.0
FOOTER_TOP_MM = 266.0
FOOTER_H_MM = 14.0

VALUE_SIZES_MM = (3.4, 3.0, 2.6, 2.3, 2.0, 1.8)
LABEL_SIZES_MM = (2.6, 2.3, 2.0, 1.8, 1.6)
CELL_PAD_MM = 1.2


@dataclass(frozen=True, slots=True)
class PrintedField:
    """A field the form prints, as the layout needs it.

    `read_kind` is "digits" for ID numbers, dates, year-months and phones (an ID may end
    in X) and "text" (Chinese) for the rest. `wide` fields take a whole table row.
    `options` are every text the field can print when it is a closed choice (男/女, 是/否,
    the 56 民族): a cell that does not verify is then matched against each of them
    instead of being read by OCR.
    """

    code: str
    label: str
    read_kind: ReadKind = "text"
    wide: bool = False
    options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FieldCells:
    field: PrintedField
    label_box: Box
    value_box: Box
    correction_box: Box

    @property
    def code(self) -> str:
        return self.field.code


@dataclass(frozen=True)
class Layout:
    """Pixel positions of everything on the form at `dpi`. Immutable; share it freely."""

    dpi: int
    size: tuple[int, int]  # width, height
    row_mm: float
    font_path: str
    fields: tuple[FieldCells, ...]
    markers: tuple[Box, Box, Box, Box]  # top-left, top-right, bottom-right, bottom-left
    qr_box: Box  # the QR symbol without its quiet zone
    title_box: Box
    header_box: Box
    instruction_box: Box
    captions: tuple[tuple[str, Box], ...]
    registration_box: Box
    signature_label_box: Box
    signature_box: Box
    date_label_box: Box
    date_box: Box

    @property
    def fingerprint(self) -> str:
        """Names this spec (geometry version, fields, font) but not the dpi: store it with
        an issued form and read the photo with a layout of the same fingerprint."""
        spec = repr(
            (LAYOUT_VERSION, [c.field for c in self.fields], os.path.basename(self.font_path))
        )
        return hashlib.sha256(spec.encode()).hexdigest()[:16]

    def px(self, mm: float) -> int:
        return round(mm * self.dpi / 25.4)

    def value_mm(self, cells: FieldCells) -> tuple[float, float]:
        """The value cell's size in millimetres, straight from the spec (not from rounded
        pixels), so text wraps the same way at every dpi."""
        return (WIDE_VALUE_MM if cells.field.wide else HALF_VALUE_MM), self.row_mm

    def cells(self, code: str) -> FieldCells:
        for cells in self.fields:
            if cells.code == code:
                return cells
        raise KeyError(code)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.fields)

    def boxes(self) -> Iterator[Box]:
        """Every box drawn on the page (for overlap checks)."""
        for cells in self.fields:
            yield from (cells.label_box, cells.value_box, cells.correction_box)
        yield from self.markers
        yield from (self.qr_box, self.title_box, self.header_box, self.instruction_box)
        yield from (box for _, box in self.captions)
        yield from (self.registration_box, self.signature_label_box, self.signature_box)
        yield from (self.date_label_box, self.date_box)

    def to_json(self) -> dict[str, Any]:
        """The boxes the CLI writes next to a rendered form, in this layout's pixels."""
        return {
            "fingerprint": self.fingerprint,
            "dpi": self.dpi,
            "size": list(self.size),
            "fields": {
                c.code: {"value_box": list(c.value_box), "correction_box": list(c.correction_box)}
                for c in self.fields
            },
            "signature_box": list(self.signature_box),
            "date_box": list(self.date_box),
            "qr_box": list(self.qr_box),
            "markers": [list(m) for m in self.markers],
        }


def _rows(fields: Sequence[PrintedField]) -> list[list[PrintedField]]:
    rows: list[list[PrintedField]] = []
    for f in fields:
        if f.wide:
            rows.append([f])
        elif rows and len(rows[-1]) == 1 and not rows[-1][0].wide:
            rows[-1].append(f)
        else:
            rows.append([f])
    return rows


def build_layout(
    fields: Sequence[PrintedField], *, dpi: int = 200, font_path: str | None = None
) -> Layout:
    """The layout for these fields, in order. Raises `LayoutError` if they do not fit."""
    codes = [f.code for f in fields]
    if len(set(codes)) != len(codes):
        raise LayoutError("field codes must be unique")
    if any(f.read_kind not in ("digits", "text") for f in fields):
        raise LayoutError("read_kind must be 'digits' or 'text'")
    if not 100 <= dpi <= 600:
        raise LayoutError("dpi must be between 100 and 600")

    def px(mm: float) -> int:
        return round(mm * dpi / 25.4)

    def box(x0: float, y0: float, x1: float, y1: float) -> Box:
        return (px(x0), px(y0), px(x1), px(y1))

    rows = _rows(fields)
    body_mm = TABLE_BOTTOM_MM - TABLE_TOP_MM - CAPTION_MM
    row_mm = min(ROW_MM[1], body_mm / max(1, len(rows)))
    if row_mm < ROW_MM[0]:
        raise LayoutError(f"{len(fields)} fields need {len(rows)} rows: too many for a page")

    left, right = CONTENT_X_MM
    half = (right - left) / 2
    captions: list[tuple[str, Box]] = []
    cap_top, cap_bottom = TABLE_TOP_MM, TABLE_TOP_MM + CAPTION_MM
    for x in (left, left + half):
        v0 = x + LABEL_MM
        c0 = v0 + HALF_VALUE_MM
        captions += [
            ("信息项", box(x, cap_top, v0, cap_bottom)),
            ("原信息", box(v0, cap_top, c0, cap_bottom)),
            ("更正后信息", box(c0, cap_top, x + half, cap_bottom)),
        ]

    placed: list[FieldCells] = []
    for i, row in enumerate(rows):
        y0 = cap_bottom + i * row_mm
        y1 = y0 + row_mm
        for j, f in enumerate(row):
            x = left + j * half
            v0 = x + LABEL_MM
            v1 = v0 + (WIDE_VALUE_MM if f.wide else HALF_VALUE_MM)
            x1 = right if f.wide else x + half
            placed.append(
                FieldCells(f, box(x, y0, v0, y1), box(v0, y0, v1, y1), box(v1, y0, x1, y1))
            )

    page_w, page_h = PAGE_MM
    m, s = MARKER_INSET_MM, MARKER_MM
    qx, qy = QR_ORIGIN_MM
    q = QR_MODULES * QR_MODULE_MM
    foot0, foot1 = FOOTER_TOP_MM, FOOTER_TOP_MM + FOOTER_H_MM
    return Layout(
        dpi=dpi,
        size=(px(page_w), px(page_h)),
        row_mm=row_mm,
        font_path=find_font(font_path),
        fields=tuple(placed),
        markers=(
            box(m, m, m + s, m + s),
            box(page_w - m - s, m, page_w - m, m + s),
            box(page_w - m - s, page_h - m - s, page_w - m, page_h - m),
            box(m, page_h - m - s, m + s, page_h - m),
        ),
        qr_box=box(qx, qy, qx + q, qy + q),
        title_box=box(left, 9.0, 160.0, 20.0),
        header_box=box(left, 20.5, 160.0, 27.5),
        instruction_box=box(left, 28.0, 160.0, 37.5),
        captions=tuple(captions),
        registration_box=box(left, foot0, 104.0, foot1),
        signature_label_box=box(106.0, foot0, 122.0, foot1),
        signature_box=box(122.0, foot0, 160.0, foot1),
        date_label_box=box(161.0, foot0, 169.0, foot1),
        date_box=box(169.0, foot0, right, foot1),
    )

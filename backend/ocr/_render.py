"""Draw the confirmation form from the layout (Pillow, greyscale) and bind pages into a PDF."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import segno
from PIL import Image, ImageDraw
from segno import consts as qr_modes

from ._fonts import (
    LINE_SPACING,
    Align,
    PlacedLine,
    TextBlock,
    draw_lines,
    fit_text,
    place_block,
)
from ._layout import (
    CELL_PAD_MM,
    LABEL_MM,
    LABEL_SIZES_MM,
    QR_MODULES,
    QR_VERSION,
    VALUE_SIZES_MM,
    Box,
    FieldCells,
    Layout,
)
from ._token import form_link

TITLE = "全国中小学生学籍基础信息确认表"
INSTRUCTION = (
    "请家长核对下表“原信息”。如有错误，请在同一行的“更正后信息”栏内写上正确内容，"
    "不要涂改原信息；核对后在表格下方签名、写日期，再用手机拍下整页上传。"
)
REGISTRATION = (
    "注册方式：在手机上打开学籍核查服务，输入您的手机号、上面的注册码和孩子的出生日期，"
    "收到短信验证码后即可绑定孩子，并上传本表照片。"
)
LABEL_FILL = 232
RULE = 40


@dataclass(frozen=True, slots=True)
class FormHeader:
    """What the form prints besides the field values."""

    school: str
    class_name: str
    registration_code: str
    form_token: str  # from `sign_form_token`; carried in the QR code
    student_name: str | None = None
    title: str = TITLE
    # The service's public address: the QR code then carries the link `form_link(base, token)`
    # a phone's camera opens; empty, the bare token.
    public_base_url: str = ""

    @property
    def qr_text(self) -> str:
        if not self.public_base_url:
            return self.form_token
        return form_link(self.public_base_url, self.form_token)


def _mm(layout: Layout, px: int) -> float:
    return px * 25.4 / layout.dpi


def value_lines(layout: Layout, cells: FieldCells, text: str) -> list[PlacedLine]:
    """Where a value's lines go inside its value cell (cell-relative pixels). The renderer
    draws exactly this, and the reader compares the photo against exactly this."""
    w_mm, h_mm = layout.value_mm(cells)
    pad = CELL_PAD_MM
    text = " ".join(text.split())
    block = fit_text(text, w_mm - 2 * pad, h_mm - pad, VALUE_SIZES_MM, layout.font_path)
    x0, y0, x1, y1 = cells.value_box
    return place_block(block, x1 - x0, y1 - y0, layout.dpi, layout.font_path, pad_px=layout.px(pad))


def render_value_cell(layout: Layout, cells: FieldCells, lines: list[PlacedLine]) -> Image.Image:
    """The value cell's inside as the form prints it (white, no rules)."""
    x0, y0, x1, y1 = cells.value_box
    image = Image.new("L", (x1 - x0, y1 - y0), 255)
    draw_lines(ImageDraw.Draw(image), lines, (0, 0), layout.font_path)
    return image


def _text(
    draw: ImageDraw.ImageDraw,
    layout: Layout,
    box: Box,
    text: str,
    sizes_mm: tuple[float, ...],
    *,
    align: Align = "left",
    pad_mm: float = 0.0,
) -> None:
    x0, y0, x1, y1 = box
    w_mm, h_mm = _mm(layout, x1 - x0), _mm(layout, y1 - y0)
    block = fit_text(text, w_mm - 2 * pad_mm, h_mm, sizes_mm, layout.font_path)
    lines = place_block(
        block, x1 - x0, y1 - y0, layout.dpi, layout.font_path, pad_px=layout.px(pad_mm), align=align
    )
    draw_lines(draw, lines, (x0, y0), layout.font_path)


# QR alphanumeric mode: upper-case letters, digits and nine symbols at 5.5 bits a character.
_ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")


def qr_segments(text: str) -> list[tuple[str, int | None]]:
    """`text` as QR segments: a link's address in byte mode and its token (upper case, digits
    and dots) in alphanumeric mode, which takes 5.5 bits a character instead of 8. So a link
    whose address has up to 33 characters still fits the fixed version-4 symbol, with the
    same module size and error correction as the bare token had (the link is what the form
    prints; a bare token is still drawn for tools that ask for one)."""
    head, slash, tail = text.rpartition("/")
    if slash and tail and set(tail) <= _ALPHANUMERIC:
        return [(head + slash, qr_modes.MODE_BYTE), (tail, qr_modes.MODE_ALPHANUMERIC)]
    return [(text, None)]  # segno picks the mode


def _qr(image: Image.Image, layout: Layout, text: str) -> None:
    # segno takes a list of (content, mode) segments, though its annotation names str only.
    segments: Any = qr_segments(text)
    qr = segno.make_qr(segments, version=QR_VERSION, error="m", boost_error=False)
    modules = np.array(qr.matrix, dtype=bool)
    assert modules.shape == (QR_MODULES, QR_MODULES)
    x0, y0, x1, y1 = layout.qr_box
    # Module edges rounded from exact positions, so the symbol spans the box exactly.
    xs = np.round(np.linspace(x0, x1, QR_MODULES + 1)).astype(int)
    ys = np.round(np.linspace(y0, y1, QR_MODULES + 1)).astype(int)
    cols = np.searchsorted(xs, np.arange(x0, x1), side="right") - 1
    rows = np.searchsorted(ys, np.arange(y0, y1), side="right") - 1
    symbol = np.where(modules[np.ix_(rows, cols)], 0, 255).astype(np.uint8)
    image.paste(Image.fromarray(symbol), (x0, y0))


def _rect(draw: ImageDraw.ImageDraw, box: Box, width: int, fill: int | None = None) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=RULE, width=width, fill=fill)


def render_form(layout: Layout, values: Mapping[str, str], header: FormHeader) -> Image.Image:
    """The form page as a greyscale image at the layout's dpi.

    `values` maps field codes to the text to print (already turned into labels: "男", not
    "1"); a missing code prints an empty cell. Long values wrap and shrink inside their own
    cell and never reach the correction cell.
    """
    image = Image.new("L", layout.size, 255)
    draw = ImageDraw.Draw(image)
    rule = max(1, layout.px(0.25))

    for marker in layout.markers:
        x0, y0, x1, y1 = marker
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=0)
    _qr(image, layout, header.qr_text)

    _text(draw, layout, layout.title_box, header.title, (5.5, 5.0, 4.5), align="center")
    who = [f"学校：{header.school}", f"班级：{header.class_name}"]
    if header.student_name:
        who.append(f"学生：{header.student_name}")
    _text(draw, layout, layout.header_box, "　　".join(who), (3.4, 3.0, 2.6, 2.2))
    _text(draw, layout, layout.instruction_box, INSTRUCTION, (2.6, 2.4, 2.2, 2.0))

    for caption, box in layout.captions:
        _rect(draw, box, rule, fill=LABEL_FILL)
        _text(draw, layout, box, caption, (2.8, 2.4), align="center")

    label_h_mm = layout.row_mm
    for cells in layout.fields:
        _rect(draw, cells.label_box, rule, fill=LABEL_FILL)
        x0, y0, x1, y1 = cells.label_box
        pad = 0.8
        block = fit_text(
            cells.field.label,
            LABEL_MM - 2 * pad,
            label_h_mm - pad,
            LABEL_SIZES_MM,
            layout.font_path,
        )
        lines = place_block(
            block,
            x1 - x0,
            y1 - y0,
            layout.dpi,
            layout.font_path,
            pad_px=layout.px(pad),
            align="center",
        )
        draw_lines(draw, lines, (x0, y0), layout.font_path)
        _rect(draw, cells.value_box, rule)
        _rect(draw, cells.correction_box, rule)
        text = values.get(cells.code, "")
        if text:
            draw_lines(
                draw,
                value_lines(layout, cells, text),
                cells.value_box[:2],
                layout.font_path,
            )

    x0, y0, x1, y1 = layout.registration_box
    split = y0 + layout.px(5.5)
    _text(draw, layout, (x0, y0, x1, split), f"家长注册码：{header.registration_code}", (3.6, 3.2))
    _text(draw, layout, (x0, split, x1, y1), REGISTRATION, (2.3, 2.1, 1.9, 1.7))
    _text(draw, layout, layout.signature_label_box, "家长签名", (3.0, 2.6), align="center")
    _text(draw, layout, layout.date_label_box, "日期", (3.0, 2.6), align="center")
    _rect(draw, layout.signature_box, rule)
    _rect(draw, layout.date_box, rule)
    image.info["dpi"] = (layout.dpi, layout.dpi)
    return image


def render_pdf(pages: Sequence[Image.Image], *, bilevel: bool | None = None) -> bytes:
    """A printable multi-page PDF, one rendered form per A4 page.

    Bilevel pages (CCITT G4) are about 35 KB each against 0.4–0.7 MB as greyscale JPEG,
    and by default (`bilevel=None`) pages rendered at 300 dpi or more are made bilevel:
    `build_layout(fields, dpi=300)` for printing; the reader's 200-dpi layout of the same
    fields reads that print all the same. The label cells' grey fill does not survive
    bilevel; nothing reads it.
    """
    if not pages:
        raise ValueError("render_pdf needs at least one page")
    dpi = float(pages[0].info.get("dpi", (200, 200))[0])
    if bilevel is None:
        bilevel = dpi >= 300
    if bilevel:
        converted = [
            p.convert("L").point(lambda v: 255 if v > 140 else 0).convert("1") for p in pages
        ]
    else:
        converted = [p.convert("L") for p in pages]
    out = io.BytesIO()
    first, *rest = converted
    extra = {} if bilevel else {"quality": 90}
    first.save(out, "PDF", save_all=True, append_images=rest, resolution=dpi, **extra)
    return out.getvalue()


def append_pdf_page(path: str | os.PathLike[str], page: Image.Image, *, first: bool) -> None:
    """Add one page to a PDF file on disk (`first` starts the file), as `render_pdf` would
    print it (bilevel at 300 dpi or more): a class's PDF is written page by page, so only one
    page's pixels are ever in memory."""
    dpi = float(page.info.get("dpi", (200, 200))[0])
    if dpi >= 300:
        image = page.convert("L").point(lambda v: 255 if v > 140 else 0).convert("1")
    else:
        image = page.convert("L")
    extra = {} if dpi >= 300 else {"quality": 90}
    image.save(path, "PDF", append=not first, resolution=dpi, **extra)


__all__ = [
    "LINE_SPACING",
    "FormHeader",
    "TextBlock",
    "append_pdf_page",
    "render_form",
    "render_pdf",
]

"""The CJK font, and text fitted into a cell: wrapped and shrunk until it fits.

Line breaks are decided from advance widths measured at one reference size and scaled to
millimetres, so a value wraps the same way whatever the dpi (the printer may render at 300
dpi and the reader compare at 200).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from PIL import ImageDraw, ImageFont

from .exceptions import FontNotFound

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)
_REF_PX = 200
LINE_SPACING = 1.25
# Wrap a little short of the box: hinting at a given pixel size can widen a line slightly.
_WRAP_SLACK = 0.97

Align = Literal["left", "center"]


def find_font(path: str | None = None) -> str:
    """The given font file, or the first installed CJK font Debian ships."""
    for candidate in (path,) if path else FONT_CANDIDATES:
        if os.path.isfile(candidate):
            return candidate
    wanted = path or " or ".join(FONT_CANDIDATES)
    raise FontNotFound(
        f"no CJK font at {wanted}; install one with `apt-get install fonts-wqy-microhei`"
    )


class _Fonts(threading.local):
    def __init__(self) -> None:
        self.faces: dict[tuple[str, float], ImageFont.FreeTypeFont] = {}


_fonts = _Fonts()


def font(path: str, size_px: float) -> ImageFont.FreeTypeFont:
    """A font face, cached per thread (a FreeType face is not safe to share)."""
    face = _fonts.faces.get((path, size_px))
    if face is None:
        # Basic layout: no shaping engine, so every machine places glyphs the same way.
        face = ImageFont.truetype(path, size_px, layout_engine=ImageFont.Layout.BASIC)
        _fonts.faces[(path, size_px)] = face
    return face


@lru_cache(maxsize=8192)
def _advance_em(path: str, char: str) -> float:
    return font(path, _REF_PX).getlength(char) / _REF_PX


@dataclass(frozen=True, slots=True)
class TextBlock:
    """Text fitted to a box: its size in millimetres and its lines."""

    size_mm: float
    lines: tuple[str, ...]
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class PlacedLine:
    """One line of a block placed in a cell, in pixels relative to the cell's origin."""

    text: str
    x: float
    y_mid: float
    size_px: float  # fractional, so a line is as long at every dpi
    glyph_x: tuple[float, ...]  # left edge of every glyph, then the line's right edge


def _wrap(text: str, path: str, size_mm: float, width_mm: float) -> list[str]:
    lines: list[str] = []
    current = ""
    width = 0.0
    for char in text:
        advance = _advance_em(path, char) * size_mm
        if current and width + advance > width_mm * _WRAP_SLACK:
            lines.append(current.rstrip())
            current, width = ("", 0.0) if char == " " else (char, advance)
            continue
        current += char
        width += advance
    if current:
        lines.append(current)
    return lines


def fit_text(
    text: str,
    width_mm: float,
    height_mm: float,
    sizes_mm: tuple[float, ...],
    path: str,
    *,
    one_line_min_mm: float = 2.6,
) -> TextBlock:
    """The largest size at which `text` fits on one line if that is at least
    `one_line_min_mm` (an ID number reads better unbroken), else the largest size whose
    wrapped lines fit; at the smallest size, the lines that fit."""
    text = text.strip()
    if not text:
        return TextBlock(sizes_mm[0], ())
    for size in sizes_mm:
        lines = _wrap(text, path, size, width_mm)
        if size >= one_line_min_mm and len(lines) == 1 and size * LINE_SPACING <= height_mm:
            return TextBlock(size, tuple(lines))
    for size in sizes_mm:
        lines = _wrap(text, path, size, width_mm)
        if len(lines) * size * LINE_SPACING <= height_mm:
            return TextBlock(size, tuple(lines))
    size = sizes_mm[-1]
    room = max(1, int(height_mm / (size * LINE_SPACING)))
    return TextBlock(size, tuple(_wrap(text, path, size, width_mm)[:room]), truncated=True)


def place_block(
    block: TextBlock,
    box_w: int,
    box_h: int,
    dpi: int,
    path: str,
    *,
    pad_px: int,
    align: Align = "left",
) -> list[PlacedLine]:
    """Where each line (and each glyph) of `block` goes in a `box_w` × `box_h` cell."""
    size_px = max(6.0, round(block.size_mm * dpi / 25.4, 2))
    line_h = size_px * LINE_SPACING
    top = (box_h - line_h * len(block.lines)) / 2
    placed = []
    for i, line in enumerate(block.lines):
        edges = [0.0]
        for char in line:
            # Advances scaled from the reference size, not hinted at this size (which rounds
            # each to whole pixels): glyphs then sit at the same millimetre at every dpi.
            edges.append(edges[-1] + _advance_em(path, char) * size_px)
        x = pad_px if align == "left" else (box_w - edges[-1]) / 2
        placed.append(
            PlacedLine(line, x, top + (i + 0.5) * line_h, size_px, tuple(x + e for e in edges))
        )
    return placed


def draw_lines(
    draw: ImageDraw.ImageDraw,
    lines: list[PlacedLine],
    origin: tuple[int, int],
    path: str,
    fill: int = 0,
) -> None:
    """Draw glyph by glyph at the placed positions, so what is drawn is exactly what the
    reader expects, kerning or not."""
    ox, oy = origin
    for line in lines:
        face = font(path, line.size_px)
        for char, x in zip(line.text, line.glyph_x, strict=False):
            if not char.isspace():
                draw.text((ox + x, oy + line.y_mid), char, font=face, fill=fill, anchor="lm")

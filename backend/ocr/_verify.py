"""Verify-by-rendering: we printed the value, so draw the expected text exactly as the
renderer did and compare it with the photo's cell, glyph by glyph.

The whole text is first aligned to the photo (the straightened page can be off by a
millimetre where the sheet bends), then every glyph must correlate with the same glyph
in the photo, and the photo may hold no ink the expected text does not explain (an extra
or longer value). A cell that passes needs no OCR.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw

from ._fonts import font
from ._layout import FieldCells, Layout
from ._render import render_value_cell, value_lines

DIGITS = "0123456789X"
INK_LEVEL = 100  # in an ink map (0 paper … 255 black): a pixel ≥ 40 % darker than its paper
SHARP_BLUR = 0.9  # marker_blur() of a sharp photo: templates are made for it


def template_sigma(blur_px: float) -> float:
    """The Gaussian σ that makes a rendered template as soft as the photo's smoothed ink
    map: the map's own σ 1, plus whatever blur the photo has beyond a sharp one's.
    Rounded to quarter pixels so glyph templates can be cached."""
    extra = max(0.0, blur_px * blur_px - SHARP_BLUR * SHARP_BLUR)
    return round(4 * float(np.sqrt(1.0 + extra))) / 4


def ink_map(page: np.ndarray) -> np.ndarray:
    """How much darker than the paper around it each pixel is (0 paper, 255 black),
    whatever the lighting: shadows, fall-off, a dim photo."""
    h, w = page.shape
    small = cv2.resize(page, (w // 8, h // 8), interpolation=cv2.INTER_AREA)
    paper = cv2.dilate(small, np.ones((5, 5), np.uint8))
    paper = cv2.GaussianBlur(paper, (0, 0), 2)
    paper = cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR)
    norm = cv2.divide(page, np.maximum(paper, 1), scale=255)
    out: np.ndarray = 255 - norm
    return out


def crop(image: np.ndarray, x0: int, y0: int, x1: int, y1: int, fill: int = 0) -> np.ndarray:
    """image[y0:y1, x0:x1], padded with `fill` where the box leaves the image."""
    h, w = image.shape
    if x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h:
        return image[y0:y1, x0:x1]
    out = np.full((max(0, y1 - y0), max(0, x1 - x0)), fill, image.dtype)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


@dataclass(frozen=True, slots=True)
class Verification:
    score: float  # the worst glyph's correlation (1.0 for an empty value)
    extra: float  # share of the cell's area holding ink the expected text does not explain
    shift: tuple[int, int]  # where the text really is, relative to the layout
    margin: float  # digits: the worst lead of a digit's score over its best rival

    def passes(self, glyph_min: float, extra_max: float, margin_min: float) -> bool:
        return self.score >= glyph_min and self.extra <= extra_max and self.margin > margin_min


def _best(image: np.ndarray, template: np.ndarray) -> tuple[float, tuple[int, int]]:
    result = cv2.matchTemplate(image, template, cv2.TM_CCOEFF_NORMED)
    _, best, _, loc = cv2.minMaxLoc(result)
    return (float(best) if np.isfinite(best) else 0.0), (int(loc[0]), int(loc[1]))


@lru_cache(maxsize=4096)
def _glyph_alone(
    path: str, size_px: float, char: str, fx: float, fy: float, w: int, h: int, sigma: float
) -> np.ndarray:
    """One glyph drawn alone into a w × h box at the sub-pixel spot (fx, fy), as ink,
    blurred like the templates (float32)."""
    image = Image.new("L", (w, h), 255)
    ImageDraw.Draw(image).text((fx, fy), char, font=font(path, size_px), fill=0, anchor="lm")
    ink = 255 - np.asarray(image, dtype=np.uint8)
    out: np.ndarray = cv2.GaussianBlur(ink, (0, 0), sigma).astype(np.float32)
    out.flags.writeable = False
    return out


def verify_value(
    ink: np.ndarray,
    ink_smooth: np.ndarray,
    layout: Layout,
    cells: FieldCells,
    text: str,
    blur_px: float = SHARP_BLUR,
) -> Verification:
    """Does the photo's value cell show `text`? `ink` is the straightened page's ink map,
    `ink_smooth` the same blurred (σ 1 px), `blur_px` the page's own blur (markers): the
    templates are blurred to match, so a soft photo verifies as well as a sharp one."""
    sigma = template_sigma(blur_px)
    x0, y0, x1, y1 = cells.value_box
    search, inset, local = layout.px(1.5), layout.px(0.9), layout.px(0.4)
    lines = value_lines(layout, cells, text)
    template = 255 - np.asarray(render_value_cell(layout, cells, lines), dtype=np.uint8)
    # Where the photo's ink is explained by a matched glyph, in cell coordinates.
    explained = np.zeros_like(template)
    dx = dy = 0
    score = margin = 1.0
    if lines:
        smooth = cv2.GaussianBlur(template, (0, 0), sigma)
        mask = cv2.dilate((template > 40).astype(np.uint8), np.ones((5, 5), np.uint8))
        ys, xs = np.nonzero(template > 40)
        tx0, tx1 = int(xs.min()) - 3, int(xs.max()) + 4
        ty0, ty1 = int(ys.min()) - 3, int(ys.max()) + 4
        region = crop(
            ink_smooth, x0 + tx0 - search, y0 + ty0 - search, x0 + tx1 + search, y0 + ty1 + search
        )
        _, (bx, by) = _best(region, crop(smooth, tx0, ty0, tx1, ty1))
        dx, dy = bx - search, by - search
        for line in lines:
            # Follow the line glyph by glyph: rasterising at another dpi, the printer and
            # the paper's bend all let glyphs drift a little along a long line.
            ox, oy = dx, dy
            gy0 = int(line.y_mid - 0.62 * line.size_px)
            gy1 = int(line.y_mid + 0.62 * line.size_px) + 1
            for k, char in enumerate(line.text):
                gx0, gx1 = int(line.glyph_x[k]) - 1, int(np.ceil(line.glyph_x[k + 1])) + 1
                if char.isspace() or int(template[gy0:gy1, gx0:gx1].max(initial=0)) < 60:
                    continue
                patch = crop(
                    ink_smooth,
                    x0 + gx0 + ox - local,
                    y0 + gy0 + oy - local,
                    x0 + gx1 + ox + local,
                    y0 + gy1 + oy + local,
                )
                g, (lx, ly) = _best(patch, crop(smooth, gx0, gy0, gx1, gy1))
                if char in DIGITS and cells.field.read_kind == "digits":
                    # A digit must also look more like itself than like any other digit:
                    # 8 against 6 or 3 correlates almost as well as 8 against 8.
                    fx, fy = line.glyph_x[k] - gx0, line.y_mid - gy0

                    # Each rival is the expected crop with this digit swapped for it,
                    # so every candidate carries the same neighbours' edges (which a
                    # blur spreads into the crop): only the digit itself is compared.
                    spot = (round(fx, 1), round(fy, 1), gx1 - gx0, gy1 - gy0, sigma)
                    own = _glyph_alone(layout.font_path, line.size_px, char, *spot)
                    context = crop(smooth, gx0, gy0, gx1, gy1).astype(np.float32) - own
                    patch_f = patch.astype(np.float32)
                    rival = max(
                        _best(
                            patch_f,
                            context + _glyph_alone(layout.font_path, line.size_px, d, *spot),
                        )[0]
                        for d in DIGITS
                        if d != char
                    )
                    margin = min(margin, g - rival)
                score = min(score, g)
                if g > 0.5:
                    ox, oy = ox + lx - local, oy + ly - local
                _paste_or(explained, crop(mask, gx0, gy0, gx1, gy1), gx0 + ox - dx, gy0 + oy - dy)

    # Unexplained ink is looked for on the smoothed map: the grain of a dim photo crosses
    # INK_LEVEL in single pixels, a stroke the text does not explain in whole runs.
    cell = crop(ink_smooth, x0 + inset + dx, y0 + inset + dy, x1 - inset + dx, y1 - inset + dy)
    inside = explained[inset : y1 - y0 - inset, inset : x1 - x0 - inset]
    unexplained = (cell >= INK_LEVEL) & (inside == 0)
    extra = float(np.count_nonzero(unexplained)) / max(1, cell.size)
    return Verification(score, extra, (dx, dy), margin)


def _paste_or(canvas: np.ndarray, piece: np.ndarray, x: int, y: int) -> None:
    h, w = canvas.shape
    px0, py0 = max(0, -x), max(0, -y)
    cx0, cy0 = max(0, x), max(0, y)
    cx1, cy1 = min(w, x + piece.shape[1]), min(h, y + piece.shape[0])
    if cx1 > cx0 and cy1 > cy0:
        canvas[cy0:cy1, cx0:cx1] |= piece[py0 : py0 + cy1 - cy0, px0 : px0 + cx1 - cx0]

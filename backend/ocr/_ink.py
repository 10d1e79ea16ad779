"""Ink in a box that prints empty (a correction cell, the signature and date boxes)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from ._layout import Box, Layout
from ._verify import crop

# On the smoothed ink map (0 paper … 255 black, σ 1 px): ≥ 18 % darker than the paper.
# Smoothing first keeps the sensor noise of a dim photo (single dark pixels) out, while a
# pen or even a faint pencil stroke, a few pixels wide, keeps most of its darkness.
HANDWRITING_LEVEL = 45
CLEAN_BLUR = 1.0  # marker_blur() of a sharp photo (layout pixels); the level above is for it
FAINT_STROKE_PX = 2.0  # a faint pencil stroke's width, layout pixels (0.25 mm at 200 dpi)


def stroke_peak(blur_px: float, smoothing: float = 1.0) -> float:
    """How much of a thin stroke's darkness survives a blur of `blur_px` (σ, layout
    pixels) plus the ink map's own smoothing (σ 1): the peak of a
    bar of width FAINT_STROKE_PX convolved with a Gaussian."""
    sigma = math.hypot(max(blur_px, 0.0), smoothing)
    return math.erf(FAINT_STROKE_PX / (2 * math.sqrt(2) * sigma))


def box_noise(
    ink_smooth: np.ndarray, layout: Layout, blur_px: float = CLEAN_BLUR
) -> dict[str, float]:
    """The darkness that noise alone reaches on blank paper in each correction box: the
    99.9th percentile of its middle on the smoothed ink map, clear of the rules. About
    3–10 on a good photo; dim, grainy photos reach 20–70. A written box reads high."""
    inset = layout.px(1.5) + round(3 * max(0.0, blur_px - CLEAN_BLUR))
    tails = {}
    for cells in layout.fields:
        x0, y0, x1, y1 = cells.correction_box
        # The middle of the box: where a bent sheet moves the box, its rules stay out.
        ix, iy = max(inset, (x1 - x0) // 10), max(inset, (y1 - y0) // 4)
        inner = crop(ink_smooth, x0 + ix, y0 + iy, x1 - ix, y1 - iy)[::2, ::2]
        flat = inner.ravel()
        k = int(0.999 * (flat.size - 1))
        tails[cells.code] = float(np.partition(flat, k)[k])
    return tails


def local_noise(tails: dict[str, float], layout: Layout, neighbours: int = 8) -> dict[str, float]:
    """Each box's paper noise from its nearest boxes (the lower quartile of their tails):
    the light, and so the grain, varies across a dim photo, and the box's own tail would
    count its handwriting as noise, as would a median where corrections sit side by side."""
    codes = list(tails)
    centres = np.array(
        [
            ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
            for b in (layout.cells(c).correction_box for c in codes)
        ]
    )
    values = np.array([tails[c] for c in codes])
    out = {}
    for i, code in enumerate(codes):
        distance = np.hypot(*(centres - centres[i]).T)
        distance[i] = np.inf
        out[code] = float(np.percentile(values[np.argsort(distance)[:neighbours]], 25))
    return out


# The line map (along_strokes): the ink map averaged along short lines, in LINE_ANGLES
# directions, the best kept. A pen or pencil stroke runs along one of them and keeps its
# darkness (LINE_KEEP of it where it curves or runs between two directions); sensor grain
# is averaged over LINE_PX pixels and falls. A reader's eye does the same.
LINE_PX = 9
LINE_ANGLES = 8
LINE_KEEP = 0.9


def _line_kernels() -> list[np.ndarray]:
    kernels = []
    for k in range(LINE_ANGLES):
        bar = np.zeros((LINE_PX, LINE_PX), np.float32)
        bar[LINE_PX // 2, :] = 1.0
        turn = cv2.getRotationMatrix2D((LINE_PX // 2, LINE_PX // 2), 180.0 * k / LINE_ANGLES, 1.0)
        kernel: np.ndarray = cv2.warpAffine(bar, turn, (LINE_PX, LINE_PX), flags=cv2.INTER_LINEAR)
        kernels.append(kernel / kernel.sum())
    return kernels


_LINES = _line_kernels()


def along_strokes(ink_smooth: np.ndarray) -> np.ndarray:
    """The smoothed ink map averaged along lines of LINE_PX pixels, the darkest direction
    at each pixel (≈ 60 ms for a page)."""
    out = np.zeros_like(ink_smooth)
    for kernel in _LINES:
        np.maximum(out, cv2.filter2D(ink_smooth, -1, kernel), out=out)
    return out


def speck_px(noise: float) -> int:
    """Dark specks this small (pixels) are noise on this photo; 0 for a clean one."""
    return SPECK_PX if noise >= GRAINY_NOISE else 0


def handwriting_level(
    blur_px: float, noise: float, smoothing: float = 1.0, keep: float = 1.0
) -> float:
    """The darkness (smoothed ink map) that counts as handwriting in this photo: lowered
    as blur spreads a faint stroke (it keeps the same share of its peak), and kept above
    what noise alone reaches on blank paper. `keep`: the share of a stroke's darkness the
    map keeps beyond what blur and smoothing take (LINE_KEEP on the line map)."""
    for_blur = keep * HANDWRITING_LEVEL * stroke_peak(blur_px, smoothing) / stroke_peak(CLEAN_BLUR)
    return max(for_blur, NOISE_FACTOR * noise + NOISE_MARGIN)


def faint_stroke_level(blur_px: float, smoothing: float = 1.0, keep: float = 1.0) -> float:
    """What the faintest pencil stroke a reader must notice reaches on the smoothed ink
    map at this blur (benchmark: about 60 on a sharp photo)."""
    return keep * FAINT_PEAK * stroke_peak(blur_px, smoothing) / stroke_peak(CLEAN_BLUR)


FAINT_PEAK = 60.0
NOISE_FACTOR = 1.1
NOISE_MARGIN = 3.0
GRAINY_NOISE = 12.0
SPECK_PX = 12


def _rule(profile: np.ndarray, expected: int, reach: int, inner: int) -> int:
    """The inner edge of the printed rule nearest `expected` in a projection (share of
    dark pixels per row or column); `inner` is +1 when the box lies after the rule."""
    lo, hi = max(0, expected - reach), min(len(profile), expected + reach)
    found = [i for i in range(lo, hi) if profile[i] >= 0.3]
    if not found:
        return expected
    return max(found) + 1 if inner > 0 else min(found)


def _offset(profile: np.ndarray, reach: int, size: int, limit: int) -> int:
    """The offset (within ±limit) that puts two rules `size` apart on the profile's
    strongest pair of peaks, the box's rules expected at `reach` and `reach + size`;
    0 when no rules show."""
    best, best_d = 0.0, 0
    peak = np.maximum(profile, np.maximum(np.roll(profile, 1), np.roll(profile, -1)))
    for d in range(-limit, limit + 1):
        a, b = reach + d, reach + size + d
        if a >= 0 and b < len(peak):
            score = float(peak[a] + peak[b])
            if score > best:
                best, best_d = score, d
    return best_d if best >= 0.6 else 0


def ink_share(
    ink_smooth: np.ndarray,
    layout: Layout,
    box: Box,
    shift: tuple[int, int] = (0, 0),
    *,
    level: float = HANDWRITING_LEVEL,
    blur_px: float = CLEAN_BLUR,
    speck_px: int = 0,
) -> float:
    """Share of the box's inside that is dark on the smoothed ink map, its printed rules
    left out.

    The rules are found, not assumed: where the sheet bends, a box can sit a couple of
    millimetres from where the straightened page puts it, and a rule inside the measured
    area reads as handwriting. The box is first found by its rules' projections, then
    measured in vertical strips of about a centimetre, each between its own top and
    bottom rule, so a rule that runs slightly askew is still left out. `level` is the
    darkness that counts (see handwriting_level()), `blur_px` the page's blur; with
    `speck_px`, dark specks smaller than that many pixels are noise.
    """
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    reach = layout.px(3.0)
    sx, sy = shift
    region = crop(ink_smooth, x0 - reach + sx, y0 - reach + sy, x1 + reach + sx, y1 + reach + sy)
    dark = region >= level
    if speck_px:
        # A grainy photo: noise crosses the level in specks of a few pixels, a pen or
        # pencil stroke in long runs. Drop the specks.
        _, labels, stats, _ = cv2.connectedComponentsWithStats(
            dark.astype(np.uint8), connectivity=8
        )
        keep = stats[:, cv2.CC_STAT_AREA] >= speck_px
        keep[0] = False
        dark = keep[labels]
    # A blurred rule spreads: keep a wider gap from it (3σ beyond a sharp photo's).
    m = layout.px(0.8)
    gap = layout.px(0.4) + round(3 * max(0.0, blur_px - CLEAN_BLUR))
    dy = _offset(dark[:, reach + w // 10 : reach + w - w // 10].mean(axis=1), reach, h, reach - m)
    dx = _offset(dark[reach + h // 5 : reach + h - h // 5, :].mean(axis=0), reach, w, reach - m)
    dark = dark[reach + dy - m : reach + dy + h + m, reach + dx - m : reach + dx + w + m]
    columns = dark[m : m + h].mean(axis=0)
    left = _rule(columns, m, m, +1) + gap
    right = _rule(columns, m + w, m, -1) - gap
    strips = max(1, round(w / layout.px(10)))
    inked = area = 0
    for i in range(strips):
        a = left + (right - left) * i // strips
        b = left + (right - left) * (i + 1) // strips
        rows = dark[:, a:b].mean(axis=1)
        top = _rule(rows, m, m, +1) + gap
        bottom = _rule(rows, m + h, m, -1) - gap
        inked += int(np.count_nonzero(dark[top:bottom, a:b]))
        area += max(0, bottom - top) * max(0, b - a)
    return inked / max(1, area)


def crop_png(page: np.ndarray, layout: Layout, box: Box) -> bytes:
    """A PNG of the box (with a millimetre around it) from the straightened page."""
    x0, y0, x1, y1 = box
    m = layout.px(1.0)
    ok, png = cv2.imencode(".png", crop(page, x0 - m, y0 - m, x1 + m, y1 + m, fill=255))
    if not ok:
        raise ValueError("could not encode a crop")
    return png.tobytes()

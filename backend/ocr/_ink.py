"""Ink in a box that prints empty (a correction cell, the signature and date boxes)."""

from __future__ import annotations

import cv2
import numpy as np

from ._layout import Box, Layout
from ._verify import crop

# On the smoothed ink map (0 paper … 255 black, σ 1 px): ≥ 18 % darker than the paper.
# Smoothing first keeps the sensor noise of a dim photo (single dark pixels) out, while a
# pen or even a faint pencil stroke, a few pixels wide, keeps most of its darkness.
HANDWRITING_LEVEL = 45


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
    ink_smooth: np.ndarray, layout: Layout, box: Box, shift: tuple[int, int] = (0, 0)
) -> float:
    """Share of the box's inside that is dark on the smoothed ink map, its printed rules
    left out.

    The rules are found, not assumed: where the sheet bends, a box can sit a couple of
    millimetres from where the straightened page puts it, and a rule inside the measured
    area reads as handwriting. The box is first found by its rules' projections, then
    measured in vertical strips of about a centimetre, each between its own top and
    bottom rule, so a rule that runs slightly askew is still left out.
    """
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    reach = layout.px(3.0)
    sx, sy = shift
    region = crop(ink_smooth, x0 - reach + sx, y0 - reach + sy, x1 + reach + sx, y1 + reach + sy)
    dark = region >= HANDWRITING_LEVEL
    m, gap = layout.px(0.8), layout.px(0.4)
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

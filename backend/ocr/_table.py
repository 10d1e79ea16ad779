"""A form without our marks: the sheet found by its edges against the desk, straightened
onto an A4 canvas, and its table found by its ruling lines, cell by cell."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ._layout import Box
from ._verify import ink_map

DPI = 200
CANVAS = (1654, 2339)  # A4 portrait at DPI
RULE_INK = 40  # ink map level of a ruling line
TABLE_MM = 180.0  # a table's width on the canvas


def mm(value: float) -> int:
    return round(value * DPI / 25.4)


@dataclass(frozen=True, slots=True)
class Sheet:
    corners: np.ndarray  # 4×2, full-photo pixels: top-left, top-right, bottom-right, bottom-left
    scale: float  # photo pixels per canvas pixel
    touches_frame: bool  # runs into the photo's edge: maybe cut off, or only close


def find_sheet(full: np.ndarray, small: np.ndarray) -> Sheet | None:
    """The sheet's four corners, or None when there is no sheet in the photo. The
    paper is the largest bright region; its outline, reduced to four corners, is the page
    (portrait: the long sides are its height, the top still ambiguous by 180°)."""
    f = 480 / max(small.shape)
    tiny = cv2.resize(small, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    tiny = cv2.GaussianBlur(tiny, (0, 0), 1)
    _, bright = cv2.threshold(tiny, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    contours, _ = cv2.findContours(bright, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    outline = max(contours, key=cv2.contourArea)
    h, w = tiny.shape
    if cv2.contourArea(outline) < 0.15 * h * w:
        return None
    hull = cv2.convexHull(outline)
    quad = None
    for eps in (0.01, 0.02, 0.03, 0.05):
        approx = cv2.approxPolyDP(hull, eps * cv2.arcLength(hull, True), True)
        if len(approx) == 4:
            quad = approx.reshape(4, 2).astype(np.float32)
            break
    if quad is None:
        quad = cv2.boxPoints(cv2.minAreaRect(hull)).astype(np.float32)
    # A cut-off sheet runs into the frame along a stretch of its edge; one that merely
    # comes close touches it nowhere (or, blurred, at a corner).
    sheet = np.zeros_like(bright)
    cv2.drawContours(sheet, [hull], -1, 255, -1)
    edges = (sheet[0], sheet[-1], sheet[:, 0], sheet[:, -1])
    touches = any(np.count_nonzero(edge) > 0.15 * edge.size for edge in edges)
    quad = _order(quad)
    full_quad = quad * (full.shape[1] / w)
    side = [float(np.linalg.norm(full_quad[i] - full_quad[(i + 1) % 4])) for i in range(4)]
    if side[0] + side[2] > side[1] + side[3]:
        # Landscape in the photo: the sheet lies sideways; its top is the left side.
        full_quad = np.roll(full_quad, -1, axis=0)
        side = side[1:] + side[:1]
    scale = (side[1] + side[3]) / 2 / CANVAS[1]
    return Sheet(full_quad, scale, touches)


def _order(quad: np.ndarray) -> np.ndarray:
    """Corners clockwise from the top-left one."""
    centre = quad.mean(axis=0)
    angles = np.arctan2(quad[:, 1] - centre[1], quad[:, 0] - centre[0])
    quad = quad[np.argsort(angles)]  # clockwise in image coordinates, from the left
    start = int(np.argmin(quad.sum(axis=1)))
    return np.roll(quad, -start, axis=0)


def table_corners(small: np.ndarray) -> np.ndarray | None:
    """The outer corners of the biggest ruled table in the (small) photo, unordered: the
    largest connected set of dark lines, reduced to four corners."""
    ink = ink_map(small)
    dark = (ink >= 45).astype(np.uint8)
    # Lines and strokes only: the desk around the sheet is dark too, but wide.
    wide = cv2.morphologyEx(dark, cv2.MORPH_OPEN, np.ones((7, 7), np.uint8))
    dark = np.where(wide > 0, 0, dark).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    if count < 2:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_WIDTH] * stats[1:, cv2.CC_STAT_HEIGHT]))
    x, y, w, h = (int(v) for v in stats[best, :4])
    if w * h < 0.05 * small.shape[0] * small.shape[1]:
        return None
    mask = (labels[y : y + h, x : x + w] == best).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(max(contours, key=cv2.contourArea))
    for eps in (0.01, 0.02, 0.03, 0.05):
        approx = cv2.approxPolyDP(hull, eps * cv2.arcLength(hull, True), True)
        if len(approx) == 4:
            corners: np.ndarray = approx.reshape(4, 2).astype(np.float32) + np.array(
                [x, y], np.float32
            )
            return corners
    return None


def sheet_transform(
    sheet: Sheet, table: np.ndarray | None, upside_down: bool
) -> tuple[np.ndarray, Box | None]:
    """Photo → canvas: the sheet's corners onto A4, then, when the table's corners were
    found, corrected so the table comes out an upright rectangle (the table's rules are
    sharper than the sheet's edge, which a shadow or a bend can move)."""
    corners = np.roll(sheet.corners, 2, axis=0) if upside_down else sheet.corners
    target = np.array(
        [[0, 0], [CANVAS[0], 0], [CANVAS[0], CANVAS[1]], [0, CANVAS[1]]], dtype=np.float32
    )
    h = cv2.getPerspectiveTransform(corners.astype(np.float32), target)
    if table is None:
        return h, None
    # The table's own width, not the sheet's, sets the scale (a shadow or a bend moves
    # a sheet corner): tables of other systems are 170–190 mm wide; read as 180.
    mapped = cv2.perspectiveTransform(table.reshape(-1, 1, 2).astype(np.float64), h).reshape(4, 2)
    order = _order(mapped.astype(np.float32))
    back = cv2.perspectiveTransform(
        order.reshape(-1, 1, 2).astype(np.float64), np.linalg.inv(h)
    ).reshape(4, 2)
    # The table's shape from the photo itself (the sheet's corners only say which way is
    # up: a shadow or a bend can move one), its width set to TABLE_MM.
    width = (np.linalg.norm(back[1] - back[0]) + np.linalg.norm(back[2] - back[3])) / 2
    height = (np.linalg.norm(back[3] - back[0]) + np.linalg.norm(back[2] - back[1])) / 2
    if width < 1 or height < 1:
        return h, None
    x0, x1 = (CANVAS[0] - mm(TABLE_MM)) / 2, (CANVAS[0] + mm(TABLE_MM)) / 2
    tall = mm(TABLE_MM) * height / width
    if tall < mm(40) or tall > CANVAS[1] - mm(20):
        return h, None
    top = (order[0, 1] + order[1, 1]) / 2
    y0 = min(max(float(top), mm(10)), max(mm(10), CANVAS[1] - mm(35) - float(tall)))
    y1 = y0 + tall
    rect = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)
    out: np.ndarray = cv2.getPerspectiveTransform(back.astype(np.float32), rect)
    return out, (round(x0), round(y0), round(x1), round(y1))


def straighten_sheet(full: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The photo warped onto the canvas by `h` (from sheet_transform)."""
    page: np.ndarray = cv2.warpPerspective(
        full, h, CANVAS, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )
    return page


@dataclass(frozen=True, slots=True)
class Table:
    box: Box
    rows: tuple[tuple[Box, ...], ...]  # cells, rows top to bottom, each left to right
    rules: np.ndarray  # the ruling lines' mask (canvas)
    outline: np.ndarray  # the outer frame's four corners (canvas), unordered
    underlines: tuple[Box, ...]  # long lines below the table (a footer's blanks)


def find_table(ink: np.ndarray, near: Box | None = None) -> Table | None:
    """The table's cells from its ruling lines (`ink`: the straightened page's ink map,
    the desk around the sheet set to 0); `near`, where the table should be."""
    dark = (ink >= RULE_INK).astype(np.uint8)
    horizontal = cv2.morphologyEx(dark, cv2.MORPH_OPEN, np.ones((1, mm(9)), np.uint8))
    vertical = cv2.morphologyEx(dark, cv2.MORPH_OPEN, np.ones((mm(5), 1), np.uint8))
    # A rule is thin: what stays dark over 2 mm across is a shaded cell or a shadow.
    thick_h = cv2.morphologyEx(horizontal, cv2.MORPH_OPEN, np.ones((mm(2), 1), np.uint8))
    thick_v = cv2.morphologyEx(vertical, cv2.MORPH_OPEN, np.ones((1, mm(2)), np.uint8))
    horizontal = np.where(thick_h > 0, 0, horizontal).astype(np.uint8)
    vertical = np.where(thick_v > 0, 0, vertical).astype(np.uint8)
    # Bridge what a soft or bent photo breaks, along each line only.
    horizontal = cv2.dilate(horizontal, np.ones((3, mm(2)), np.uint8))
    vertical = cv2.dilate(vertical, np.ones((mm(2), 3), np.uint8))
    rules: np.ndarray = np.bitwise_or(horizontal, vertical)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(rules, connectivity=8)
    if count < 2:
        return None
    size = stats[1:, cv2.CC_STAT_WIDTH] * stats[1:, cv2.CC_STAT_HEIGHT]
    if near is not None:
        nx0, ny0, nx1, ny1 = near
        ox = np.clip(
            np.minimum(stats[1:, 0] + stats[1:, 2], nx1) - np.maximum(stats[1:, 0], nx0), 0, None
        )
        oy = np.clip(
            np.minimum(stats[1:, 1] + stats[1:, 3], ny1) - np.maximum(stats[1:, 1], ny0), 0, None
        )
        # The table is the set of rules whose outline agrees with the table's corners
        # (the sheet's own edge, seen as a line around everything, does not).
        union = size + (nx1 - nx0) * (ny1 - ny0) - ox * oy
        size = ox * oy / np.maximum(union, 1)
    grid = 1 + int(np.argmax(size))
    x, y, w, h = (int(v) for v in stats[grid, :4])
    if w < mm(60) or h < mm(40):
        return None
    mask = (labels == grid).astype(np.uint8)
    inside = 1 - mask[y : y + h, x : x + w]
    n, _, cell_stats, _ = cv2.connectedComponentsWithStats(inside, connectivity=4)
    cells: list[Box] = []
    for i in range(1, n):
        cx, cy, cw, ch, area = (int(v) for v in cell_stats[i])
        if cw < mm(4) or ch < mm(4) or area < 0.5 * cw * ch:
            continue
        if cx == 0 or cy == 0 or cx + cw >= w or cy + ch >= h:
            continue  # outside the outer frame
        cells.append((x + cx, y + cy, x + cx + cw, y + cy + ch))
    if len(cells) < 4:
        return None
    rows = _rows(cells)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(max(contours, key=cv2.contourArea))
    outline = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)
    for eps in (0.01, 0.02, 0.04):
        approx = cv2.approxPolyDP(hull, eps * cv2.arcLength(hull, True), True)
        if len(approx) == 4:
            outline = approx.reshape(4, 2).astype(np.float32) + np.array([x, y], np.float32)
            break
    lines = []
    n, _, line_stats, _ = cv2.connectedComponentsWithStats(horizontal, connectivity=8)
    for i in range(1, n):
        lx, ly, lw, lh = (int(v) for v in line_stats[i, :4])
        if ly > y + h + mm(2) and lw >= mm(20) and lh <= mm(3):
            lines.append((lx, ly, lx + lw, ly + lh))
    return Table((x, y, x + w, y + h), rows, rules, outline, tuple(sorted(lines)))


def _rows(cells: list[Box]) -> tuple[tuple[Box, ...], ...]:
    """Cells grouped into rows: a cell joins the row whose first cell it overlaps by more
    than half its height."""
    rows: list[list[Box]] = []
    for cell in sorted(cells, key=lambda b: (b[1] + b[3]) / 2):
        for row in rows:
            top, bottom = row[0][1], row[0][3]
            overlap = min(bottom, cell[3]) - max(top, cell[1])
            if overlap > 0.5 * min(bottom - top, cell[3] - cell[1]):
                row.append(cell)
                break
        else:
            rows.append([cell])
    return tuple(tuple(sorted(row)) for row in sorted(rows, key=lambda r: r[0][1]))


def rule_blur(ink: np.ndarray, table: Table) -> float:
    """How soft the page is: σ (canvas pixels) of the table's rules' cross profiles (a
    thin line of width w blurred by σ spreads to √(σ² + w²/12)), horizontal and vertical
    rules apart and the softer counts: a shake smears across one direction only."""
    reach = mm(1.6)
    across_rows, across_columns = [], []
    for row in table.rows[1:]:
        for x0, y0, x1, y1 in row[:3]:
            if x1 - x0 >= mm(8):
                a = x0 + (x1 - x0) // 3
                strip = ink[max(0, y0 - reach * 2) : y0 + reach, a : a + mm(6)]
                across_rows.append(_spread(strip.astype(np.float32).mean(axis=1), reach))
            if y1 - y0 >= mm(6):
                b = y0 + (y1 - y0) // 3
                strip = ink[b : b + (y1 - y0) // 3, max(0, x0 - reach * 2) : x0 + reach]
                across_columns.append(_spread(strip.astype(np.float32).mean(axis=0), reach))
    found = [
        float(np.median([v for v in spreads if v is not None]))
        for spreads in (across_rows, across_columns)
        if any(v is not None for v in spreads)
    ]
    return max(found) if found else float("inf")


def _spread(profile: np.ndarray, reach: int) -> float | None:
    """The spread (σ) of the darkest line in a profile across it; None when none shows."""
    if len(profile) < 2 * reach:
        return None
    peak = int(np.argmax(profile))
    if profile[peak] < 40:
        return None
    lo, hi = max(0, peak - reach), min(len(profile), peak + reach + 1)
    window = np.clip(profile[lo:hi] - np.percentile(profile, 10), 0, None)
    total = float(window.sum())
    if total <= 0:
        return None
    pos = np.arange(lo, hi)
    mean = float((window * pos).sum() / total)
    return float(np.sqrt((window * (pos - mean) ** 2).sum() / total))


def page_ink(page: np.ndarray) -> np.ndarray:
    return ink_map(page)

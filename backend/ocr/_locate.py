"""Find the page in a photo: the QR code first (it carries the token and tells which way
is up), then the four solid corner squares near where the QR predicts them; their centres
give the perspective transform that straightens the page onto the layout's pixels."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np
import zxingcpp

from ._layout import Box, Layout

_QR = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
RETRY_SIDE = 2400
# A printed marker, even leaning 25° or turned, fills this much of its bounding box; the
# blobs a soft photo makes of glyphs fill less.
SOLID_FILL = 0.75  # the long side of the copy a QR code missed on the small copy is sought on


@dataclass(frozen=True, slots=True)
class PageFound:
    token: str
    to_photo: np.ndarray  # 3×3 homography: layout pixels → full-resolution photo pixels
    photo_px_per_layout_px: float


@dataclass(frozen=True, slots=True)
class PageMissing:
    reason: str  # "qr" or "marker"
    detail: str


def _centre(box: Box) -> tuple[float, float]:
    x0, y0, x1, y1 = box
    return ((x0 + x1) / 2, (y0 + y1) / 2)


def _corners(box: Box) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


def _project(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    out: np.ndarray = cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), h)
    return out.reshape(-1, 2)


def read_qr(small: np.ndarray) -> tuple[str, np.ndarray] | None:
    """The first QR code's text and its four corners (top-left, top-right, bottom-right,
    bottom-left of the symbol, whatever its rotation in the photo)."""
    found = zxingcpp.read_barcodes(small, formats=_QR, try_invert=False)
    if not found:
        found = zxingcpp.read_barcodes(
            small, formats=_QR, try_invert=False, binarizer=zxingcpp.Binarizer.GlobalHistogram
        )
    for code in found:
        if code.valid and code.text:
            p = code.position
            pts = [p.top_left, p.top_right, p.bottom_right, p.bottom_left]
            return code.text, np.array([[q.x, q.y] for q in pts], dtype=np.float32)
    return None


def _square_blobs(small: np.ndarray, side_px: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres, areas and fill (share of the bounding box) of solid dark squares about
    `side_px` wide anywhere in the image."""
    block = int(side_px * 3) | 1
    # Darker than 65 % of the neighbourhood's mean: relative, so a dim photo of a page
    # printed with pale toner still shows its squares.
    local = cv2.blur(small, (block, block))
    dark = (small.astype(np.uint16) * 100 < local.astype(np.uint16) * 65).astype(np.uint8)
    _, _, stats, centroids = cv2.connectedComponentsWithStats(dark, connectivity=8)
    bw, bh, area = stats[:, 2], stats[:, 3], stats[:, 4]
    expected = side_px * side_px
    # The size comes from the QR code: with the phone leaning 25°, a marker on the far
    # side of the page comes out half that wide, one on the near side a third wider.
    # The size comes from the QR code: with the phone leaning 25°, a marker on the far
    # side of the page comes out half that wide, one on the near side twice as wide. Each
    # candidate's size is checked again against the page's homography below.
    keep = (
        (area >= 0.2 * expected)
        & (area <= 5.0 * expected)
        & (np.maximum(bw, bh) <= 3.2 * side_px)
        & (np.minimum(bw, bh) >= 0.35 * side_px)
        # A solid square at any rotation fills at least half of its bounding box.
        & (area >= 0.5 * bw * bh)
    )
    keep[0] = False
    out: np.ndarray = centroids[keep]
    fill = area[keep] / np.maximum(bw[keep] * bh[keep], 1)
    return out, area[keep].astype(np.float64), fill.astype(np.float64)


def _refine(full: np.ndarray, rough: np.ndarray, side_px: float) -> np.ndarray:
    """The marker's centre at full resolution: centroid of the dark blob around `rough`."""
    r = int(side_px * 1.2) + 4
    h, w = full.shape
    x0, y0 = int(max(0, rough[0] - r)), int(max(0, rough[1] - r))
    x1, y1 = int(min(w, rough[0] + r)), int(min(h, rough[1] + r))
    window = full[y0:y1, x0:x1].astype(np.float32)
    white, black = np.percentile(window, 95), np.percentile(window, 3)
    dark = (window < (white + black) / 2).astype(np.uint8)
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(dark, connectivity=8)
    if count < 2:
        return rough
    local = rough - (x0, y0)
    lx = int(np.clip(local[0], 0, x1 - x0 - 1))
    ly = int(np.clip(local[1], 0, y1 - y0 - 1))
    label = labels[ly, lx] or 1 + int(np.argmax(stats[1:, 4]))
    return np.asarray(centroids[label] + (x0, y0))


def _choose(
    layout: Layout,
    blobs: np.ndarray,
    blob_areas: np.ndarray,
    guesses: np.ndarray,
    radius: float,
    qr_small: np.ndarray,
) -> tuple[tuple[int, ...] | None, float]:
    """The four squares (indices into `blobs`), each among the five nearest its marker's
    guess, that put the QR code where it is; and how far off they put it."""
    options = []
    for guess in guesses:
        distance = np.hypot(*(blobs - guess).T) if len(blobs) else np.zeros(0)
        near = [int(i) for i in np.argsort(distance)[:5] if distance[i] <= radius]
        if not near:
            return None, np.inf
        options.append(near)
    layout_centres = np.array([_centre(m) for m in layout.markers], dtype=np.float32)
    qr_layout = _corners(layout.qr_box)
    best, best_err = None, np.inf
    for choice in itertools.product(*options):
        if len(set(choice)) < 4:
            continue
        h = cv2.getPerspectiveTransform(layout_centres, blobs[list(choice)].astype(np.float32))
        # Each square must be as big as the page's perspective says a marker is there.
        predicted = [
            abs(cv2.contourArea(_project(h, _corners(m)).astype(np.float32)))
            for m in layout.markers
        ]
        ratios = blob_areas[list(choice)] / np.maximum(predicted, 1e-6)
        if ratios.min() < 0.5 or ratios.max() > 2.0:
            continue
        err = float(np.abs(_project(h, qr_layout) - qr_small).max())
        if err < best_err:
            best, best_err = choice, err
    return best, best_err


def locate_page(full: np.ndarray, small: np.ndarray, layout: Layout) -> PageFound | PageMissing:
    """Locate the form in a greyscale photo (`small` is `full` shrunk, for speed)."""
    qr = read_qr(small)
    if qr is None and max(full.shape) > RETRY_SIDE:
        # A soft photo: the QR's modules may run together on the small copy and still
        # part on a bigger one (averaged down, not sampled: the grain stays out), or once
        # its edges are steepened again (an unsharp mask).
        f = RETRY_SIDE / max(full.shape)
        bigger = cv2.resize(full, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        qr = read_qr(bigger)
        if qr is None:
            soft = cv2.GaussianBlur(bigger, (0, 0), 1.5)
            qr = read_qr(cv2.addWeighted(bigger, 2.0, soft, -1.0, 0))
        if qr is not None:
            qr = (qr[0], (qr[1] * small.shape[1] / bigger.shape[1]).astype(np.float32))
    if qr is None:
        return PageMissing("qr", "no readable QR code")
    token, qr_small = qr
    scale = full.shape[1] / small.shape[1]
    # An affine guess: a homography from four points this close together extrapolates
    # wildly to the far corners.
    coarse = np.vstack([cv2.estimateAffine2D(_corners(layout.qr_box), qr_small)[0], [0, 0, 1]])
    qr_side_small = float(np.mean(np.linalg.norm(qr_small - np.roll(qr_small, 1, 0), axis=1)))
    px_per_layout = qr_side_small / (layout.qr_box[2] - layout.qr_box[0])
    marker_side = (layout.markers[0][2] - layout.markers[0][0]) * px_per_layout
    guesses = _project(coarse, np.array([_centre(m) for m in layout.markers]))
    blobs, blob_areas, fill = _square_blobs(small, marker_side)
    # The affine guess can be far off at the bottom of a tilted page, so each marker gets
    # its five nearest squares, and the set that puts the QR code where it is wins.
    radius = 0.5 * layout.size[1] * px_per_layout
    best, best_err = _choose(layout, blobs, blob_areas, guesses, radius, qr_small)
    qr_side = (layout.qr_box[2] - layout.qr_box[0]) * px_per_layout
    if best is None or best_err > 0.15 * qr_side:
        # A page leaning far (25°) puts its bottom markers further from the guess than
        # the glyphs of its last rows: look again among the solid squares only, further.
        solid = fill >= SOLID_FILL
        if int(np.count_nonzero(solid)) >= 4:
            best, best_err = _choose(
                layout, blobs[solid], blob_areas[solid], guesses, 2 * radius, qr_small
            )
            blobs = blobs[solid]
    if best is None:
        return PageMissing("marker", "a corner marker is not in the photo")
    if best_err > 0.15 * qr_side:
        return PageMissing("marker", "corner markers disagree with the QR code")
    layout_centres = np.array([_centre(m) for m in layout.markers], dtype=np.float32)
    found = [_refine(full, blobs[i] * scale, marker_side * scale) for i in best]
    to_photo = cv2.getPerspectiveTransform(layout_centres, np.array(found, dtype=np.float32))
    # The QR must land where the markers say it is: otherwise a wrong blob was taken.
    qr_err = np.abs(_project(to_photo, _corners(layout.qr_box)) - qr_small * scale).max()
    if qr_err > 0.15 * (layout.qr_box[2] - layout.qr_box[0]) * px_per_layout * scale:
        return PageMissing("marker", "corner markers disagree with the QR code")
    return PageFound(token, to_photo, px_per_layout * scale)


def straighten(
    full: np.ndarray, found: PageFound, layout: Layout, *, averaged: bool = False
) -> np.ndarray:
    """The page warped onto the layout's pixel grid.

    Each layout pixel is sampled from the photo (bilinear), so where the photo has more
    pixels than the layout, most of them go unused. `averaged`: the photo is first
    shrunk to about the layout's scale by averaging its pixels (area), which keeps every
    stroke and cuts the sensor grain of a dim photo."""
    image, to_photo = full, found.to_photo
    f = 1.0 / found.photo_px_per_layout_px
    if averaged and f < 1.0:
        image = cv2.resize(full, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        to_photo = np.diag([image.shape[1] / full.shape[1], image.shape[0] / full.shape[0], 1.0])
        to_photo = to_photo @ found.to_photo
    page: np.ndarray = cv2.warpPerspective(
        image,
        to_photo,
        layout.size,
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return page

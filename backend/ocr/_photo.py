"""The photo itself: decoding it fast, and how dark and how sharp it is."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ._layout import Layout
from ._report import Quality
from ._verify import crop

# What a photo of a form may be (the service stores uploads as JPEG; the CLI reads the phone's
# files): Pillow never tries its other decoders (TIFF, PSD, EPS via Ghostscript, …) on them.
FORMATS = ("JPEG", "PNG", "WEBP")
SMALL_SIDE = 1600  # the quality checks and the QR search run on a copy this long
MAX_SIDE = 4200  # bigger photos are decoded at a reduced scale (JPEG draft mode)


def decode(photo: bytes) -> np.ndarray:
    """The photo as a greyscale array; JPEGs decode straight to grey, big ones at a
    reduced scale. Raises ValueError for bytes that are no image."""
    try:
        image = Image.open(io.BytesIO(photo), formats=FORMATS)
        w, h = image.size
        scale = min(1.0, MAX_SIDE / max(w, h))
        image.draft("L", (int(w * scale), int(h * scale)))
        grey = np.asarray(image.convert("L"))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ValueError("not an image") from exc
    if max(grey.shape) > MAX_SIDE * 1.5:
        f = MAX_SIDE / max(grey.shape)
        grey = cv2.resize(grey, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    return grey


def quality_of(small: np.ndarray) -> Quality:
    return Quality(
        paper=float(np.percentile(small, 90)),
        sharpness=float(cv2.Laplacian(small, cv2.CV_32F).var()),
    )


def marker_blur(page: np.ndarray, layout: Layout) -> float:
    """How soft the straightened page is: the σ (layout pixels) of a Gaussian blur that
    would give the corner markers' edges their measured steepness. A clean photo gives
    about 0.9; a blur that hides a faint pencil mark, above 2.

    A step of height C blurred by σ has a steepest slope of C / (σ √(2π)); the markers
    are solid squares, so their edges are such steps whatever the page holds. Left and
    right edges are measured apart from top and bottom ones and the softer counts: a shake
    smears across one pair of edges only.
    """
    estimates = []
    m = layout.px(2)
    for x0, y0, x1, y1 in layout.markers:
        square = crop(page, x0 - m, y0 - m, x1 + m, y1 + m, fill=255).astype(np.float32)
        contrast = float(np.percentile(square, 95) - np.percentile(square, 5))
        worst = 0.0
        for dx, dy in ((1, 0), (0, 1)):
            slope = np.abs(cv2.Sobel(square, cv2.CV_32F, dx, dy, ksize=3)) / 8
            steepest = float(np.percentile(slope, 99))
            worst = max(worst, contrast / max(steepest * np.sqrt(2 * np.pi), 1e-6))
        estimates.append(worst)
    return float(np.median(estimates))


def shrink(full: np.ndarray) -> np.ndarray:
    """A copy whose long side is SMALL_SIDE, for the quick checks."""
    f = SMALL_SIDE / max(full.shape)
    if f >= 1:
        return full
    out: np.ndarray = cv2.resize(full, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    return out

"""Synthetic phone photos of a printed form, for tests and the benchmark.

Everything is seeded by the `numpy.random.Generator` passed in::

    rng = np.random.default_rng(7)
    page = write_corrections(render_form(layout, values, header), layout, ["name"], rng)
    page = sign(page, layout, rng)
    jpeg = photograph(page, rng)                 # a usable photo, randomly degraded
    jpeg = photograph(page, rng, blur=4.0)       # one that must be retaken

Each keyword of `photograph` left as None is drawn from the range of a usable photo.
`write_corrections` and `sign` take `ink="black" | "blue" | "pencil"` for an RGB page
written in that colour (default: the grey ink of earlier versions, same pixels).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import cv2
import numpy as np
from PIL import Image, ImageDraw

from ._layout import Box, Layout

Side = Literal["top", "bottom", "left", "right"]
Ink = Literal["black", "blue", "pencil"]
Fill = int | tuple[int, int, int]


def _pen(rng: np.random.Generator, layout: Layout, ink: Ink) -> tuple[Fill, int]:
    """A colour and a stroke width (pixels) for handwriting in `ink` on an RGB page."""
    if ink == "blue":  # a blue ballpoint or gel pen
        colour: Fill = (
            int(rng.integers(10, 70)),
            int(rng.integers(30, 100)),
            int(rng.integers(120, 210)),
        )
        return colour, max(2, layout.px(_f(rng, 0.3, 0.6)))
    if ink == "pencil":
        v = int(rng.integers(80, 140))
        return (v, v, v), max(2, layout.px(_f(rng, 0.25, 0.4)))
    v = int(rng.integers(10, 90))
    return (v, v, v), max(2, layout.px(_f(rng, 0.35, 0.6)))


def _f(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _bend(page: np.ndarray, amplitude_px: float) -> np.ndarray:
    """A sheet that bows: rows sag by up to `amplitude_px` in the middle of the page."""
    h, w = page.shape[:2]
    xs = np.arange(w, dtype=np.float32)
    ys = np.arange(h, dtype=np.float32)
    u = (2 * xs / (w - 1) - 1) ** 2
    v = (2 * ys / (h - 1) - 1) ** 2
    map_x = np.broadcast_to(xs[None, :], (h, w)).astype(np.float32)
    map_y = (ys[:, None] + amplitude_px * (1 - u[None, :]) * (0.6 + 0.4 * v[:, None])).astype(
        np.float32
    )
    return cv2.remap(page, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def print_page(page: Image.Image, *, scale: float = 1.0, toner: float = 1.0) -> Image.Image:
    """The sheet a printer makes of `page`: shrunk by "fit to page" (`scale` < 1, about
    the centre) and with `toner` < 1 printing black as grey."""
    grey = page if page.mode == "RGB" else page.convert("L")
    if toner != 1.0:
        grey = grey.point(lambda v: round(255 - (255 - v) * toner))
    if scale != 1.0:
        w, h = grey.size
        small = grey.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS)
        sheet = Image.new(grey.mode, (w, h), (255, 255, 255) if grey.mode == "RGB" else 255)
        sheet.paste(small, ((w - small.width) // 2, (h - small.height) // 2))
        grey = sheet
    return grey


def photograph(
    page: Image.Image,
    rng: np.random.Generator,
    *,
    size: tuple[int, int] = (3000, 4000),
    fill: float | None = None,
    rotation: float | None = None,
    tilt: float | None = None,
    bend: float | None = None,
    blur: float | None = None,
    motion: float = 0.0,
    perspective: float = 0.0,
    exposure: float | None = None,
    gradient: float | None = None,
    shadow: float | None = None,
    noise: float | None = None,
    jpeg_quality: int | None = None,
    cut_off: Side | None = None,
    upside_down: bool = False,
) -> bytes:
    """A JPEG "phone photo" of `page` on a desk.

    size: the photo (width, height), 12 MP by default. fill: the page's share of the
    frame's height. rotation: degrees. tilt: perspective, as a share of the page height
    each corner moves. bend: the sheet's bow as a share of its width. blur: Gaussian σ in
    photo pixels. motion: length in photo pixels of a shake in a random direction.
    perspective: degrees the phone leans out of parallel with the sheet (about a random
    axis; the far side comes out smaller). exposure: 1 is well lit, 0.1 is a photo too dark
    to use. gradient: light falling off across the page. shadow: the depth
    of a soft shadow (a hand, a phone). cut_off: push that side of the page out of frame.
    """
    fill = _f(rng, 0.74, 0.9) if fill is None else fill
    rotation = _f(rng, -8, 8) if rotation is None else rotation
    tilt = _f(rng, 0.0, 0.05) if tilt is None else tilt
    bend = _f(rng, 0.0, 0.006) if bend is None else bend
    blur = _f(rng, 0.0, 1.5) if blur is None else blur
    exposure = _f(rng, 0.55, 1.0) if exposure is None else exposure
    gradient = _f(rng, 0.0, 0.35) if gradient is None else gradient
    shadow = (_f(rng, 0.1, 0.4) if rng.random() < 0.4 else 0.0) if shadow is None else shadow
    noise = _f(rng, 1.5, 4.0) if noise is None else noise
    jpeg_quality = int(rng.integers(60, 93)) if jpeg_quality is None else jpeg_quality
    if upside_down:
        rotation += 180

    if page.mode == "RGB":
        bgr = np.ascontiguousarray(np.asarray(page)[:, :, ::-1])
    else:
        grey = np.asarray(page.convert("L"))
        bgr = cv2.merge([grey] * 3)
    ph, pw = bgr.shape[:2]
    if bend > 0:
        bgr = _bend(bgr, bend * pw)
    paper = np.array([0.93, 0.97, 1.0]) * _f(rng, 0.96, 1.0)  # BGR: a warm white
    sheet = cv2.merge(
        [
            cv2.convertScaleAbs(np.ascontiguousarray(bgr[:, :, i]), alpha=float(a))
            for i, a in enumerate(paper)
        ]
    )

    fw, fh = size
    page_h = fill * fh
    page_w = page_h * pw / ph
    angle = np.radians(rotation)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    half = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [page_w / 2, page_h / 2]
    corners = half @ rot.T + rng.normal(0, tilt * page_h / 2, (4, 2))
    if perspective > 0:
        # The sheet leans by `perspective` degrees about an axis through its centre, seen
        # from 1.2 page heights away: the far side shrinks, the near side grows.
        phi = rng.uniform(0, 2 * np.pi)
        normal = np.array([np.cos(phi), np.sin(phi)])
        theta = np.radians(perspective)
        u = corners @ normal
        depth = u * np.sin(theta)
        flat = corners + np.outer(u * (np.cos(theta) - 1), normal)
        distance = 1.2 * page_h
        corners = flat * (distance / (distance + depth))[:, None]
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    if cut_off is None:
        # Shrink until the page is inside the frame with a margin, then place it anywhere.
        span = hi - lo
        scale = min(1.0, 0.97 * fw / span[0], 0.97 * fh / span[1])
        corners *= scale
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        cx = _f(rng, -lo[0] + 0.01 * fw, fw - hi[0] - 0.01 * fw)
        cy = _f(rng, -lo[1] + 0.01 * fh, fh - hi[1] - 0.01 * fh)
    else:
        cx, cy = fw / 2, fh / 2
        out = _f(rng, 0.06, 0.14)
        if cut_off == "top":
            cy = -lo[1] - out * page_h
        elif cut_off == "bottom":
            cy = fh - hi[1] + out * page_h
        elif cut_off == "left":
            cx = -lo[0] - out * page_w
        else:
            cx = fw - hi[0] + out * page_w
    dst = (corners + np.array([cx, cy])).astype(np.float32)
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)

    desk_colour = rng.uniform(40, 170, 3)
    desk = np.empty((fh, fw, 3), np.uint8)
    desk[:] = desk_colour.astype(np.uint8)
    cv2.warpPerspective(
        sheet,
        matrix,
        (fw, fh),
        dst=desk,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_TRANSPARENT,
    )

    # Light: exposure, a linear fall-off, a vignette and maybe a soft shadow, all smooth,
    # so they are made small and enlarged.
    sw, sh = fw // 16, fh // 16
    ys, xs = np.mgrid[0:sh, 0:sw].astype(np.float32)
    direction = rng.normal(size=2)
    direction /= np.linalg.norm(direction)
    ramp = ((xs / sw - 0.5) * direction[0] + (ys / sh - 0.5) * direction[1]) + 0.5
    light = exposure * (1 - gradient * np.clip(ramp, 0, 1))
    light *= 1 - 0.15 * (((xs / sw - 0.5) ** 2 + (ys / sh - 0.5) ** 2) * 2)
    if shadow > 0:
        sx, sy = rng.uniform(0, sw), rng.uniform(0, sh)
        radius = _f(rng, 0.2, 0.45) * sw
        d = np.sqrt((xs - sx) ** 2 + (ys - sy) ** 2) / radius
        light *= 1 - shadow / (1 + np.exp((d - 1) * 6))
    light_u8 = cv2.resize(
        np.clip(light * 255, 0, 255).astype(np.uint8), (fw, fh), interpolation=cv2.INTER_LINEAR
    )
    photo: np.ndarray = cv2.multiply(desk, cv2.merge([light_u8] * 3), scale=1 / 255)

    if blur > 0:
        photo = cv2.GaussianBlur(photo, (0, 0), blur)
    if motion > 0:
        length = max(2, round(motion))
        kernel = np.zeros((length | 1, length | 1), np.float32)
        c = (length | 1) // 2
        a = rng.uniform(0, np.pi)
        dx, dy = np.cos(a) * c, np.sin(a) * c
        cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
        photo = cv2.filter2D(photo, -1, kernel / kernel.sum())
    if noise > 0:
        sigma = noise * (1 + 2 * max(0.0, 0.5 - exposure))
        grain = (rng.standard_normal((fh, fw), dtype=np.float32) * sigma).astype(np.int16)
        photo = cv2.add(photo.astype(np.int16), cv2.merge([grain] * 3), dtype=cv2.CV_8U)
    ok, jpeg = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    assert ok
    return jpeg.tobytes()


def _glyph(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    box: tuple[float, float, float, float],
    width: int,
    ink: Fill,
    strokes: int,
) -> None:
    """A made-up handwritten character: a few short, slightly curved strokes."""
    x0, y0, x1, y1 = box
    for _ in range(strokes):
        a = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        b = a + rng.normal(0, [(x1 - x0) * 0.45, (y1 - y0) * 0.45])
        b = np.clip(b, [x0, y0], [x1, y1])
        mid = (a + b) / 2 + rng.normal(0, (x1 - x0) * 0.08, 2)
        pts = [tuple(a), tuple(mid), tuple(b)]
        draw.line([(float(x), float(y)) for x, y in pts], fill=ink, width=width, joint="curve")


def _scribble_text(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    layout: Layout,
    box: Box,
    chars: int,
    *,
    narrow: bool,
    ink: Fill,
    width: int,
) -> None:
    x0, y0, x1, y1 = box
    margin = layout.px(1.5)
    x0, y0, x1, y1 = x0 + margin, y0 + margin, x1 - margin, y1 - margin
    char_h = min(y1 - y0, layout.px(_f(rng, 4.0, 6.5)))
    char_w = char_h * (0.55 if narrow else 0.95)
    room = int((x1 - x0) // (char_w * 1.05))
    chars = max(1, min(chars, room))
    top = y0 + rng.uniform(0, max(0.0, (y1 - y0) - char_h))
    x = x0 + rng.uniform(0, max(0.0, (x1 - x0) - chars * char_w * 1.05))
    for _ in range(chars):
        _glyph(draw, rng, (x, top, x + char_w, top + char_h), width, ink, int(rng.integers(2, 6)))
        x += char_w * 1.05


def write_corrections(
    page: Image.Image,
    layout: Layout,
    codes: Iterable[str],
    rng: np.random.Generator,
    *,
    faint: bool = False,
    ink: Ink | None = None,
) -> Image.Image:
    """A copy of `page` with handwriting in the correction cells of `codes`. `faint` writes
    a single short character in light pencil, the least a reader must still notice."""
    out = page.convert("RGB" if ink or page.mode == "RGB" else "L").copy()
    draw = ImageDraw.Draw(out)
    for code in codes:
        cells = layout.cells(code)
        narrow = cells.field.read_kind == "digits"
        fill: Fill
        if faint:
            chars, fill, width = 1, int(rng.integers(110, 150)), max(1, layout.px(0.25))
            if out.mode == "RGB":
                fill = (fill, fill, fill)
        else:
            chars = int(rng.integers(6, 19) if narrow else rng.integers(2, 9))
            if ink is None:
                fill, width = int(rng.integers(10, 90)), max(2, layout.px(_f(rng, 0.35, 0.6)))
                if out.mode == "RGB":
                    fill = (fill, fill, fill)
            else:
                fill, width = _pen(rng, layout, ink)
        _scribble_text(
            draw, rng, layout, cells.correction_box, chars, narrow=narrow, ink=fill, width=width
        )
    return out


def sign(
    page: Image.Image,
    layout: Layout,
    rng: np.random.Generator,
    *,
    date: bool = True,
    ink: Ink | None = None,
) -> Image.Image:
    """A copy of `page` with a signature scribble and, unless `date` is False, a date."""
    out = page.convert("RGB" if ink or page.mode == "RGB" else "L").copy()
    draw = ImageDraw.Draw(out)
    fill: Fill
    if ink is None:
        fill = int(rng.integers(10, 90))
        width = max(2, layout.px(_f(rng, 0.35, 0.6)))
        if out.mode == "RGB":
            fill = (fill, fill, fill)
    else:
        fill, width = _pen(rng, layout, ink)
    x0, y0, x1, y1 = layout.signature_box
    m = layout.px(2)
    n = int(rng.integers(6, 14))
    xs = np.linspace(
        x0 + m + rng.uniform(0, (x1 - x0) * 0.2), x1 - m - rng.uniform(0, (x1 - x0) * 0.3), n
    )
    ys = rng.uniform(y0 + m, y1 - m, n)
    t = np.linspace(0, 1, n * 8)
    curve_x = np.interp(t, np.linspace(0, 1, n), xs)
    curve_y = np.interp(t, np.linspace(0, 1, n), ys)
    curve_y += np.sin(t * rng.uniform(10, 30)) * (y1 - y0) * 0.12
    curve_y = np.clip(curve_y, y0 + m, y1 - m)
    draw.line(
        list(zip(curve_x.tolist(), curve_y.tolist(), strict=True)),
        fill=fill,
        width=width,
        joint="curve",
    )
    if date:
        _scribble_text(
            draw,
            rng,
            layout,
            layout.date_box,
            int(rng.integers(6, 10)),
            narrow=True,
            ink=fill,
            width=width,
        )
    return out

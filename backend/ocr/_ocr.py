"""The OCR engines for a cell whose printed value did not verify.

Digits (ID numbers, dates, phones): Tesseract kept in-process by tesserocr, one line or
block, whitelist `0-9 X -`. Chinese: RapidOCR (PP-OCRv4 on onnxruntime, models inside the
wheel), which read Chinese names far better than Tesseract's chi_sim in our measurements.

Neither engine object may be shared between threads, so each thread gets its own, made
on first use (`warm_up()` makes them ahead of time). ONNX runs one thread per call: run
forms in parallel, not one form on many threads.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import cv2
import numpy as np
from PIL import Image

from .exceptions import EngineUnavailable

TESSDATA_CANDIDATES = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
)
DIGIT_WHITELIST = "0123456789X-"


def tessdata_dir() -> str:
    prefix = os.environ.get("TESSDATA_PREFIX")
    for candidate in (prefix,) if prefix else TESSDATA_CANDIDATES:
        if candidate and os.path.isfile(os.path.join(candidate, "eng.traineddata")):
            return candidate
    raise EngineUnavailable(
        "no Tesseract language data; install `apt-get install tesseract-ocr tesseract-ocr-chi-sim`"
    )


class _Engines(threading.local):
    tesseract: Any = None
    rapid: Any = None
    whole_page: Any = None


_engines = _Engines()


def _tesseract() -> Any:
    if _engines.tesseract is None:
        import tesserocr  # type: ignore[import-untyped]

        api = tesserocr.PyTessBaseAPI(
            path=tessdata_dir(), lang="eng", psm=tesserocr.PSM.SINGLE_BLOCK
        )
        api.SetVariable("tessedit_char_whitelist", DIGIT_WHITELIST)
        api.SetVariable("load_system_dawg", "0")
        api.SetVariable("load_freq_dawg", "0")
        _engines.tesseract = api
    return _engines.tesseract


def _rapid() -> Any:
    if _engines.rapid is None:
        from rapidocr_onnxruntime import RapidOCR  # type: ignore[import-untyped]

        _engines.rapid = RapidOCR(
            intra_op_num_threads=1, inter_op_num_threads=1, print_verbose=False
        )
    return _engines.rapid


def warm_up() -> None:
    """Load both engines in this thread (≈ 0.5 s) so the first form is not slow."""
    _tesseract()
    _rapid()


def read_digits(cell: np.ndarray) -> tuple[str, float]:
    """Digits in a greyscale cell crop (paper light, ink dark): text and confidence 0–1."""
    api = _tesseract()
    api.SetImage(Image.fromarray(cell))
    text = "".join(api.GetUTF8Text().split())
    return text, max(0.0, float(api.MeanTextConf())) / 100


def text_lines(cell: np.ndarray, min_gap: int = 4) -> list[np.ndarray]:
    """The cell's lines of ink, top to bottom, each cropped with a little paper around.
    Gaps of fewer than `min_gap` rows are inside a character (是, 早), not between lines."""
    ink = cell < (int(np.percentile(cell, 90)) * 0.6)
    rows = ink.sum(axis=1) > max(1, cell.shape[1] // 200)
    closed = cv2.morphologyEx(
        rows.astype(np.uint8)[:, None], cv2.MORPH_CLOSE, np.ones((min_gap + 1, 1), np.uint8)
    )
    rows = closed[:, 0] > 0
    lines: list[np.ndarray] = []
    start = None
    for y, on in enumerate([*rows.tolist(), False]):
        if on and start is None:
            start = y
        elif not on and start is not None:
            if y - start >= 6:  # ignore specks
                cols = np.nonzero(ink[start:y].any(axis=0))[0]
                pad = max(4, (y - start) // 3)
                y0, y1 = max(0, start - pad), min(cell.shape[0], y + pad)
                x0, x1 = max(0, cols[0] - pad), min(cell.shape[1], cols[-1] + pad + 1)
                lines.append(cell[y0:y1, x0:x1])
            start = None
    return lines


def read_chinese(cell: np.ndarray, min_gap: int = 4) -> tuple[str, float]:
    """Text in a greyscale cell crop, lines joined top to bottom: text and confidence.
    Lines are found by the ink's row profile and read by the recogniser alone; the text
    detector would first blow a small cell up to 736 px and cost seconds."""
    texts, scores = [], []
    for line in text_lines(cell, min_gap):
        rgb = np.ascontiguousarray(np.repeat(line[:, :, None], 3, axis=2))
        result, _ = _rapid()(rgb, use_det=False, use_cls=False, use_rec=True)
        if result:
            texts.append(str(result[0][0]))
            scores.append(float(result[0][1]))
    return "".join(texts), min(scores, default=0.0)


def read_whole_page(image: np.ndarray) -> str:
    """Whole-image Tesseract chi_sim+eng, the way a form is read without a layout (the
    benchmark's baseline)."""
    if _engines.whole_page is None:
        import tesserocr

        _engines.whole_page = tesserocr.PyTessBaseAPI(path=tessdata_dir(), lang="chi_sim+eng")
    _engines.whole_page.SetImage(Image.fromarray(image))
    return str(_engines.whole_page.GetUTF8Text())

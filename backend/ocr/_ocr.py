"""The OCR engines for a cell whose printed value did not verify.

Digits (ID numbers, dates, phones): Tesseract, one block, whitelist `0-9 X -`; kept
in-process by tesserocr, or, where tesserocr cannot be imported (it needs a compiler and
libtesseract's headers to install), through pytesseract over the `tesseract` binary, with
the same settings and so the same readings, at the price of a process per cell.
`OCR_TESSERACT=tesserocr|pytesseract` forces one binding; the default picks tesserocr when
it imports. The binding in use is logged once. Chinese: RapidOCR (PP-OCRv4 on
onnxruntime, models inside the wheel), which read Chinese names far better than
Tesseract's chi_sim in our measurements.

Neither engine object may be shared between threads, so each thread gets its own, made
on first use (`warm_up()` makes them ahead of time). ONNX runs one thread per call: run
forms in parallel, not one form on many threads.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Literal

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
BINDING_ENV = "OCR_TESSERACT"

Binding = Literal["tesserocr", "pytesseract"]
logger = logging.getLogger(__name__)
_binding: Binding | None = None
_binding_lock = threading.Lock()


def tessdata_dir() -> str:
    prefix = os.environ.get("TESSDATA_PREFIX")
    for candidate in (prefix,) if prefix else TESSDATA_CANDIDATES:
        if candidate and os.path.isfile(os.path.join(candidate, "eng.traineddata")):
            return candidate
    raise EngineUnavailable(
        "no Tesseract language data; install `apt-get install tesseract-ocr tesseract-ocr-chi-sim`"
    )


def tesseract_binding() -> Binding:
    """Which Python binding reaches Tesseract in this process, chosen (and logged) once."""
    global _binding
    with _binding_lock:
        if _binding is None:
            _binding = _choose_binding()
            logger.info("ocr: Tesseract through %s", _binding)
        return _binding


def _choose_binding() -> Binding:
    wanted = os.environ.get(BINDING_ENV, "").strip().lower()
    if wanted not in ("", "auto", "tesserocr", "pytesseract"):
        raise EngineUnavailable(f"{BINDING_ENV} must be tesserocr or pytesseract, not {wanted!r}")
    if wanted != "pytesseract":
        try:
            import tesserocr  # type: ignore[import-untyped]  # noqa: F401
        except ImportError:
            if wanted == "tesserocr":
                raise EngineUnavailable("tesserocr cannot be imported") from None
        else:
            return "tesserocr"
    try:
        import pytesseract
    except ImportError:
        raise EngineUnavailable("neither tesserocr nor pytesseract can be imported") from None
    try:
        pytesseract.get_tesseract_version()
    except pytesseract.TesseractNotFoundError:
        raise EngineUnavailable(
            "tesserocr cannot be imported and the `tesseract` binary is not on PATH"
        ) from None
    return "pytesseract"


def reset_binding() -> None:
    """Forget the chosen binding and this thread's engines (tests switch bindings)."""
    global _binding
    with _binding_lock:
        _binding = None
    _engines.tesseract = _engines.whole_page = None


class _Engines(threading.local):
    tesseract: Any = None
    rapid: Any = None
    whole_page: Any = None


_engines = _Engines()


class _CliTesseract:
    """pytesseract over the `tesseract` binary, set up as `_tesseract()` sets up the API."""

    def __init__(self, lang: str, psm: int, variables: dict[str, str]) -> None:
        options = [f"--tessdata-dir {tessdata_dir()}", f"--psm {psm}"]
        options += [f"-c {name}={value}" for name, value in variables.items()]
        self.lang, self.config = lang, " ".join(options)

    def read(self, image: np.ndarray) -> tuple[str, float]:
        """The text and Tesseract's mean word confidence (0–100), as tesserocr's
        GetUTF8Text() and MeanTextConf() give them."""
        import pytesseract

        data = pytesseract.image_to_data(
            Image.fromarray(image),
            lang=self.lang,
            config=self.config,
            output_type=pytesseract.Output.DICT,
        )
        words = [
            (str(text), float(conf))
            for text, conf in zip(data["text"], data["conf"], strict=True)
            if float(conf) >= 0 and str(text).strip()
        ]
        text = " ".join(w for w, _ in words)
        return text, (sum(c for _, c in words) / len(words) if words else 0.0)


def _tesseract() -> Any:
    if _engines.tesseract is None and tesseract_binding() == "pytesseract":
        _engines.tesseract = _CliTesseract(
            "eng",
            6,  # PSM.SINGLE_BLOCK
            {
                "tessedit_char_whitelist": DIGIT_WHITELIST,
                "load_system_dawg": "0",
                "load_freq_dawg": "0",
            },
        )
    if _engines.tesseract is None:
        import tesserocr

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
    if isinstance(api, _CliTesseract):
        raw, conf = api.read(cell)
    else:
        api.SetImage(Image.fromarray(cell))
        raw, conf = api.GetUTF8Text(), float(api.MeanTextConf())
    return "".join(raw.split()), max(0.0, conf) / 100


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
        if tesseract_binding() == "pytesseract":
            _engines.whole_page = _CliTesseract("chi_sim+eng", 3, {})  # PSM.AUTO
        else:
            import tesserocr

            _engines.whole_page = tesserocr.PyTessBaseAPI(path=tessdata_dir(), lang="chi_sim+eng")
    if isinstance(_engines.whole_page, _CliTesseract):
        import pytesseract

        return str(
            pytesseract.image_to_string(
                Image.fromarray(image), lang="chi_sim+eng", config=_engines.whole_page.config
            )
        )
    _engines.whole_page.SetImage(Image.fromarray(image))
    return str(_engines.whole_page.GetUTF8Text())

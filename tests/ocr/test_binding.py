"""Tesseract through either binding: tesserocr in-process, or pytesseract over the
`tesseract` binary where tesserocr cannot be imported; same readings, and a log line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image, ImageDraw

from backend.ocr import EngineUnavailable, Layout, Verdict, _ocr, check_photo, render_form
from backend.ocr._fonts import font
from backend.ocr.synth import photograph, sign

from .conftest import FORM_ID, KEY, PHOTO_SIZE, header


@pytest.fixture(autouse=True)
def fresh_binding(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(_ocr.BINDING_ENV, raising=False)
    _ocr.reset_binding()
    yield
    _ocr.reset_binding()  # later tests choose again, from the real environment


def _without_tesserocr(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine where tesserocr never built: `import tesserocr` raises ImportError."""
    monkeypatch.setitem(sys.modules, "tesserocr", None)


def _digit_cells(layout: Layout) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(5)
    cells = []
    for _ in range(6):
        text = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(8, 19))))
        image = Image.new("L", (560, 48), 255)
        ImageDraw.Draw(image).text(
            (6, 24),
            text,
            font=font(layout.font_path, 30),
            fill=int(rng.integers(0, 110)),
            anchor="lm",
        )
        noisy = np.asarray(image, np.float32) + rng.normal(0, 10, (48, 560))
        cells.append((text, np.clip(noisy, 0, 255).astype(np.uint8)))
    return cells


def test_auto_prefers_tesserocr_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="backend.ocr._ocr"):
        assert _ocr.tesseract_binding() == "tesserocr"
    assert "Tesseract through tesserocr" in caplog.text


def test_falls_back_to_pytesseract_when_tesserocr_will_not_import(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, layout: Layout
) -> None:
    _without_tesserocr(monkeypatch)
    with caplog.at_level(logging.INFO, logger="backend.ocr._ocr"):
        text, confidence = _ocr.read_digits(_digit_cells(layout)[0][1])
    assert "Tesseract through pytesseract" in caplog.text
    assert _ocr.tesseract_binding() == "pytesseract"
    assert text == _digit_cells(layout)[0][0]
    assert confidence > 0.5


def test_forcing_tesserocr_where_it_will_not_import_fails_plainly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _without_tesserocr(monkeypatch)
    monkeypatch.setenv(_ocr.BINDING_ENV, "tesserocr")
    with pytest.raises(EngineUnavailable):
        _ocr.tesseract_binding()


def test_both_bindings_read_digits_alike(monkeypatch: pytest.MonkeyPatch, layout: Layout) -> None:
    cells = _digit_cells(layout)
    readings = {}
    for binding in ("tesserocr", "pytesseract"):
        monkeypatch.setenv(_ocr.BINDING_ENV, binding)
        _ocr.reset_binding()
        assert _ocr.tesseract_binding() == binding
        readings[binding] = [_ocr.read_digits(cell) for _, cell in cells]
    assert [t for t, _ in readings["tesserocr"]] == [t for t, _ in cells]
    assert [t for t, _ in readings["pytesseract"]] == [t for t, _ in cells]
    for (_, a), (_, b) in zip(readings["tesserocr"], readings["pytesseract"], strict=True):
        assert abs(a - b) <= 0.03  # the binary reports whole-number confidences per word


def test_a_differing_id_number_is_read_the_same_through_the_binary(
    monkeypatch: pytest.MonkeyPatch, layout: Layout, values: dict[str, str]
) -> None:
    printed = dict(values, id_number="33010620150308162X")
    page = sign(render_form(layout, printed, header()), layout, np.random.default_rng(3))
    photo = photograph(page, np.random.default_rng(14), size=PHOTO_SIZE, blur=0.8)
    reports = {}
    for binding in ("tesserocr", "pytesseract"):
        monkeypatch.setenv(_ocr.BINDING_ENV, binding)
        _ocr.reset_binding()
        reports[binding] = check_photo(photo, layout, values, KEY, expected_form_id=FORM_ID)
    for report in reports.values():
        assert report.verdict is Verdict.differs, report.summary()
        assert report.differing == ("id_number",)
        assert report.fields["id_number"].method == "ocr"
        assert report.fields["id_number"].text == "33010620150308162X"
    # Confidence is only reported, never decided on; here libtesseract 5.5 (tesserocr's)
    # and the 5.3 binary differ by a few hundredths.
    a, b = (r.fields["id_number"].confidence for r in reports.values())
    assert abs(a - b) <= 0.06

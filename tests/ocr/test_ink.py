"""Ink detection on a straightened page, without the photo: empty boxes read 0 even when
the page sits off by a couple of millimetres; one faint pencil character does not."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from backend.ocr import DEFAULT_THRESHOLDS, Layout
from backend.ocr._ink import ink_share
from backend.ocr._verify import ink_map
from backend.ocr.synth import write_corrections


def _smooth_ink(page: Image.Image, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    grey = np.asarray(page.convert("L"))
    moved = np.roll(grey, shift, axis=(0, 1))
    return cv2.GaussianBlur(ink_map(moved), (0, 0), 1.0)


@pytest.mark.parametrize("shift", [(0, 0), (12, -9), (-15, 14)])
def test_empty_boxes_have_no_ink_even_when_misplaced(
    layout: Layout, signed_page: Image.Image, page: Image.Image, shift: tuple[int, int]
) -> None:
    ink = _smooth_ink(page, shift)
    for cells in layout.fields:
        assert ink_share(ink, layout, cells.correction_box) == 0.0, cells.code
    assert ink_share(ink, layout, layout.signature_box) == 0.0
    assert ink_share(_smooth_ink(signed_page, shift), layout, layout.signature_box) > 0.01


def test_one_faint_character_is_ink(layout: Layout, page: Image.Image) -> None:
    written = write_corrections(
        page, layout, ["name", "id_number"], np.random.default_rng(3), faint=True
    )
    ink = _smooth_ink(written)
    for code in ("name", "id_number"):
        assert ink_share(ink, layout, layout.cells(code).correction_box) >= (
            DEFAULT_THRESHOLDS.correction_ink
        )
    assert ink_share(ink, layout, layout.cells("sex").correction_box) == 0.0

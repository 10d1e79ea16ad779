from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from backend.ocr import Layout, LayoutError, PrintedField, build_layout, render_form
from backend.ocr.__main__ import catalog_fields

from .conftest import header

LONG_ADDRESS = "新疆维吾尔自治区伊犁哈萨克自治州霍尔果斯市" * 3 + "某某路某某小区100幢12单元1201室"


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0, w) * max(0, h)


@pytest.mark.parametrize("dpi", [200, 300])
def test_every_box_is_on_the_page_and_none_overlap(dpi: int) -> None:
    layout = build_layout(catalog_fields(), dpi=dpi)
    width, height = layout.size
    boxes = list(layout.boxes())
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 <= width
        assert 0 <= y0 < y1 <= height
    for a, b in itertools.combinations(boxes, 2):
        assert _overlap(a, b) == 0, (a, b)


def test_every_printed_field_has_cells_in_catalog_order(layout: Layout) -> None:
    assert layout.codes == tuple(f.code for f in catalog_fields())
    cells = layout.cells("id_number")
    assert cells.field.read_kind == "digits"
    assert cells.value_box[2] == cells.correction_box[0]  # side by side
    assert layout.cells("household_address").field.wide


def test_cells_are_big_enough_for_handwriting(layout: Layout) -> None:
    for cells in layout.fields:
        x0, y0, x1, y1 = cells.correction_box
        assert x1 - x0 >= layout.px(30)
        assert y1 - y0 >= layout.px(9)


def test_millimetres_agree_between_dpis() -> None:
    low, high = build_layout(catalog_fields(), dpi=200), build_layout(catalog_fields(), dpi=300)
    for a, b in zip(low.boxes(), high.boxes(), strict=True):
        assert all(abs(p * 1.5 - q) <= 1.5 for p, q in zip(a, b, strict=True))


def test_fingerprint_names_the_fields_not_the_dpi() -> None:
    fields = catalog_fields()
    assert build_layout(fields).fingerprint == build_layout(fields, dpi=300).fingerprint
    assert build_layout(fields).fingerprint != build_layout(fields[:-1]).fingerprint


def test_rejects_bad_fields() -> None:
    with pytest.raises(LayoutError):
        build_layout([PrintedField("a", "甲"), PrintedField("a", "乙")])
    with pytest.raises(LayoutError, match="too many"):
        build_layout([PrintedField(f"f{i}", "字段") for i in range(80)])


def _ink(image: Image.Image, box: tuple[int, int, int, int], inset: int) -> int:
    x0, y0, x1, y1 = box
    inside = np.asarray(image)[y0 + inset : y1 - inset, x0 + inset : x1 - inset]
    return int(np.count_nonzero(inside < 200))


@pytest.mark.parametrize("code", ["household_address", "guardian1_employer", "id_number", "name"])
def test_long_values_wrap_inside_their_own_cell(layout: Layout, code: str) -> None:
    value = LONG_ADDRESS if layout.cells(code).field.read_kind == "text" else "1234567890" * 3
    blank = render_form(layout, {}, header())
    filled = render_form(layout, {code: value}, header())
    cells = layout.cells(code)
    assert _ink(filled, cells.value_box, layout.px(0.5)) > 0
    # Only the value cell changed: nothing reached the correction cell or beyond.
    diff = np.asarray(filled) != np.asarray(blank)
    x0, y0, x1, y1 = cells.value_box
    rule = layout.px(0.4)
    diff[y0 + rule : y1 - rule, x0 + rule : x1 - rule] = False
    assert not diff.any()


def test_empty_form_has_empty_correction_and_signature_boxes(
    layout: Layout, page: Image.Image
) -> None:
    inset = layout.px(0.5)
    for cells in layout.fields:
        assert _ink(page, cells.correction_box, inset) == 0
    assert _ink(page, layout.signature_box, inset) == 0
    assert _ink(page, layout.date_box, inset) == 0


def test_json_has_the_boxes(layout: Layout) -> None:
    data = layout.to_json()
    assert set(data["fields"]) == set(layout.codes)
    assert data["fields"]["name"]["value_box"] == list(layout.cells("name").value_box)
    assert len(data["signature_box"]) == 4
    assert len(data["date_box"]) == 4

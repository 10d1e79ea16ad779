"""Forms printed by other systems: no QR code, no corner squares, their own labels and
layout. Each is read by its labels and answers the same report as our own form."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.ocr import (
    ForeignForms,
    LayoutMemory,
    RetakeReason,
    Verdict,
    check_foreign_photo,
    check_photo,
)
from backend.ocr.__main__ import catalog_fields, main, printed_values
from backend.ocr._labels import LabelMatcher
from backend.ocr.synth import photograph, print_page
from backend.ocr.synth_foreign import BY_NAME, LAYOUTS, render, signature, write
from backend.records.catalog import printed_names

from .conftest import KEY, PHOTO_SIZE, RECORD

OTHER_CHILD = {
    **RECORD,
    "name": "张伟强",
    "id_number": "440106201201015671",
    "birth_date": "2012-01-01",
}


def forms(memory: LayoutMemory | None = None) -> ForeignForms:
    return ForeignForms(
        catalog_fields(), printed_names(), LayoutMemory() if memory is None else memory
    )


def photo_of(
    layout: str,
    record: dict[str, str] = RECORD,
    *,
    seed: int = 1,
    signed: bool = True,
    corrections: tuple[str, ...] = (),
    **photo: object,
) -> bytes:
    rng = np.random.default_rng(seed)
    page, drawn = render(BY_NAME[layout], printed_values(record), "杭州市文三路小学")
    sheet: Image.Image = page.convert("RGB")
    for code in corrections:
        write(sheet, drawn.corrections[code], rng, "blue", 4)
    if signed:
        signature(sheet, drawn.signature, rng, "black")
        write(sheet, drawn.date, rng, "black", 6)
    args: dict[str, object] = {"size": PHOTO_SIZE, "blur": 0.8, "rotation": 3.0, **photo}
    return photograph(print_page(sheet), rng, **args)  # type: ignore[arg-type]


def expected() -> dict[str, str]:
    return printed_values(RECORD)


@pytest.mark.parametrize("layout", [spec.name for spec in LAYOUTS])
def test_each_layout_is_read_by_its_labels(layout: str) -> None:
    report = check_foreign_photo(photo_of(layout), forms(), expected())
    assert report.verdict is Verdict.matches, report.summary()
    assert report.layout_way == "read_by_labels"
    printed = {code for code, _ in BY_NAME[layout].fields}
    # Every field the form prints is checked, and only those.
    assert set(report.fields) == printed
    assert report.fields["id_number"].text == RECORD["id_number"]
    assert report.signed


def test_a_layout_read_once_is_learned() -> None:
    memory = LayoutMemory()
    first = check_foreign_photo(photo_of("province", seed=1), forms(memory), expected())
    second = check_foreign_photo(photo_of("province", seed=2), forms(memory), expected())
    assert first.layout_way == "read_by_labels"
    assert second.layout_way == "learned"
    assert second.layout_fingerprint == first.layout_fingerprint
    assert second.verdict is Verdict.matches, second.summary()


def test_learned_layouts_survive_in_a_file(tmp_path: Path) -> None:
    path = tmp_path / "layouts.json"
    check_foreign_photo(photo_of("two_per_row"), forms(LayoutMemory(path)), expected())
    report = check_foreign_photo(
        photo_of("two_per_row", seed=3), forms(LayoutMemory(path)), expected()
    )
    assert report.layout_way == "learned"


def test_a_printed_value_that_differs() -> None:
    printed = {**RECORD, "guardian1_name": "欧阳亮"}  # one character another
    report = check_foreign_photo(photo_of("two_per_row", printed), forms(), expected())
    assert report.verdict is Verdict.differs, report.summary()
    assert report.differing == ("guardian1_name",)


def test_another_childs_form() -> None:
    report = check_foreign_photo(photo_of("school", OTHER_CHILD), forms(), expected())
    assert report.verdict is Verdict.not_this_form, report.summary()


def test_corrections_in_the_forms_own_correction_column() -> None:
    report = check_foreign_photo(
        photo_of("province", corrections=("phone", "household_address")), forms(), expected()
    )
    assert report.verdict is Verdict.corrections_written, report.summary()
    assert set(report.corrections) == {"phone", "household_address"}


def test_unsigned() -> None:
    report = check_foreign_photo(photo_of("school", signed=False), forms(), expected())
    assert report.verdict is Verdict.unsigned, report.summary()


def test_upside_down() -> None:
    report = check_foreign_photo(photo_of("province", upside_down=True), forms(), expected())
    assert report.verdict is Verdict.matches, report.summary()


def test_a_sheet_cut_off_is_retaken() -> None:
    report = check_foreign_photo(photo_of("province", cut_off="bottom"), forms(), expected())
    assert report.verdict is Verdict.retake
    assert report.retake_reason is RetakeReason.page_not_visible
    assert "二维码" not in report.message  # another system's form has none


def test_check_photo_hands_a_photo_without_our_qr_code_over(layout: object) -> None:
    photo = photo_of("two_per_row")
    without = check_photo(photo, layout, expected(), KEY)  # type: ignore[arg-type]
    assert without.verdict is Verdict.retake  # as before: only our own forms
    report = check_photo(photo, layout, expected(), KEY, other_systems=forms())  # type: ignore[arg-type]
    assert report.verdict is Verdict.matches
    assert report.summary()["layout"]["way"] == "read_by_labels"


def test_our_own_form_is_read_as_before(
    layout: object, signed_page: Image.Image, values: dict[str, str]
) -> None:
    photo = photograph(signed_page, np.random.default_rng(5), size=PHOTO_SIZE)
    before = check_photo(photo, layout, values, KEY).summary()  # type: ignore[arg-type]
    after = check_photo(photo, layout, values, KEY, other_systems=forms()).summary()  # type: ignore[arg-type]
    for summary in (before, after):
        summary.pop("timings"), summary.pop("seconds")
    assert after == before
    assert "layout" not in after


def test_cli_reads_another_systems_form(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(photo_of("school"))
    record = tmp_path / "record.json"
    record.write_text(json.dumps({**RECORD, "form_id": None}, ensure_ascii=False))
    out = tmp_path / "out.json"
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["read", str(photo), str(record)]) == 0
    out.write_text(buffer.getvalue())
    summary = json.loads(out.read_text())
    assert summary["verdict"] == "matches"
    assert summary["fields"]["id_number"] == {
        "text": RECORD["id_number"],
        "match": True,
        "confidence": summary["fields"]["id_number"]["confidence"],
        "method": summary["fields"]["id_number"]["method"],
    }
    assert summary["layout"]["way"] == "read_by_labels"


@pytest.mark.parametrize(
    ("label", "code"),
    [
        ("公民身份号码", "id_number"),
        ("身份证号", "id_number"),
        ("身份证件号", "id_number"),
        ("户籍地址", "household_address"),
        ("户口所在地", "household_address"),
        ("手机号码", "phone"),
        ("联系电话", "phone"),
        ("监护人姓名", "guardian1_name"),
        ("家长1姓名", "guardian1_name"),
        ("家庭成员2联系电话", "guardian2_phone"),
        ("家长2电话", "guardian2_phone"),
        ("监护人公民身份号码", "guardian1_id_number"),
        ("公民身份号玛", "id_number"),  # one character misread
        ("学生姓名：", "name"),
    ],
)
def test_labels_other_systems_print(label: str, code: str) -> None:
    assert LabelMatcher(printed_names()).match(label)[0] == code


@pytest.mark.parametrize("label", ["签名日期", "序号", "正确信息（有误时填写）", "学"])
def test_text_that_names_no_field(label: str) -> None:
    assert LabelMatcher(printed_names()).match(label)[0] is None

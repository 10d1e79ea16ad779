"""The reader on degraded synthetic photos, one per verdict kind."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
import zxingcpp
from PIL import Image, ImageDraw

from backend.ocr import (
    DEFAULT_THRESHOLDS,
    CheckReport,
    Layout,
    RetakeReason,
    Verdict,
    check_photo,
    render_form,
    sign_form_token,
)
from backend.ocr.synth import photograph, sign, write_corrections

from .conftest import BASE_URL, FORM_ID, KEY, PHOTO_SIZE, header


def _photo(page: Image.Image, seed: int, **kwargs: Any) -> bytes:
    kwargs.setdefault("size", PHOTO_SIZE)
    return photograph(page, np.random.default_rng(seed), **kwargs)


def _check(photo: bytes, layout: Layout, values: dict[str, str], **kwargs: Any) -> CheckReport:
    kwargs.setdefault("expected_form_id", FORM_ID)
    return check_photo(photo, layout, values, KEY, **kwargs)


@pytest.fixture(scope="module")
def good_photo(signed_page: Image.Image) -> bytes:
    return _photo(signed_page, 11, rotation=-6.0, blur=1.0, exposure=0.7, shadow=0.3)


def test_matches(good_photo: bytes, layout: Layout, values: dict[str, str]) -> None:
    report = _check(good_photo, layout, values)
    assert report.verdict is Verdict.matches, report.summary()
    assert report.form_id == FORM_ID
    assert report.signed
    assert report.date_written
    assert report.corrections == {}
    assert all(r.match for r in report.fields.values())
    assert report.fields["id_number"].text == values["id_number"]
    assert report.retake_reason is None
    assert {"decode", "locate", "verify", "ink"} <= set(report.timings)
    assert report.seconds < 5


def test_upside_down_photo_matches(
    signed_page: Image.Image, layout: Layout, values: dict[str, str]
) -> None:
    report = _check(_photo(signed_page, 12, upside_down=True), layout, values)
    assert report.verdict is Verdict.matches, report.summary()


def test_threads_share_a_layout(good_photo: bytes, layout: Layout, values: dict[str, str]) -> None:
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda p: _check(p, layout, values), [good_photo] * 2))
    assert [r.verdict for r in reports] == [Verdict.matches] * 2


def test_without_expected_form_id_reports_the_token(
    good_photo: bytes, layout: Layout, values: dict[str, str]
) -> None:
    report = _check(good_photo, layout, values, expected_form_id=None)
    assert report.verdict is Verdict.matches
    assert report.form_id == FORM_ID


def test_another_students_form(good_photo: bytes, layout: Layout, values: dict[str, str]) -> None:
    report = _check(good_photo, layout, values, expected_form_id="F-2026-0002")
    assert report.verdict is Verdict.not_this_form
    assert report.form_id == FORM_ID
    assert report.token_error is None
    assert report.fields["name"].method == "unread"
    assert report.signed  # the other findings are still reported


def test_forged_token(layout: Layout, values: dict[str, str]) -> None:
    forged = sign(
        render_form(layout, values, header(key=b"not our key")), layout, np.random.default_rng(2)
    )
    report = _check(_photo(forged, 13), layout, values)
    assert report.verdict is Verdict.not_this_form
    assert report.token_error == "forged"
    assert report.form_id is None


def test_printed_value_differs(layout: Layout, values: dict[str, str]) -> None:
    printed = dict(values, id_number="33010620150308162X", guardian1_name="欧阳鸣")
    page = sign(render_form(layout, printed, header()), layout, np.random.default_rng(3))
    report = _check(_photo(page, 14, blur=0.8), layout, values)
    assert report.verdict is Verdict.differs, report.summary()
    assert set(report.differing) == {"id_number", "guardian1_name"}
    assert report.fields["id_number"].text == "33010620150308162X"
    assert report.fields["id_number"].method == "ocr"
    assert report.fields["guardian1_name"].text == "欧阳鸣"
    assert report.fields["name"].match


def test_choice_printed_differently_is_found_among_its_options(
    layout: Layout, values: dict[str, str]
) -> None:
    printed = dict(values, only_child="否", ethnicity="回族")
    page = sign(render_form(layout, printed, header()), layout, np.random.default_rng(6))
    report = _check(_photo(page, 18, blur=1.2), layout, values)
    assert report.verdict is Verdict.differs
    assert set(report.differing) == {"only_child", "ethnicity"}
    assert report.fields["only_child"].text == "否"
    assert report.fields["only_child"].method == "options"
    assert report.fields["ethnicity"].text == "回族"


def test_value_written_over_is_unclear_not_differs(
    signed_page: Image.Image, layout: Layout, values: dict[str, str]
) -> None:
    page = signed_page.copy()
    x0, y0, x1, y1 = layout.cells("name").value_box
    ImageDraw.Draw(page).line([(x0 + 20, y1 - 15), (x1 - 20, y0 + 15)], fill=30, width=9)
    report = _check(_photo(page, 19), layout, values)
    assert report.verdict is Verdict.retake
    assert report.retake_reason is RetakeReason.unclear_fields
    assert report.fields["name"].method == "unsure"
    assert "姓名" in report.message


def test_corrections_written(
    signed_page: Image.Image, layout: Layout, values: dict[str, str]
) -> None:
    page = write_corrections(
        signed_page, layout, ["phone", "household_address"], np.random.default_rng(4)
    )
    page = write_corrections(page, layout, ["guardian2_name"], np.random.default_rng(5), faint=True)
    report = _check(_photo(page, 15), layout, values)
    assert report.verdict is Verdict.corrections_written, report.summary()
    assert list(report.corrections) == ["household_address", "phone", "guardian2_name"]
    for crop in report.corrections.values():
        assert crop.startswith(b"\x89PNG")
    assert report.ink["name"] == 0.0
    assert report.ink["guardian2_name"] >= DEFAULT_THRESHOLDS.correction_ink  # one faint mark


def test_unsigned(page: Image.Image, layout: Layout, values: dict[str, str]) -> None:
    # A bent sheet: the boxes sit a millimetre or two off; their rules must not count.
    report = _check(_photo(page, 16, bend=0.012), layout, values)
    assert report.verdict is Verdict.unsigned
    assert not report.signed
    assert not report.date_written
    assert report.ink["signature"] == 0.0


def test_signed_without_a_date_is_undated(
    page: Image.Image, layout: Layout, values: dict[str, str]
) -> None:
    """The form asks for a signature and a date: a signature alone is not done yet."""
    undated = sign(page, layout, np.random.default_rng(7), date=False)
    report = _check(_photo(undated, 20, rotation=4.0, blur=1.0, exposure=0.6), layout, values)
    assert report.verdict is Verdict.undated, report.summary()
    assert report.signed
    assert not report.date_written
    assert "日期" in report.message


@pytest.mark.parametrize("ink", ["black", "blue", "pencil"])
def test_signed_and_dated_in_any_ink_is_not_undated(
    page: Image.Image, layout: Layout, values: dict[str, str], ink: str
) -> None:
    dated = sign(page, layout, np.random.default_rng(8), ink=ink)  # type: ignore[arg-type]
    report = _check(_photo(dated, 21, blur=1.5, exposure=0.4, noise=3.0), layout, values)
    assert report.date_written, report.ink
    assert report.verdict is Verdict.matches, report.summary()


def test_a_date_without_a_signature_is_unsigned(
    page: Image.Image, layout: Layout, values: dict[str, str]
) -> None:
    dated = sign(page, layout, np.random.default_rng(9))
    x0, y0, x1, y1 = layout.signature_box
    ImageDraw.Draw(dated).rectangle((x0 + 4, y0 + 4, x1 - 4, y1 - 4), fill=255)
    report = _check(_photo(dated, 22), layout, values)
    assert report.verdict is Verdict.unsigned, report.summary()
    assert report.date_written


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"blur": 5.0}, RetakeReason.blurry),
        ({"exposure": 0.06}, RetakeReason.too_dark),
        ({"cut_off": "bottom"}, RetakeReason.page_not_visible),
        ({"cut_off": "left"}, RetakeReason.page_not_visible),
    ],
)
def test_retake(
    signed_page: Image.Image,
    layout: Layout,
    values: dict[str, str],
    kwargs: dict[str, Any],
    reason: RetakeReason,
) -> None:
    report = _check(_photo(signed_page, 17, **kwargs), layout, values)
    assert report.verdict is Verdict.retake
    assert report.retake_reason is reason
    assert report.message
    assert report.seconds < 2.0


def test_not_an_image(layout: Layout, values: dict[str, str]) -> None:
    report = _check(b"definitely not a jpeg", layout, values)
    assert report.verdict is Verdict.retake
    assert report.retake_reason is RetakeReason.unreadable_image


def test_photos_are_reproducible(page: Image.Image) -> None:
    assert _photo(page, 9, size=(900, 1200)) == _photo(page, 9, size=(900, 1200))


def test_the_qr_code_is_a_link_a_phone_camera_opens(page: Image.Image) -> None:
    found = zxingcpp.read_barcodes(page)
    assert [code.text for code in found] == [f"{BASE_URL}/m/f/{sign_form_token(FORM_ID, KEY)}"]


def test_a_blurred_dim_photo_of_the_link_still_reads(
    signed_page: Image.Image, layout: Layout, values: dict[str, str]
) -> None:
    photo = _photo(signed_page, 31, rotation=9.0, blur=2.5, exposure=0.3, noise=3.5, tilt=0.08)
    report = _check(photo, layout, values)
    assert report.form_id == FORM_ID, report.summary()
    assert report.verdict is Verdict.matches, report.summary()

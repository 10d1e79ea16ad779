from __future__ import annotations

import pytest

from backend.ocr import matches, normalise


@pytest.mark.parametrize(
    ("read", "expected", "kind"),
    [
        ("３３０１０６２０１５０３０８１２２ｘ", "33010620150308122X", "digits"),
        ("3301 0620 1503 0812 2x", "33010620150308122X", "digits"),
        ("0571—88881234", "0571-88881234", "digits"),
        ("2O15-03-08", "2015-03-08", "digits"),
        ("欧阳 子涵", "欧阳子涵", "text"),
        ("香港特区护照／身份证明", "香港特区护照/身份证明", "text"),
        (None, "", "text"),
    ],
)
def test_matches(read: str | None, expected: str, kind: str) -> None:
    assert matches(read, expected, kind)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("read", "expected", "kind"),
    [
        ("33010620150308122X", "330106201503081229", "digits"),
        ("欧阳子涵", "欧阳子函", "text"),
        ("", "男", "text"),
    ],
)
def test_differs(read: str, expected: str, kind: str) -> None:
    assert not matches(read, expected, kind)  # type: ignore[arg-type]


def test_text_keeps_letters() -> None:
    assert normalise("Ｏｌｉｖｅｒ", "text") == "Oliver"

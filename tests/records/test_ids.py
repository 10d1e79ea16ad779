"""ID numbers on real-format samples, masks, registry numbers, and what gets flagged."""

from __future__ import annotations

from datetime import date

import pytest

from backend.records.catalog import BY_CODE, FIELDS, KEY_FIELDS
from backend.records.ids import (
    ProblemKind,
    id_problems,
    make_resident_id,
    normalise_id_number,
    registry_number_for,
    resident_id_facts,
)
from backend.records.validate import InvalidValue, clean

# The GB 11643 examples: an X check digit, and ordinary ones.
VALID = ["11010519491231002X", "440305198503172047", "310104200501010013"]


@pytest.mark.parametrize("number", VALID)
def test_valid_resident_ids(number: str) -> None:
    facts = resident_id_facts(number)
    assert facts.valid
    assert facts.birth_date is not None


def test_x_check_digit_and_the_sex_digit() -> None:
    facts = resident_id_facts("11010519491231002X")
    assert facts.birth_date == date(1949, 12, 31)
    assert facts.sex == "2"  # 17th digit 2: female
    assert resident_id_facts("310104200501010013").sex == "1"
    assert resident_id_facts("440305198503172047").birth_date == date(1985, 3, 17)


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("110105194912310021", "校验位错误"),
        ("11010519491231002", "位数不是 18 位"),
        ("1101051949123100AX", "含有非法字符"),
        ("110105194913310021", "出生日期或地区码无效"),
    ],
)
def test_invalid_resident_ids_say_why(number: str, reason: str) -> None:
    facts = resident_id_facts(number)
    assert not facts.valid
    assert facts.reason == reason


def test_lowercase_x_and_full_width_digits_are_normalised() -> None:
    assert normalise_id_number("11010519491231002x") == "11010519491231002X"
    assert normalise_id_number("１１０１０５ 19491231002Ｘ") == "11010519491231002X"
    assert clean(BY_CODE["id_number"], " 11010519491231002x ") == "11010519491231002X"


def test_generated_ids_are_valid_and_carry_birth_date_and_sex() -> None:
    for sex in ("1", "2"):
        number = make_resident_id("330106", date(2015, 3, 7), 42, sex)
        facts = resident_id_facts(number)
        assert facts.valid
        assert facts.birth_date == date(2015, 3, 7)
        assert facts.sex == sex


def test_problems_found_against_the_record() -> None:
    number = "11010519491231002X"
    assert id_problems("1", number, "1949-12-31", "2") == []
    kinds = [k for k, _ in id_problems("1", number, "1950-01-01", "1")]
    assert kinds == [ProblemKind.id_birth_mismatch, ProblemKind.id_sex_mismatch]
    assert [k for k, _ in id_problems("1", "110105194912310021", None, None)] == [
        ProblemKind.id_invalid
    ]
    # Only resident IDs are checked; a passport number is not.
    assert id_problems("6", "E12345678", "2015-01-01", "1") == []


def test_registry_numbers() -> None:
    assert registry_number_for("1", "11010519491231002X", "2133010601", "王", "1949-12-31") == (
        "G11010519491231002X"
    )
    j = registry_number_for(None, None, "2133010601", "王小明", "2015-03-07")
    assert j.startswith("J")
    assert j == registry_number_for("9", "", "2133010601", "王小明", "2015-03-07")  # stable
    assert j != registry_number_for(None, None, "2133010601", "王小红", "2015-03-07")


def test_catalog_has_the_codes_the_form_tools_use() -> None:
    codes = [f.code for f in FIELDS]
    for code in (
        "name",
        "sex",
        "birth_date",
        "ethnicity",
        "id_type",
        "id_number",
        "household_address",
        "current_address",
        "phone",
        "guardian1_name",
        "guardian1_relation",
        "guardian1_phone",
        "guardian1_id_number",
        "guardian2_name",
        "guardian2_relation",
        "guardian2_phone",
        "guardian2_id_number",
    ):
        assert code in codes
    assert len(codes) == len(set(codes))
    assert {
        "name",
        "sex",
        "birth_date",
        "ethnicity",
        "nationality",
        "id_type",
        "id_number",
        "overseas_status",
    } == KEY_FIELDS
    assert len(BY_CODE["ethnicity"].options) == 56


@pytest.mark.parametrize(
    "raw", ["2015-03-07", "2015/3/7", "2015.03.07", "2015年3月7日", "20150307", 42070]
)
def test_dates_in_five_formats_and_excel_serials(raw: object) -> None:
    assert clean(BY_CODE["birth_date"], raw) == "2015-03-07"


def test_values_that_are_refused_say_so_in_chinese() -> None:
    with pytest.raises(InvalidValue, match="日期无法识别"):
        clean(BY_CODE["birth_date"], "七岁")
    with pytest.raises(InvalidValue, match="不在可选项中"):
        clean(BY_CODE["ethnicity"], "火星族")
    with pytest.raises(InvalidValue, match="电话号码格式不正确"):
        clean(BY_CODE["phone"], "12345")
    assert clean(BY_CODE["ethnicity"], "汉族") == "01"
    assert clean(BY_CODE["sex"], "女") == "2"
    assert clean(BY_CODE["phone"], "+86 138 1234 5678") == "13812345678"

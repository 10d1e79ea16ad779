"""Turning what people type (or Excel stores) into a field's canonical stored value."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from backend import dates
from backend.records.catalog import Field, FieldType
from backend.records.ids import normalise_id_number

MOBILE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")
YES = {"1", "是", "y", "yes", "true", "t"}
NO = {"0", "否", "n", "no", "false", "f"}
_MONTH_PATTERNS = (
    re.compile(r"^(\d{4})[-/.](\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月?$"),
    re.compile(r"^(\d{4})(\d{2})$"),
)
_EXCEL_EPOCH = date(1899, 12, 30)


class InvalidValue(ValueError):
    """The Chinese message says what is wrong, for the person who typed it."""


def to_text(raw: object) -> str:
    """Cell content as text: Excel numbers without a trailing .0, dates as ISO."""
    if raw is None:
        return ""
    if isinstance(raw, datetime):
        return raw.date().isoformat()
    if isinstance(raw, date):
        return raw.isoformat()
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw).replace("\u3000", " ").strip()


def parse_date(text: str) -> date:
    """A date as people type it (`backend.dates`), or as Excel stores it (a serial day)."""
    if re.fullmatch(r"\d{5}(\.0+)?", text):
        return _EXCEL_EPOCH + timedelta(days=int(float(text)))
    try:
        return dates.parse_date(text)
    except dates.DateNotUnderstood as exc:
        raise InvalidValue(str(exc)) from None


def clean(field: Field, raw: object) -> str | None:
    """The stored value for `raw`, None when empty; raises InvalidValue."""
    text = to_text(raw)
    if not text:
        if field.required:
            raise InvalidValue(f"{field.label}不能为空")
        return None
    kind = field.type
    if kind is FieldType.text:
        text = re.sub(r"\s+", " ", text)
        if len(text) > field.max_length:
            raise InvalidValue(f"{field.label}不能超过 {field.max_length} 个字")
        return text
    if kind is FieldType.date:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            text = str(int(raw))
        value = parse_date(text)
        if not date(1900, 1, 1) <= value <= date.today():
            raise InvalidValue("日期不在合理范围内")
        return value.isoformat()
    if kind is FieldType.year_month:
        if isinstance(raw, (date, datetime)):
            return f"{raw.year:04d}-{raw.month:02d}"
        for pattern in _MONTH_PATTERNS:
            match = pattern.match(text)
            if match and 1 <= int(match.group(2)) <= 12:
                return f"{int(match.group(1)):04d}-{int(match.group(2)):02d}"
        try:
            value = parse_date(text)
        except InvalidValue:
            raise InvalidValue("年月格式无法识别，请写成 2021-09") from None
        return f"{value.year:04d}-{value.month:02d}"
    if kind is FieldType.id_number:
        text = normalise_id_number(text)
        if not re.fullmatch(r"[0-9A-Z]{4,30}", text):
            raise InvalidValue("证件号只能包含数字和字母")
        return text
    if kind is FieldType.phone:
        digits = re.sub(r"[\s()（）]", "", text).removeprefix("+86")
        if not (MOBILE.match(digits) or LANDLINE.match(digits)):
            raise InvalidValue("电话号码格式不正确")
        return digits
    if kind is FieldType.choice:
        if text in field.options:
            return text
        by_label = {label: code for code, label in field.options.items()}
        if text in by_label:
            return by_label[text]
        if text.isdigit() and text.zfill(2) in field.options:
            return text.zfill(2)
        raise InvalidValue(f"{field.label}的取值“{text}”不在可选项中")
    if kind is FieldType.yes_no:
        lowered = text.lower()
        if lowered in YES:
            return "1"
        if lowered in NO:
            return "0"
        raise InvalidValue(f"{field.label}只能填“是”或“否”")
    raise AssertionError(kind)

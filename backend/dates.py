"""Dates as a person types them, read in one place for every field a person types a date into
(sign-up's birth date, imported spreadsheets, corrections): 2020年5月15日, 2020-05-15,
2020/5/15, 2020.5.15 and 20200515, full-width digits and stray spaces included.

Day-first and month-first forms (15/5/2020) are refused rather than guessed: Chinese dates
are written year first, and a wrong guess at a birth date is worse than a question."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

HINT = "请写成 2020-05-15 或 2020年5月15日"

_DATE = re.compile(
    r"^(?P<y>\d{4})(?:"
    r"年(?P<m1>\d{1,2})月(?P<d1>\d{1,2})日?"
    r"|(?P<sep>[-/.])(?P<m2>\d{1,2})(?P=sep)(?P<d2>\d{1,2})"
    r"|(?P<m3>\d{2})(?P<d3>\d{2})"
    r")$"
)


class DateNotUnderstood(ValueError):
    """The Chinese message says how to write the date."""

    def __init__(self, message: str = f"日期无法识别，{HINT}") -> None:
        super().__init__(message)


def parse_date(text: str) -> date:
    """The date `text` names, or `DateNotUnderstood`."""
    # NFKC turns full-width digits and separators into ASCII; spaces never matter in a date.
    typed = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))
    match = _DATE.match(typed)
    if match is None:
        raise DateNotUnderstood()
    month = match["m1"] or match["m2"] or match["m3"]
    day = match["d1"] or match["d2"] or match["d3"]
    try:
        return date(int(match["y"]), int(month), int(day))
    except ValueError:
        raise DateNotUnderstood(f"没有这一天，{HINT}") from None

"""Dates as people type them: one parser for every field where a person types a date."""

from __future__ import annotations

from datetime import date

import pytest

from backend.dates import DateNotUnderstood, parse_date


@pytest.mark.parametrize(
    "typed",
    [
        "2020年5月15日",
        "2020年05月15日",
        "2020年5月15",
        "2020-05-15",
        "2020-5-15",
        "2020/5/15",
        "2020.5.15",
        "20200515",
        " 2020-05-15 ",
        "２０２０年５月１５日",  # typed with a full-width keyboard
        "2020 年 5 月 15 日",
    ],
)
def test_the_ways_a_parent_types_a_birth_date(typed: str) -> None:
    assert parse_date(typed) == date(2020, 5, 15)


@pytest.mark.parametrize("typed", ["2020-02-30", "15/5/2020", "2020-5", "昨天", "", "2020515"])
def test_what_is_not_a_date_is_refused_in_chinese(typed: str) -> None:
    with pytest.raises(DateNotUnderstood, match="2020-05-15"):
        parse_date(typed)

"""Working days as Chinese offices count them: Monday to Friday, less the statutory holidays,
plus the make-up workdays (调休) that fall on a weekend, from `chinese-calendar`.

Every step of in-progress business must be handled within 10 working days of becoming
someone's (the monthly bulletin counts the steps that were not), so due dates are counted
here and nowhere else. For a year the calendar does not know yet (its data comes with each
year's State Council notice), Monday to Friday is assumed and a warning is logged once per
year, so a deadline is never lost, only possibly a day early or late.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

log = logging.getLogger("registry.workdays")

CHINA = ZoneInfo("Asia/Shanghai")
STEP_DAYS = 10  # 004: each step of in-progress business, in working days

_unknown_years: set[int] = set()


def is_working_day(day: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        if day.year not in _unknown_years:
            _unknown_years.add(day.year)
            log.warning(
                "chinese-calendar has no holidays for %s: counting Monday to Friday "
                "(upgrade chinesecalendar once the State Council publishes the year)",
                day.year,
            )
        return day.weekday() < 5


def add_working_days(start: date, days: int) -> date:
    """The `days`-th working day after `start` (`start` itself is not counted, whether or not
    it is a working day): a step that becomes current on `start` is due by the end of it."""
    if days < 1:
        raise ValueError("days must be at least 1")
    day = start
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return day


def working_days_between(start: date, end: date) -> int:
    """How many working days lie after `start` up to and including `end` (0 when `end` is not
    after `start`): how long a step has waited, or how far past its due date it is."""
    count = 0
    day = start
    while day < end:
        day += timedelta(days=1)
        if is_working_day(day):
            count += 1
    return count


def china_today(now: datetime | None = None) -> date:
    """Today's date in China, where the deadlines are kept."""
    return (now or datetime.now(UTC)).astimezone(CHINA).date()


def due_date(became_current: datetime, days: int = STEP_DAYS) -> date:
    """The last day (China time) to handle a step that became current at `became_current`."""
    return add_working_days(china_today(became_current), days)

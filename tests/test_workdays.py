"""Working days as Chinese offices count them (notice 004: every step within 10 working days):
across National Day 2026 (1–7 October off, Saturday 10 October a make-up workday), and for a
year the calendar does not know yet (Monday to Friday, one warning). The due date a step
shows through the API is counted the same way."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta, timezone

import httpx
import pytest

from backend import workdays
from backend.accounts.roles import Role
from backend.config import Settings
from backend.records.review_tables import ReviewStep
from backend.workdays import (
    add_working_days,
    china_today,
    due_date,
    is_working_day,
    working_days_between,
)
from tests.factories import build_world, make_students, open_campaign
from tests.records.requests import as_role, multipart

CHINA = timezone(timedelta(hours=8))


def test_national_day_2026_is_off_and_the_make_up_saturday_is_on() -> None:
    assert not any(is_working_day(date(2026, 10, d)) for d in range(1, 8))
    assert is_working_day(date(2026, 10, 10))  # Saturday, 调休
    assert not is_working_day(date(2026, 10, 11))  # an ordinary Sunday
    assert is_working_day(date(2026, 9, 30))


def test_ten_working_days_across_national_day() -> None:
    # after 30 September: 8, 9, 10 (Sat), 12, 13, 14, 15, 16, 19, 20 October
    assert add_working_days(date(2026, 9, 30), 10) == date(2026, 10, 20)
    assert add_working_days(date(2026, 9, 30), 3) == date(2026, 10, 10)
    # a step that becomes current on a holiday starts counting after it
    assert add_working_days(date(2026, 10, 3), 1) == date(2026, 10, 8)
    assert working_days_between(date(2026, 9, 30), date(2026, 10, 12)) == 4
    assert working_days_between(date(2026, 10, 1), date(2026, 10, 7)) == 0


def test_a_due_date_counts_from_the_day_in_china() -> None:
    # 23:30 on 30 September in Beijing is still the 30th there (15:30 UTC)
    late_evening = datetime(2026, 9, 30, 23, 30, tzinfo=CHINA)
    assert china_today(late_evening) == date(2026, 9, 30)
    assert due_date(late_evening) == date(2026, 10, 20)
    # 00:30 on 9 October in Beijing is still the 8th in UTC: counted from the 9th
    after_midnight = datetime(2026, 10, 9, 0, 30, tzinfo=CHINA)
    assert after_midnight.astimezone(UTC).day == 8
    assert due_date(after_midnight) == date(2026, 10, 22)
    assert add_working_days(date(2026, 10, 8), 10) == date(2026, 10, 21)


def test_an_unknown_year_counts_monday_to_friday_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    workdays._unknown_years.discard(2028)
    with caplog.at_level(logging.WARNING, logger="registry.workdays"):
        # Friday 7 January 2028 → Monday 10th, Friday 21st
        assert add_working_days(date(2028, 1, 7), 1) == date(2028, 1, 10)
        assert add_working_days(date(2028, 1, 7), 10) == date(2028, 1, 21)
        assert not is_working_day(date(2028, 1, 8))
    warnings = [r for r in caplog.records if "2028" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING


async def test_a_step_shows_the_due_date_counted_in_working_days(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    world = await build_world(settings)
    student = (await make_students(world, "A1", 1))[0]
    await open_campaign(corrections_open=True)
    registrar = await as_role(client, world, Role.registrar)
    made = await client.post(
        "/change-requests",
        files=multipart({"student_id": student, "field_code": "health", "new_value": "2"}),
        headers=registrar,
    )
    assert made.status_code == 201, made.text
    step = made.json()["current_step"]
    row = (
        await ReviewStep.select(ReviewStep.became_current_at)
        .where(ReviewStep.id == step["id"])
        .first()
    )
    assert row is not None
    due = date.fromisoformat(step["due_on"])
    assert due == due_date(row["became_current_at"])
    assert working_days_between(china_today(row["became_current_at"]), due) == 10
    assert step["overdue"] is False

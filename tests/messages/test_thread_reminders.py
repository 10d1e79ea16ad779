"""Reminders on an unanswered thread, by the registered daily function with a frozen `now`:
due soon to the school's teacher and registrars, overdue to them and escalated to the school
leader, over a weekend; passed up, the same to the county and escalated to the city; each
once, however often the run is repeated; nothing once the thread is answered."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.config import Settings
from backend.messages import reminders  # noqa: F401 (registers "threads")
from backend.messages.tables import Thread
from backend.notify import schedule
from backend.notify.tables import Notification
from backend.outbox import Outbox
from backend.records.tables import GuardianLink
from backend.workdays import CHINA, add_working_days
from tests.factories import World, build_world, make_students
from tests.messages.test_threads import ask
from tests.records.requests import as_role

THURSDAY = date(2026, 12, 3)  # asked on it: due 3 working days later, Tuesday the 8th
DUE = date(2026, 12, 8)


def at(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=CHINA).astimezone(UTC)


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 1)
    await GuardianLink.insert(
        GuardianLink(
            account=world.accounts[Role.parent],
            student=world.students[0],
            created_at=datetime.now(UTC),
        )
    )
    return world


async def run_on(app: Litestar, day: date) -> int:
    run = schedule.Run(Outbox(app.state.arq), day, at(day))
    return await schedule._daily["threads"](run)


async def sent(world: World) -> set[tuple[Role, str]]:
    by_account = {account: role for role, account in world.accounts.items()}
    rows: list[dict[str, Any]] = await Notification.select(
        Notification.account, Notification.category, Notification.title
    ).where(Notification.subject_kind == "thread")
    for row in rows:
        assert not any(ch.isdigit() for ch in row["title"])
    return {
        (by_account[r["account"]], r["category"])
        for r in rows
        if not r["category"].startswith("thread_")
    }


async def test_an_unanswered_thread_is_due_soon_then_overdue_and_escalated_once(
    app: Litestar, client: httpx.AsyncClient, world: World
) -> None:
    assert add_working_days(THURSDAY, 3) == DUE
    assert "threads" in schedule._daily
    parent = await as_role(client, world, Role.parent)
    thread_id = (await ask(client, parent, world.students[0])).json()["id"]
    await Thread.update({Thread.due_on: DUE}).where(Thread.id == thread_id)

    assert await run_on(app, date(2026, 12, 4)) == 0  # Friday: 3 working days left
    assert await run_on(app, date(2026, 12, 7)) == 2  # Monday: 2 left (the weekend skipped)
    assert await sent(world) == {
        (Role.teacher, "step_due_soon"),
        (Role.registrar, "step_due_soon"),
    }
    assert await run_on(app, date(2026, 12, 7)) == 0  # the run repeated: nothing twice
    assert await run_on(app, date(2026, 12, 8)) == 0  # due today: already told
    assert await run_on(app, date(2026, 12, 9)) == 3  # overdue
    assert await sent(world) == {
        (Role.teacher, "step_due_soon"),
        (Role.registrar, "step_due_soon"),
        (Role.teacher, "step_overdue"),
        (Role.registrar, "step_overdue"),
        (Role.school_leader, "step_escalated"),
    }
    assert await run_on(app, date(2026, 12, 10)) == 0  # still overdue: once, ever

    # Answered, it waits on nobody.
    teacher = await as_role(client, world, Role.teacher)
    answered = await client.post(
        f"/threads/{thread_id}/messages", json={"body": "已答复"}, headers=teacher
    )
    assert answered.status_code == 201
    before = await Notification.count()
    assert await run_on(app, date(2026, 12, 20)) == 0
    assert await Notification.count() == before


async def test_a_thread_passed_up_reminds_the_county_and_escalates_to_the_city(
    app: Litestar, client: httpx.AsyncClient, world: World
) -> None:
    parent = await as_role(client, world, Role.parent)
    teacher = await as_role(client, world, Role.teacher)
    thread_id = (await ask(client, parent, world.students[0])).json()["id"]
    answered = await client.post(
        f"/threads/{thread_id}/messages", json={"body": "我们请示县里"}, headers=teacher
    )
    assert answered.status_code == 201
    passed = await client.post(f"/threads/{thread_id}/pass-up", json={}, headers=teacher)
    assert passed.status_code == 200, passed.text
    await Thread.update({Thread.authority_due_on: DUE}).where(Thread.id == thread_id)

    assert await run_on(app, date(2026, 12, 7)) == 1
    assert await run_on(app, date(2026, 12, 9)) == 2
    reminded = {(role, category) for role, category in await sent(world)}
    assert reminded == {
        (Role.county_reviewer, "step_due_soon"),
        (Role.county_reviewer, "step_overdue"),
        (Role.city_admin, "step_escalated"),
    }
    assert await run_on(app, date(2026, 12, 9)) == 0

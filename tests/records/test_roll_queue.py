"""Class-roll mismatches in the registrar's review queue (`GET /review-steps`), on the badge
(`GET /review-steps/counts`) and in the daily reminders: listed beside the review steps by due
date, counted exactly (a decision shows at once, however recently the page was counted), seen
by the school's registrars only; reminded when due soon and overdue (and escalated to the
school's leaders), once each, never once decided."""

from __future__ import annotations

import importlib
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.config import Settings
from backend.db import transaction
from backend.notify.schedule import run_if_due
from backend.notify.tables import Notification
from backend.outbox import Outbox
from backend.records.chains import ENTER
from backend.records.review_tables import ReviewStep, SubjectKind
from backend.records.reviews import open_round, place_of
from backend.records.roll_tables import RollEntry
from backend.workdays import CHINA, china_today, due_date
from tests.factories import World, bearer, build_world, login, make_account, make_students
from tests.factories import open_campaign as open_campaign_row
from tests.records.requests import as_role


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 3)
    await make_account(
        settings,
        Role.registrar,
        "13600000009",
        name="registrar_B",
        region_code="330108",
        school=world.schools["B"],
    )
    return world


@pytest.fixture
async def campaign() -> int:
    return await open_campaign_row()


async def mismatches(client: httpx.AsyncClient, world: World, campaign: int) -> tuple[int, int]:
    """A record of A1 not here, and a child in A1 without a record: the two entries."""
    teacher = await as_role(client, world, Role.teacher)
    path = f"/campaigns/{campaign}/classes/{world.classes['A1']}/roll"
    gone = await client.put(
        f"{path}/records/{world.students[0]}",
        json={"mark": "not_here", "reason": "left"},
        headers=teacher,
    )
    assert gone.status_code == 200, gone.text
    child = await client.post(
        f"{path}/unregistered",
        json={"name": "王小明", "sex": "1", "birth_date": "2018-03-05"},
        headers=teacher,
    )
    assert child.status_code == 201, child.text
    return gone.json()["id"], child.json()["id"]


async def enter_step(student_id: int, due_on: date) -> int:
    """A registrar's `enter` step (of a change request the queue cannot summarise)."""
    async with transaction():
        step = await open_round(
            SubjectKind.change_request, 999, 1, [ENTER], await place_of(student_id)
        )
    assert step is not None
    await ReviewStep.update({ReviewStep.due_on: due_on}).where(ReviewStep.id == step)
    return step


async def set_due(entry_id: int, due_on: date) -> None:
    await RollEntry.update({RollEntry.due_on: due_on}).where(RollEntry.id == entry_id)


async def queue(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> dict[str, Any]:
    response = await client.get("/review-steps", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def badge(client: httpx.AsyncClient, headers: dict[str, str]) -> tuple[int, ...]:
    response = await client.get("/review-steps/counts", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["waiting"], body["overdue"], body["due_soon"], body["roll_entries"]


async def test_mismatches_wait_in_the_registrars_queue_beside_the_steps(
    client: httpx.AsyncClient, world: World, campaign: int
) -> None:
    registrar = await as_role(client, world, Role.registrar)
    gone, child = await mismatches(client, world, campaign)
    today = china_today()
    step = await enter_step(world.students[1], today + timedelta(days=1))

    page = await queue(client, registrar)
    assert page["total"] == 3
    first, *roll = page["items"]
    assert (first["step_id"], first["subject_kind"]) == (step, "change_request")
    assert [(i["subject_kind"], i["subject_id"], i["step_id"]) for i in roll] == [
        ("roll_entry", gone, None),
        ("roll_entry", child, None),
    ]
    by_id = {i["subject_id"]: i for i in roll}
    missing, unregistered = by_id[gone], by_id[child]
    assert (missing["step_kind"], missing["role"], missing["student_id"]) == (
        "settle",
        "registrar",
        world.students[0],
    )
    assert missing["student_name"] == "学生A101"
    assert missing["summary"]["title"] == "班级名册核对：不在班（已离校）"
    assert (unregistered["student_id"], unregistered["student_name"]) == (None, "王小明")
    assert unregistered["summary"]["title"] == "班级名册核对：在班未建学籍"
    assert unregistered["class_name"] == "A1班"
    assert not missing["overdue"]
    assert not missing["in_bulk"]
    assert missing["due_on"] > today.isoformat()

    # Filters take them in or leave them out.
    only = await queue(client, registrar, subject_kind="roll_entry")
    assert [i["subject_id"] for i in only["items"]] == [gone, child]
    assert only["total"] == 2
    steps = await queue(client, registrar, subject_kind="change_request")
    assert [i["step_id"] for i in steps["items"]] == [step]
    assert (await queue(client, registrar, step_kind="settle"))["total"] == 2
    assert (await queue(client, registrar, step_kind="enter"))["total"] == 1
    # Pages cut across both kinds in one order.
    second = await queue(client, registrar, page=2, page_size=2)
    assert [i["subject_id"] for i in second["items"]] == [child]
    assert second["total"] == 3

    # Overdue: first, with its working days.
    await set_due(child, today - timedelta(days=7))
    late = await queue(client, registrar, overdue="true")
    assert [i["subject_id"] for i in late["items"]] == [child]
    assert late["items"][0]["overdue"]
    assert late["items"][0]["days_overdue"] >= 1
    assert (await queue(client, registrar))["items"][0]["subject_id"] == child
    assert await badge(client, registrar) == (3, 1, 1, 2)


async def test_only_the_schools_registrars_see_them(
    client: httpx.AsyncClient, world: World, campaign: int
) -> None:
    await mismatches(client, world, campaign)
    for role in (Role.teacher, Role.school_leader, Role.county_reviewer):
        headers = await as_role(client, world, role)
        assert (await queue(client, headers))["total"] == 0
        assert await badge(client, headers) == (0, 0, 0, 0)
    other = bearer(await login(client, "13600000009"))  # school B's registrar
    assert (await queue(client, other))["total"] == 0
    assert await badge(client, other) == (0, 0, 0, 0)


async def test_a_decision_leaves_the_queue_and_the_badge_at_once(
    client: httpx.AsyncClient, world: World, campaign: int
) -> None:
    registrar = await as_role(client, world, Role.registrar)
    gone, child = await mismatches(client, world, campaign)
    assert (await queue(client, registrar))["total"] == 2  # the total is now remembered
    assert await badge(client, registrar) == (2, 0, 0, 2)
    kept = await client.post(
        f"/roll-entries/{gone}/decision", json={"outcome": "keep"}, headers=registrar
    )
    assert kept.status_code == 200, kept.text
    page = await queue(client, registrar)
    assert ([i["subject_id"] for i in page["items"]], page["total"]) == ([child], 1)
    assert await badge(client, registrar) == (1, 0, 0, 1)
    registered = await client.post(
        f"/roll-entries/{child}/registration",
        json={"fields": {"ethnicity": "01", "nationality": "CN", "id_type": "9"}},
        headers=registrar,
    )
    assert registered.status_code == 201, registered.text
    assert (await queue(client, registrar))["total"] == 0
    assert await badge(client, registrar) == (0, 0, 0, 0)


def china(day: date, at: time = time(8, 35)) -> datetime:
    return datetime.combine(day, at, CHINA).astimezone(UTC)


Told = tuple[int, str, str | None, int | None]


async def run_on(app: Litestar, moment: datetime) -> set[Told]:
    """One tick of the worker at `moment`; what it newly told."""
    last = await Notification.select(Notification.id).order_by(Notification.id, ascending=False)
    await run_if_due(Outbox(app.state.arq), moment)
    rows = await Notification.select(
        Notification.account,
        Notification.category,
        Notification.subject_kind,
        Notification.subject_id,
    ).where(Notification.id > (last[0]["id"] if last else 0))
    return {
        (r["account"], r["category"], r["subject_kind"], r["subject_id"])
        for r in rows
        if r["category"] != "roll_mismatch"
    }


async def test_waiting_mismatches_are_reminded_when_due_soon_and_overdue(
    app: Litestar, client: httpx.AsyncClient, world: World, campaign: int
) -> None:
    registrar = await as_role(client, world, Role.registrar)
    accounts = world.accounts
    me, leader = accounts[Role.registrar], accounts[Role.school_leader]
    gone, child = await mismatches(client, world, campaign)
    teacher = await as_role(client, world, Role.teacher)
    kept = await client.put(
        f"/campaigns/{campaign}/classes/{world.classes['A1']}/roll/records/{world.students[1]}",
        json={"mark": "not_here", "reason": "other"},
        headers=teacher,
    )
    decided = kept.json()["id"]
    response = await client.post(
        f"/roll-entries/{decided}/decision", json={"outcome": "keep"}, headers=registrar
    )
    assert response.status_code == 200, response.text
    await set_due(gone, date(2026, 10, 9))
    await set_due(child, date(2026, 10, 12))
    await set_due(decided, date(2026, 10, 9))

    # Thursday 8 October: the not-here entry has 2 working days left (8th, 9th).
    assert await run_on(app, china(date(2026, 10, 8))) == {
        (me, "review_digest", None, None),
        (me, "step_due_soon", "roll_entry", gone),
    }
    digest = (
        await Notification.select()
        .where((Notification.account == me) & (Notification.category == "review_digest"))
        .first()
    )
    assert digest is not None
    assert digest["title"] == "您有 2 条待办，其中 1 条即将到期"
    # Saturday 10th, a make-up workday: it is overdue (the registrar, and the school's
    # leader above), and the child has 2 working days left (10th, 12th).
    assert await run_on(app, china(date(2026, 10, 10))) == {
        (me, "review_digest", None, None),
        (me, "step_overdue", "roll_entry", gone),
        (leader, "step_escalated", "roll_entry", gone),
        (me, "step_due_soon", "roll_entry", child),
    }
    # Monday 12th: nothing new but the digest; the decided entry was never told.
    assert await run_on(app, china(date(2026, 10, 12))) == {(me, "review_digest", None, None)}
    told = await Notification.select(Notification.subject_id, Notification.title).where(
        (Notification.subject_kind == "roll_entry") & (Notification.category != "roll_mismatch")
    )
    assert decided not in {row["subject_id"] for row in told}
    assert all("王小明" not in row["title"] for row in told)


async def test_mismatches_waiting_before_due_dates_were_kept_get_one(
    client: httpx.AsyncClient, world: World, campaign: int
) -> None:
    """The migration that added `due_on` gives the entries already waiting theirs."""
    _, child = await mismatches(client, world, campaign)
    await RollEntry.update({RollEntry.due_on: None}).where(RollEntry.id == child)
    migration = importlib.import_module("migrations.backend_2026_12_01t15_44_17_000000")
    assert await migration.backfill_due_dates() == 1
    rows = await RollEntry.select(RollEntry.id, RollEntry.due_on, RollEntry.marked_at)
    for row in rows:
        assert row["due_on"] == due_date(row["marked_at"]), row
    assert await migration.backfill_due_dates() == 0

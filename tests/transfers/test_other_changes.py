"""The other status changes, entered by the school's registrar and reviewed by the county:
suspension and return, leaving, study abroad, skipping and repeating a grade, cancellation
after death (60 working days); and a transfer's step going overdue across the Spring
Festival (reminder to its holder, escalation to the level above)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.config import Settings
from backend.notify.schedule import run_if_due
from backend.notify.tables import Notification
from backend.outbox import Outbox
from backend.records.review_tables import ReviewStep
from backend.workdays import CHINA, add_working_days, china_today
from tests.factories import World
from tests.records.requests import audit_rows
from tests.transfers.world import (
    as_role,
    as_staff,
    decide,
    read,
    special_education,
    start_transfer,
    student,
    transfer_world,
)


@pytest.fixture
async def world(settings: Settings) -> World:
    return await transfer_world(settings)


async def enter(
    client: httpx.AsyncClient, world: World, kind: str, student_id: int, **more: object
) -> httpx.Response:
    return await client.post(
        "/status-changes",
        json={"kind": kind, "student_id": student_id, "reason": "见附件", **more},
        headers=await as_role(client, world, Role.registrar),
    )


async def review(client: httpx.AsyncClient, world: World, change_id: int) -> dict[str, object]:
    county = await as_role(client, world, Role.county_reviewer)
    step = (await read(client, county, change_id))["current_step"]
    assert step["kind"] == "review"
    assert step["holder"] == "西湖区 县级学籍主管部门"
    answer = await decide(client, county, step["id"])
    assert answer.status_code == 200, answer.text
    return await read(client, county, change_id)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("kind", "status"),
    [("suspend", "suspended"), ("leave", "left"), ("abroad", "abroad"), ("cancel", "cancelled")],
)
async def test_a_status_change_moves_the_record_when_the_county_approves(
    client: httpx.AsyncClient, world: World, kind: str, status: str
) -> None:
    child = world.students[0]
    started = await enter(client, world, kind, child)
    assert started.status_code == 201, started.text
    body = started.json()
    assert [(s["kind"], s["state"]) for s in body["steps"]] == [
        ("enter", "approved"),
        ("review", "current"),
    ]
    assert (await student(child))["status"] == "enrolled"  # nothing changes before approval
    done = await review(client, world, body["id"])
    assert done["state"] == "completed"
    row = await student(child)
    assert row["status"] == status
    assert row["open_change"] is None
    assert [r["after"]["status"] for r in await audit_rows("status", "student", child)] == [status]


async def test_a_suspended_student_returns(client: httpx.AsyncClient, world: World) -> None:
    child = world.students[0]
    early = await enter(client, world, "resume", child)
    assert early.status_code == 409
    assert early.json()["code"] == "status_not_allowed"
    await review(client, world, (await enter(client, world, "suspend", child)).json()["id"])
    # a suspended student is not transferred
    blocked = await enter(client, world, "skip", child, to_class_id=world.classes["A3"])
    assert blocked.json()["code"] == "status_not_allowed"
    back = await enter(client, world, "resume", child)
    assert back.status_code == 201, back.text
    await review(client, world, back.json()["id"])
    assert (await student(child))["status"] == "enrolled"


async def test_skipping_and_repeating_move_the_student_within_the_school(
    client: httpx.AsyncClient, world: World
) -> None:
    first_grade, second_grade = world.students[0], world.other_students[0]
    wrong = await enter(client, world, "skip", first_grade, to_class_id=world.classes["A2"])
    assert wrong.status_code == 400
    assert wrong.json()["code"] == "wrong_target_class"  # A2 is the same grade
    skip = await enter(client, world, "skip", first_grade, to_class_id=world.classes["A3"])
    assert skip.status_code == 201, skip.text
    await review(client, world, skip.json()["id"])
    assert (await student(first_grade))["school_class"] == world.classes["A3"]

    await special_education(second_grade)  # an ordinary student may not repeat: test_repeats
    repeat = await enter(client, world, "repeat", second_grade, to_class_id=world.classes["A1"])
    assert repeat.status_code == 201, repeat.text
    await review(client, world, repeat.json()["id"])
    row = await student(second_grade)
    assert (row["school_class"], row["status"]) == (world.classes["A1"], "enrolled")


async def test_a_cancellation_needs_a_reason_and_has_60_working_days(
    client: httpx.AsyncClient, world: World
) -> None:
    child = world.students[0]
    bare = await enter(client, world, "cancel", child, reason=" ")
    assert bare.status_code == 400
    assert bare.json()["code"] == "reason_required"
    body = (await enter(client, world, "cancel", child, reason="学生因病死亡")).json()
    step = body["current_step"]
    assert step["due_days"] == 60
    assert step["due_on"] == add_working_days(china_today(), 60).isoformat()
    suspend = await enter(client, world, "suspend", world.students[1])
    assert suspend.json()["current_step"]["due_days"] == 10


def china(day: date, at: time = time(8, 35)) -> datetime:
    return datetime.combine(day, at, CHINA).astimezone(UTC)


async def test_a_release_step_overdue_across_the_spring_festival(
    app: Litestar, client: httpx.AsyncClient, world: World
) -> None:
    """The sending school's step became current on Tuesday 10 February 2026: 10 working days
    skip the Spring Festival holiday (15–23 February) and count the make-up Saturdays (14 and
    28 February), so it is due on Monday 2 March; on the 3rd its holder is told it is overdue
    and the school's leader is told above it."""
    receiving = await as_staff(client, world, "registrar_B")
    change_id = (
        await start_transfer(client, receiving, world.students[0], world.classes["B1"])
    ).json()["id"]
    release = (await read(client, receiving, change_id))["current_step"]
    await ReviewStep.update(
        {
            ReviewStep.became_current_at: china(date(2026, 2, 10), time(10, 0)),
            ReviewStep.due_on: add_working_days(date(2026, 2, 10), 10),
        }
    ).where(ReviewStep.id == release["id"])
    body = await read(client, receiving, change_id)
    assert body["current_step"]["due_on"] == "2026-03-02"
    assert body["current_step"]["overdue"] is True

    outbox = Outbox(app.state.arq)
    await run_if_due(outbox, china(date(2026, 3, 2)))
    on_due_day = await Notification.select(Notification.account, Notification.category).where(
        Notification.subject_id == release["id"]
    )
    assert {n["category"] for n in on_due_day} <= {"step_due_soon"}
    await run_if_due(outbox, china(date(2026, 3, 3)))
    told = await Notification.select(Notification.account, Notification.category).where(
        (Notification.subject_id == release["id"]) & (Notification.category != "step_due_soon")
    )
    assert {(n["account"], n["category"]) for n in told} == {
        (world.accounts[Role.registrar], "step_overdue"),
        (world.accounts[Role.school_leader], "step_escalated"),
    }

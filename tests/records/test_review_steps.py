"""Deciding review steps through the API: the engine every reviewed thing goes through
(`records.reviews`), shown on a registrar's own ordinary change approved by a school leader."""

from __future__ import annotations

import uuid

import httpx
import pytest

from backend.accounts.audit import Actor
from backend.accounts.principal import Principal
from backend.accounts.roles import Role, ScopeKind
from backend.accounts.scope import Scope
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.records.change_requests import NewRequest, create_request
from backend.records.moves import move_student
from backend.records.review_tables import (
    ChangeRequest,
    RequestSource,
    RequestState,
    ReviewStep,
    StepState,
)
from backend.records.service import load_fields
from backend.records.tables import Student
from tests.factories import (
    SYSTEM,
    World,
    bearer,
    build_world,
    login,
    make_account,
    make_students,
    open_campaign,
)


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 2)
    await open_campaign(corrections_open=True)
    return world


def registrar(world: World) -> Principal:
    return Principal(
        account_id=world.accounts[Role.registrar],
        role=Role.registrar,
        name="registrar",
        phone=world.phones[Role.registrar],
        scope=Scope(
            kind=ScopeKind.school,
            region_code="330106",
            school_id=world.schools["A"],
            class_id=None,
            account_id=world.accounts[Role.registrar],
        ),
        session_id=uuid.uuid4(),
        password_change_required=False,
    )


async def test_a_leader_approves_an_ordinary_change_once(
    client: httpx.AsyncClient, world: World
) -> None:
    author = registrar(world)
    student = world.students[0]
    request_id = await create_request(
        author,
        Actor(author.account_id, "registrar", None, None),
        NewRequest(student, "health", "2", "体检报告", RequestSource.registrar),
    )
    steps = await ReviewStep.select().where(ReviewStep.subject_id == request_id)
    assert [(s["kind"], s["state"]) for s in steps] == [
        ("enter", StepState.approved.value),
        ("approve", StepState.current.value),
    ]
    current = steps[1]["id"]
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    refused = await client.post(
        f"/review-steps/{current}/decision", json={"decision": "approve"}, headers=teacher
    )
    assert refused.status_code in (403, 404), refused.text

    leader = bearer(await login(client, world.phones[Role.school_leader]))
    audit_rows = await AuditLog.count()
    done = await client.post(
        f"/review-steps/{current}/decision", json={"decision": "approve"}, headers=leader
    )
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "approved"
    row = await Student.select(Student.fields).where(Student.id == student).first()
    assert row is not None
    assert load_fields(row["fields"])["health"] == "2"
    request = await ChangeRequest.select().where(ChangeRequest.id == request_id).first()
    assert request is not None
    assert request["state"] == RequestState.applied.value
    assert await AuditLog.count() > audit_rows

    again = await client.post(
        f"/review-steps/{current}/decision", json={"decision": "approve"}, headers=leader
    )
    assert again.status_code == 409
    assert again.json()["code"] == "step_already_decided"


async def test_a_step_waiting_when_the_student_moves_is_decided_at_the_new_school(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    """The old school no longer answers for the record; its leader cannot decide, the new
    school's can, and the step shows in the new leader's queue."""
    author = registrar(world)
    student = world.students[0]
    request_id = await create_request(
        author,
        Actor(author.account_id, "registrar", None, None),
        NewRequest(student, "health", "2", "体检报告", RequestSource.registrar),
    )
    step = (
        await ReviewStep.select()
        .where((ReviewStep.subject_id == request_id) & (ReviewStep.state == "current"))
        .first()
    )
    assert step is not None
    await move_student(SYSTEM, student, world.classes["B1"])
    await make_account(
        settings, Role.school_leader, "13800007777", region_code="330108", school=world.schools["B"]
    )
    old_leader = bearer(await login(client, world.phones[Role.school_leader]))
    new_leader = bearer(await login(client, "13800007777"))

    queue = await client.get("/review-steps", headers=new_leader)
    assert [item["step_id"] for item in queue.json()["items"]] == [step["id"]]
    refused = await client.post(
        f"/review-steps/{step['id']}/decision", json={"decision": "approve"}, headers=old_leader
    )
    assert refused.status_code == 404
    done = await client.post(
        f"/review-steps/{step['id']}/decision", json={"decision": "approve"}, headers=new_leader
    )
    assert done.status_code == 200, done.text

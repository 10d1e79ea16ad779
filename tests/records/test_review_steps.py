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
from backend.records.review_tables import (
    ChangeRequest,
    RequestSource,
    RequestState,
    ReviewStep,
    StepState,
)
from backend.records.service import load_fields
from backend.records.tables import Student
from tests.factories import World, bearer, build_world, login, make_students, open_campaign


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

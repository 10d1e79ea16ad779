"""A parent's hot reads (`/my/children`, `/my/children/{id}`, `/uploads/{id}`) check the
caller in the same statement as the read: whatever that changes, a sealed or disabled
account, a logged-out session or a password an administrator reset stops at the very next
request, a staff account gets its own answers, and a refused read is audited under the
caller's name."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from backend.accounts.roles import AccountStatus, Role
from backend.accounts.tables import Account, AuditLog
from backend.config import Settings
from backend.records.tables import GuardianLink
from tests.factories import (
    World,
    bearer,
    build_world,
    login,
    make_account,
    make_students,
    open_campaign,
)
from tests.parents import images
from tests.parents.helpers import issue_forms


@pytest.fixture
async def world(client: httpx.AsyncClient, settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 2)
    await open_campaign()
    await issue_forms(client, world)
    await GuardianLink.insert(
        GuardianLink(
            account=world.accounts[Role.parent],
            student=world.students[0],
            guardian_slot=1,
            created_at=datetime.now(UTC),
        )
    )
    return world


async def _paths(client: httpx.AsyncClient, world: World, parent: dict[str, str]) -> list[str]:
    child = world.students[0]
    sent = await client.post(
        f"/students/{child}/photos",
        headers=parent,
        files={"file": ("photo.jpg", images.jpeg_with_orientation(1))},
    )
    assert sent.status_code == 201, sent.text
    return ["/my/children", f"/my/children/{child}", f"/uploads/{sent.json()['id']}"]


async def _answers(
    client: httpx.AsyncClient, paths: list[str], headers: dict[str, str]
) -> list[tuple[int, str | None]]:
    answers = []
    for path in paths:
        response = await client.get(path, headers=headers)
        body = response.json()
        answers.append((response.status_code, body.get("code") if isinstance(body, dict) else None))
    return answers


@pytest.mark.parametrize("status", [AccountStatus.sealed, AccountStatus.disabled])
async def test_an_inactive_parent_is_refused_at_the_next_read(
    client: httpx.AsyncClient, world: World, status: AccountStatus
) -> None:
    parent = bearer(await login(client, world.phones[Role.parent]))
    paths = await _paths(client, world, parent)
    assert [code for code, _ in await _answers(client, paths, parent)] == [200, 200, 200]

    await Account.update({Account.status: status}).where(Account.id == world.accounts[Role.parent])

    assert await _answers(client, paths, parent) == [(401, "account_inactive")] * 3


async def test_a_logged_out_session_is_refused_and_the_other_device_reads_on(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = bearer(await login(client, world.phones[Role.parent]))
    other_device = bearer(await login(client, world.phones[Role.parent]))
    paths = await _paths(client, world, parent)

    assert (await client.post("/auth/logout", headers=parent)).status_code == 204

    answers = await _answers(client, paths, parent)
    assert answers == [(401, "invalid_token")] * 3
    assert [code for code, _ in await _answers(client, paths, other_device)] == [200, 200, 200]


async def test_a_reset_password_must_be_changed_before_reading(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = bearer(await login(client, world.phones[Role.parent]))
    paths = await _paths(client, world, parent)

    await Account.update({Account.must_change_password: True}).where(
        Account.id == world.accounts[Role.parent]
    )

    assert await _answers(client, paths, parent) == [(403, "password_change_required")] * 3


async def test_staff_get_their_own_answers_and_their_reads_are_audited(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = bearer(await login(client, world.phones[Role.parent]))
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    paths = await _paths(client, world, parent)
    upload_id = int(paths[2].rsplit("/", 1)[1])

    answers = await _answers(client, paths, teacher)
    assert answers == [(403, "parents_only"), (403, "parents_only"), (200, None)]
    read = await AuditLog.select().where(
        (AuditLog.action == "read") & (AuditLog.entity == "upload")
    )
    assert [(r["actor_id"], r["entity_id"]) for r in read] == [
        (world.accounts[Role.teacher], str(upload_id))
    ]


async def test_another_familys_records_answer_404_and_the_attempt_names_the_caller(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    parent = bearer(await login(client, world.phones[Role.parent]))
    paths = await _paths(client, world, parent)
    stranger_id = await make_account(settings, Role.parent, "13900000099")
    stranger = bearer(await login(client, "13900000099"))

    answers = await _answers(client, paths[1:], stranger)
    assert answers == [(404, "not_found")] * 2
    assert (await client.get("/my/children", headers=stranger)).json() == []
    denied = await AuditLog.select(AuditLog.actor_id, AuditLog.entity).where(
        AuditLog.action == "access_denied"
    )
    assert sorted((r["actor_id"], r["entity"]) for r in denied) == [
        (stranger_id, "student"),
        (stranger_id, "upload"),
    ]

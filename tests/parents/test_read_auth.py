"""A parent's hot reads (`/my/children`, `/my/children/{id}`, `/uploads/{id}`) check the
caller in the same statement as the read: whatever that changes, a sealed or disabled
account, a logged-out session or a password an administrator reset stops at the very next
request, a staff account gets its own answers, and a refused read is audited under the
caller's name."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.accounts.tables import Account, AccountStatus, AuditLog
from backend.config import Settings
from backend.http import PRINCIPAL_IN_READ
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
        f"/students/{child}/uploads",
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


async def test_a_teacher_moved_to_another_class_sees_the_new_class_at_once(
    client: httpx.AsyncClient, world: World
) -> None:
    """`/families` is built for the scope the account had at its last request; the same
    statement says when that changed, and the list is read again for the new class."""
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    before = (await client.get("/families", headers=teacher)).json()
    assert sorted(f["student_id"] for f in before["items"]) == sorted(world.students)

    a2 = await make_students(world, "A2", 1, start=20)
    await Account.update({Account.school_class: world.classes["A2"]}).where(
        Account.id == world.accounts[Role.teacher]
    )

    after = (await client.get("/families", headers=teacher)).json()
    assert [f["student_id"] for f in after["items"]] == a2
    assert after["total"] == 1


async def test_a_teachers_list_stops_at_once_for_an_inactive_account_or_a_reset_password(
    client: httpx.AsyncClient, world: World
) -> None:
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    other_device = bearer(await login(client, world.phones[Role.teacher]))
    assert (await client.get("/families", headers=teacher)).status_code == 200

    assert (await client.post("/auth/logout", headers=teacher)).status_code == 204
    logged_out = await client.get("/families", headers=teacher)
    assert (logged_out.status_code, logged_out.json()["code"]) == (401, "invalid_token")

    await Account.update({Account.must_change_password: True}).where(
        Account.id == world.accounts[Role.teacher]
    )
    reset = await client.get("/families", headers=other_device)
    assert (reset.status_code, reset.json()["code"]) == (403, "password_change_required")

    await Account.update({Account.status: AccountStatus.sealed}).where(
        Account.id == world.accounts[Role.teacher]
    )
    sealed = await client.get("/families", headers=other_device)
    assert (sealed.status_code, sealed.json()["code"]) == (401, "account_inactive")


async def test_a_parent_is_refused_the_families_list_and_the_refusal_is_audited(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = bearer(await login(client, world.phones[Role.parent]))
    for _ in range(2):
        refused = await client.get("/families", headers=parent)
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    audited = await AuditLog.select(AuditLog.actor_id).where(AuditLog.action == "forbidden")
    assert [r["actor_id"] for r in audited] == [world.accounts[Role.parent]] * 2


def test_only_the_hot_reads_check_their_caller_in_the_read(app: Litestar) -> None:
    """A route marked `PRINCIPAL_IN_READ` gets no principal from the middleware: its handler
    must check the caller itself (`http.read_as_caller`). Adding one is a decision to review."""
    marked = {
        route.path
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if handler.opt.get(PRINCIPAL_IN_READ)
    }
    assert marked == {
        "/my/children",
        "/my/children/{student_id:int}",
        "/uploads/{upload_id:int}",
        "/families",
    }

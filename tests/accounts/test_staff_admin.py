"""An admin resets a staff account's password inside its scope and above its rank: a
temporary password shown once or sent by SMS, to be changed at the next sign-in; every session
of the account ends; audited without the password. The account list filters by role, status
and name."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.accounts.tables import Account, AuditLog, AuthSession
from backend.config import Settings
from backend.records.tables import GuardianLink
from tests.factories import (
    PASSWORD,
    World,
    bearer,
    build_world,
    login,
    make_account,
    make_students,
    run_jobs,
)


@pytest.fixture
async def world(settings: Settings) -> World:
    return await build_world(settings)


async def as_role(client: httpx.AsyncClient, world: World, role: Role) -> dict[str, str]:
    return bearer(await login(client, world.phones[role]))


def reset_url(account_id: int) -> str:
    return f"/accounts/{account_id}/password-reset"


async def test_registrar_resets_a_teachers_password_shown_once(
    client: httpx.AsyncClient, world: World
) -> None:
    teacher = world.accounts[Role.teacher]
    teachers_tokens = await login(client, world.phones[Role.teacher])
    headers = await as_role(client, world, Role.registrar)

    response = await client.post(reset_url(teacher), headers=headers, json={"delivery": "show"})

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    temporary = body["temporary_password"]
    assert len(temporary) == 12
    assert body["delivery"] == "show"
    assert body["sessions_ended"] == 1
    # The teacher's running session is over, at once: its access token and its refresh token.
    me = await client.get("/me", headers=bearer(teachers_tokens))
    assert me.status_code == 401
    refreshed = await client.post(
        "/auth/refresh", json={"refresh_token": teachers_tokens["refresh_token"]}
    )
    assert refreshed.status_code == 401
    # The old password no longer signs in; the temporary one does, and must be changed first.
    old = await client.post(
        "/auth/login", json={"phone": world.phones[Role.teacher], "password": PASSWORD}
    )
    assert old.status_code == 401
    tokens = await login(client, world.phones[Role.teacher], temporary)
    assert tokens["password_change_required"] is True
    blocked = await client.get("/students", headers=bearer(tokens))
    assert blocked.status_code == 403
    assert blocked.json()["code"] == "password_change_required"
    changed = await client.post(
        "/auth/password",
        headers=bearer(tokens),
        json={"old_password": temporary, "new_password": "Tiger-lily-4471"},
    )
    assert changed.status_code == 204
    # Audited: who reset whose, how it was delivered, never the password.
    [row] = await AuditLog.select().where(AuditLog.action == "reset_password")
    assert row["actor_id"] == world.accounts[Role.registrar]
    assert row["entity_id"] == str(teacher)
    assert temporary not in (row["after"] or "")
    assert '"delivery":"show"' in (row["after"] or "").replace(" ", "")
    revoked = await AuthSession.select().where(
        (AuthSession.account == teacher) & (AuthSession.revoked_reason == "password_reset")
    )
    assert len(revoked) == 1


async def test_a_reset_by_sms_answers_no_password_and_the_sms_carries_nothing_personal(
    client: httpx.AsyncClient, world: World, app: Litestar, settings: Settings
) -> None:
    sent = app.state.sms.sent
    sent.clear()
    headers = await as_role(client, world, Role.county_reviewer)
    registrar = world.accounts[Role.registrar]

    response = await client.post(reset_url(registrar), headers=headers, json={"delivery": "sms"})

    assert response.status_code == 200, response.text
    assert response.json()["temporary_password"] is None
    await run_jobs(app, settings)
    [(phone, text)] = sent
    assert phone == world.phones[Role.registrar]
    assert phone not in text
    assert "registrar" not in text
    found = re.search(r"临时密码：([A-Za-z0-9]{12})", text)
    assert found is not None
    tokens = await login(client, world.phones[Role.registrar], found.group(1))
    assert tokens["password_change_required"] is True


@pytest.mark.parametrize(
    ("admin", "target", "status", "code"),
    [
        # Not above it: a registrar and a school leader of the same school.
        (Role.registrar, Role.school_leader, 403, "rank_too_high"),
        # Its own rank.
        (Role.city_admin, Role.city_admin, 403, "rank_too_high"),
        # A parent resets by SMS at sign-in, never by an admin.
        (Role.registrar, Role.parent, 403, "rank_too_high"),
        # A teacher administers nobody.
        (Role.teacher, Role.teacher, 403, "forbidden"),
        # A school leader is not an account admin.
        (Role.school_leader, Role.teacher, 403, "forbidden"),
    ],
)
async def test_who_may_not_reset(
    client: httpx.AsyncClient, world: World, admin: Role, target: Role, status: int, code: str
) -> None:
    if target is Role.parent:  # a parent of a child of school A: linked, so in scope
        [student] = await make_students(world, "A1", 1)
        await GuardianLink.insert(
            GuardianLink(
                account=world.accounts[Role.parent],
                student=student,
                guardian_slot=1,
                status="confirmed",
                created_at=datetime.now(UTC),
            )
        )
    headers = await as_role(client, world, admin)
    before = await Account.select(Account.password_hash).where(Account.id == world.accounts[target])

    response = await client.post(reset_url(world.accounts[target]), headers=headers, json={})

    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    after = await Account.select(Account.password_hash).where(Account.id == world.accounts[target])
    assert after == before
    assert not await AuditLog.exists().where(AuditLog.action == "reset_password")


async def test_an_account_outside_the_scope_answers_as_missing_and_is_audited(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    other = await make_account(
        settings,
        Role.teacher,
        "13900009999",
        region_code="330106",
        school=world.schools["B"],
        school_class=world.classes["B1"],
    )
    headers = await as_role(client, world, Role.registrar)  # of school A

    response = await client.post(reset_url(other), headers=headers, json={"delivery": "show"})
    missing = await client.post(reset_url(999999), headers=headers, json={"delivery": "show"})

    assert response.status_code == missing.status_code == 404
    assert response.json()["code"] == "not_found"
    denied = await AuditLog.select().where(AuditLog.action == "access_denied")
    assert [d["entity_id"] for d in denied] == [str(other)]
    login_old = await client.post(
        "/auth/login", json={"phone": "13900009999", "password": PASSWORD}
    )
    assert login_old.status_code == 200


async def test_a_disabled_account_is_not_reset(client: httpx.AsyncClient, world: World) -> None:
    headers = await as_role(client, world, Role.registrar)
    teacher = world.accounts[Role.teacher]
    assert (await client.post(f"/accounts/{teacher}/disable", headers=headers)).status_code == 200

    response = await client.post(reset_url(teacher), headers=headers, json={"delivery": "show"})

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_status"


async def test_hostile_bodies_are_refused(client: httpx.AsyncClient, world: World) -> None:
    headers = await as_role(client, world, Role.registrar)
    url = reset_url(world.accounts[Role.teacher])
    for body in ({"delivery": "email"}, {"delivery": "show", "password": "mine123456"}):
        response = await client.post(url, headers=headers, json=body)
        assert response.status_code == 400, body
        assert response.json()["code"] == "validation_error"


async def test_account_list_filters_by_role_status_and_name(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = await as_role(client, world, Role.county_reviewer)
    registrar_headers = await as_role(client, world, Role.registrar)
    teacher = world.accounts[Role.teacher]
    await client.post(f"/accounts/{teacher}/disable", headers=registrar_headers)

    async def ids(**params: str) -> tuple[list[int], int]:
        response = await client.get("/accounts", headers=headers, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        return [a["id"] for a in body["items"]], body["total"]

    assert await ids(role="teacher") == ([world.accounts[Role.teacher]], 1)
    assert await ids(status="disabled") == ([world.accounts[Role.teacher]], 1)
    assert await ids(role="registrar", status="active") == ([world.accounts[Role.registrar]], 1)
    assert await ids(name="school_le") == ([world.accounts[Role.school_leader]], 1)
    # A wildcard in the name is a letter: "%" matches no name.
    assert await ids(name="%") == ([], 0)
    # The province's admin is above the county: not in its list, whatever the filter.
    assert await ids(role="province_admin") == ([], 0)
    everyone, total = await ids(page_size="2")
    assert len(everyone) == 2
    assert total >= 4
    bad = await client.get("/accounts", headers=headers, params={"status": "gone"})
    assert bad.status_code == 400
    assert bad.json()["code"] == "validation_error"

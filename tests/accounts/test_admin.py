"""Staff accounts are made and managed only inside the admin's scope and below its rank; unused
accounts are sealed by the daily job and only a higher admin unseals them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.accounts.tables import Account, AuditLog
from backend.config import Settings
from tests.factories import PASSWORD, World, bearer, build_world, login, run_jobs


@pytest.fixture
async def world(settings: Settings) -> World:
    return await build_world(settings)


async def as_role(client: httpx.AsyncClient, world: World, role: Role) -> dict[str, str]:
    return bearer(await login(client, world.phones[role]))


def teacher_body(class_id: int, phone: str = "13511112222") -> dict[str, Any]:
    return {
        "phone": phone,
        "name": "新老师",
        "role": "teacher",
        "initial_password": "Init1234pw",
        "class_id": class_id,
    }


async def test_registrar_creates_a_teacher_in_its_school(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = await as_role(client, world, Role.registrar)

    created = await client.post(
        "/accounts", headers=headers, json=teacher_body(world.classes["A2"])
    )

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["scope"] == {
        "kind": "class",
        "region_code": "330106",
        "school_id": world.schools["A"],
        "class_id": world.classes["A2"],
    }
    audit = await AuditLog.select().where(
        (AuditLog.action == "create") & (AuditLog.entity == "account")
    )
    assert audit[0]["entity_id"] == str(body["id"])
    assert audit[0]["actor_id"] == world.accounts[Role.registrar]
    # An admin-set password must be changed before anything else.
    tokens = await login(client, "13511112222", "Init1234pw")
    assert tokens["password_change_required"] is True


async def test_registrar_cannot_create_outside_its_school(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = await as_role(client, world, Role.registrar)

    response = await client.post(
        "/accounts", headers=headers, json=teacher_body(world.classes["B1"])
    )

    assert response.status_code == 404
    assert not await Account.exists().where(Account.phone == "13511112222")
    denied = await AuditLog.select().where(AuditLog.action == "access_denied")
    assert denied[0]["entity"] == "school_class"


async def test_no_admin_creates_an_account_of_its_own_rank_or_higher(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = await as_role(client, world, Role.city_admin)
    body = {
        "phone": "13511113333",
        "name": "x",
        "role": "city_admin",
        "initial_password": "Init1234pw",
        "region_code": "330100",
    }

    response = await client.post("/accounts", headers=headers, json=body)

    assert response.status_code == 403
    assert response.json()["code"] == "rank_too_high"


async def test_teacher_may_not_create_accounts(client: httpx.AsyncClient, world: World) -> None:
    headers = await as_role(client, world, Role.teacher)
    response = await client.post(
        "/accounts", headers=headers, json=teacher_body(world.classes["A1"])
    )
    assert response.status_code == 403


async def test_province_admin_creates_a_county_reviewer_only_in_its_province(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = await as_role(client, world, Role.province_admin)
    body = {
        "phone": "13511114444",
        "name": "审核员",
        "role": "county_reviewer",
        "initial_password": "Init1234pw",
    }

    inside = await client.post("/accounts", headers=headers, json={**body, "region_code": "330203"})
    outside = await client.post(
        "/accounts", headers=headers, json={**body, "phone": "13511115555", "region_code": "320102"}
    )
    wrong_level = await client.post(
        "/accounts", headers=headers, json={**body, "phone": "13511116666", "region_code": "330200"}
    )

    assert inside.status_code == 201
    assert outside.status_code == 404
    assert wrong_level.status_code == 400
    assert wrong_level.json()["field_errors"]["region_code"]


async def test_duplicate_phone_is_a_conflict(client: httpx.AsyncClient, world: World) -> None:
    headers = await as_role(client, world, Role.registrar)
    body = teacher_body(world.classes["A2"], phone=world.phones[Role.parent])

    response = await client.post("/accounts", headers=headers, json=body)

    assert response.status_code == 409
    assert response.json()["code"] == "phone_taken"


async def test_daily_job_seals_unused_staff_accounts_and_only_a_higher_admin_unseals(
    client: httpx.AsyncClient, world: World, app: Litestar, settings: Settings
) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=settings.seal_after_inactive_days + 1)
    teacher, registrar = world.accounts[Role.teacher], world.accounts[Role.registrar]
    await Account.update({Account.last_active_at: long_ago}).where(
        Account.id.is_in([teacher, world.accounts[Role.parent]])
    )

    await app.state.arq.enqueue_job("seal_inactive_accounts_job")
    await run_jobs(app, settings)

    statuses = {r["id"]: r["status"] for r in await Account.select(Account.id, Account.status)}
    assert statuses[teacher] == "sealed"
    assert statuses[world.accounts[Role.parent]] == "active"  # parents are not sealed
    assert statuses[registrar] == "active"
    refused = await client.post(
        "/auth/login", json={"phone": world.phones[Role.teacher], "password": PASSWORD}
    )
    assert refused.json()["code"] == "account_sealed"

    # A school leader manages no accounts; the registrar (an account admin above) can unseal.
    leader = await client.post(
        f"/accounts/{teacher}/unseal", headers=await as_role(client, world, Role.school_leader)
    )
    assert leader.status_code == 403
    unsealed = await client.post(
        f"/accounts/{teacher}/unseal", headers=await as_role(client, world, Role.registrar)
    )
    assert unsealed.status_code == 200
    assert unsealed.json()["status"] == "active"
    assert (await login(client, world.phones[Role.teacher]))["access_token"]


async def test_admin_cannot_change_the_status_of_an_account_outside_scope(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = await as_role(client, world, Role.county_reviewer)
    city_admin = world.accounts[Role.city_admin]

    response = await client.post(f"/accounts/{city_admin}/disable", headers=headers)

    assert response.status_code == 404
    status = await Account.select(Account.status).where(Account.id == city_admin).first()
    assert status is not None
    assert status["status"] == "active"

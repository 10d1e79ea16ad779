"""Staff accounts are made and managed only inside the admin's scope and below its rank; unused
accounts are sealed by the daily job and only a higher admin unseals them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.accounts.tables import Account, AuditLog
from backend.config import Settings
from backend.records.tables import GuardianLink
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


async def test_one_phone_created_twice_at_once_is_one_account_and_a_conflict(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = await as_role(client, world, Role.registrar)
    for attempt in range(3):
        body = teacher_body(world.classes["A2"], phone=f"1351111300{attempt}")

        answers = await asyncio.gather(
            client.post("/accounts", headers=headers, json=body),
            client.post("/accounts", headers=headers, json=body),
        )

        assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
        assert max(answers, key=lambda a: a.status_code).json()["code"] == "phone_taken"
        assert await Account.count().where(Account.phone == body["phone"]) == 1


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


async def link_parent(world: World, class_key: str, status: str = "confirmed") -> int:
    """The world's parent linked to a new child of the class; the child's id."""
    from tests.factories import make_students

    [student] = await make_students(world, class_key, 1, start=len(world.students) + 1)
    world.students.append(student)
    await GuardianLink.insert(
        GuardianLink(
            account=world.accounts[Role.parent],
            student=student,
            guardian_slot=1,
            status=status,
            created_at=datetime.now(UTC),
        )
    )
    return student


async def test_the_registrar_of_a_childs_school_disables_and_enables_the_parent(
    client: httpx.AsyncClient, world: World
) -> None:
    """A parent account taken over, or abusing its links, can be stopped by the school."""
    await link_parent(world, "A1")
    parent = world.accounts[Role.parent]
    parent_tokens = await login(client, world.phones[Role.parent])
    registrar = await as_role(client, world, Role.registrar)

    disabled = await client.post(f"/accounts/{parent}/disable", headers=registrar)

    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["status"] == "disabled"
    cut_off = await client.get("/my/children", headers=bearer(parent_tokens))
    assert cut_off.status_code == 401
    # Its sessions are revoked, not only refused while it is disabled (test_revocation.py)
    assert cut_off.json()["code"] == "invalid_token"
    refused = await client.post(
        "/auth/login", json={"phone": world.phones[Role.parent], "password": PASSWORD}
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "account_disabled"
    audit = await AuditLog.select().where(
        (AuditLog.action == "disable") & (AuditLog.entity == "account")
    )
    assert [(a["entity_id"], a["actor_id"]) for a in audit] == [
        (str(parent), world.accounts[Role.registrar])
    ]

    enabled = await client.post(f"/accounts/{parent}/enable", headers=registrar)
    assert enabled.status_code == 200
    assert enabled.json()["status"] == "active"
    assert (await login(client, world.phones[Role.parent]))["access_token"]


async def test_the_sysadmin_may_disable_a_parent(client: httpx.AsyncClient, world: World) -> None:
    parent = world.accounts[Role.parent]

    response = await client.post(
        f"/accounts/{parent}/disable", headers=await as_role(client, world, Role.sysadmin)
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "disabled"


async def test_a_pending_link_puts_the_parent_in_the_schools_reach(
    client: httpx.AsyncClient, world: World
) -> None:
    await link_parent(world, "A1", status="pending")

    response = await client.post(
        f"/accounts/{world.accounts[Role.parent]}/disable",
        headers=await as_role(client, world, Role.registrar),
    )

    assert response.status_code == 200, response.text


async def test_parents_are_never_sealed_by_an_admin(
    client: httpx.AsyncClient, world: World
) -> None:
    await link_parent(world, "A1")

    response = await client.post(
        f"/accounts/{world.accounts[Role.parent]}/seal",
        headers=await as_role(client, world, Role.registrar),
    )

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_status"


@pytest.mark.parametrize("where", ["other school", "no child"])
async def test_a_parent_outside_the_admins_schools_answers_404(
    client: httpx.AsyncClient, world: World, where: str
) -> None:
    if where == "other school":
        await link_parent(world, "B1")
    parent = world.accounts[Role.parent]
    registrar = await as_role(client, world, Role.registrar)
    teacher = await as_role(client, world, Role.teacher)

    response = await client.post(f"/accounts/{parent}/disable", headers=registrar)
    listed = await client.get("/accounts", headers=registrar, params={"page_size": 200})
    by_teacher = await client.post(f"/accounts/{parent}/disable", headers=teacher)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert parent not in {a["id"] for a in listed.json()["items"]}
    assert by_teacher.status_code in (403, 404)
    denied = await AuditLog.select().where(AuditLog.action == "access_denied")
    assert (denied[0]["entity"], denied[0]["entity_id"]) == ("account", str(parent))
    status = await Account.select(Account.status).where(Account.id == parent).first()
    assert status == {"status": "active"}


async def test_a_county_reviewer_reaches_the_parents_of_its_countys_schools(
    client: httpx.AsyncClient, world: World
) -> None:
    await link_parent(world, "A1")
    reviewer = await as_role(client, world, Role.county_reviewer)

    listed = await client.get("/accounts", headers=reviewer, params={"page_size": 200})
    response = await client.post(
        f"/accounts/{world.accounts[Role.parent]}/disable", headers=reviewer
    )

    assert world.accounts[Role.parent] in {a["id"] for a in listed.json()["items"]}
    assert response.status_code == 200, response.text


async def test_the_school_sees_a_parents_phone_masked(
    client: httpx.AsyncClient, world: World
) -> None:
    """Parents came into the school's account lists to be disabled, not to be phoned: their
    numbers pass through the masking rule like every guardian phone."""
    await link_parent(world, "A1")
    parent, phone = world.accounts[Role.parent], world.phones[Role.parent]
    registrar = await as_role(client, world, Role.registrar)

    one = await client.get(f"/accounts/{parent}", headers=registrar)
    listed = await client.get("/accounts", headers=registrar, params={"page_size": 100})

    assert one.status_code == listed.status_code == 200, one.text
    assert one.json()["phone"] == phone[:3] + "****" + phone[-4:]
    assert phone not in listed.text

"""Every role against every scope: inside works, outside answers 404 exactly like a missing
row, and the refused access is in the audit log."""

from __future__ import annotations

import httpx
import pytest

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from tests.factories import World, bearer, build_world, login

# Which schools, classes and regions each staff role may see, in the world of factories.py.
SCHOOLS_SEEN = {
    Role.teacher: set(),
    Role.registrar: {"A"},
    Role.school_leader: {"A"},
    Role.county_reviewer: {"A"},
    Role.city_admin: {"A", "B"},
    Role.province_admin: {"A", "B", "C"},
    Role.sysadmin: {"A", "B", "C", "D"},
}
CLASSES_SEEN = {
    Role.teacher: {"A1"},
    Role.registrar: {"A1", "A2"},
    Role.school_leader: {"A1", "A2"},
    Role.county_reviewer: {"A1", "A2"},
    Role.city_admin: {"A1", "A2", "B1"},
    Role.province_admin: {"A1", "A2", "B1", "C1"},
    Role.sysadmin: {"A1", "A2", "B1", "C1", "D1"},
}
REGIONS_SEEN = {
    Role.teacher: set(),
    Role.registrar: set(),
    Role.school_leader: set(),
    Role.county_reviewer: {"330106"},
    Role.city_admin: {"330100", "330106", "330108"},
    Role.province_admin: {"330000", "330100", "330106", "330108", "330200", "330203"},
    Role.sysadmin: {
        "330000",
        "330100",
        "330106",
        "330108",
        "330200",
        "330203",
        "320000",
        "320100",
        "320102",
    },
}
STAFF = list(SCHOOLS_SEEN)


@pytest.fixture
async def world(settings: Settings) -> World:
    return await build_world(settings)


async def denied_rows(entity: str, entity_id: object) -> list[dict[str, object]]:
    return await AuditLog.select().where(  # type: ignore[no-any-return]
        (AuditLog.action == "access_denied")
        & (AuditLog.entity == entity)
        & (AuditLog.entity_id == str(entity_id))
    )


@pytest.mark.parametrize("role", STAFF)
async def test_each_role_reads_exactly_its_schools(
    client: httpx.AsyncClient, world: World, role: Role
) -> None:
    headers = bearer(await login(client, world.phones[role]))

    listed = await client.get("/org/schools", headers=headers)
    assert listed.status_code == 200
    expected_ids = {world.schools[k] for k in SCHOOLS_SEEN[role]}
    assert {s["id"] for s in listed.json()["items"]} == expected_ids
    assert listed.json()["total"] == len(expected_ids)

    for key, school_id in world.schools.items():
        response = await client.get(f"/org/schools/{school_id}", headers=headers)
        if key in SCHOOLS_SEEN[role]:
            assert response.status_code == 200
            assert response.json()["id"] == school_id
        else:
            assert response.status_code == 404
            assert response.json()["code"] == "not_found"
            rows = await denied_rows("school", school_id)
            assert [r["actor_id"] for r in rows] == [world.accounts[role]]
            assert rows[0]["actor_role"] == role.value
            assert rows[0]["client_addr"] == "203.0.113.7"
            assert rows[0]["request_id"] == response.json()["request_id"]


@pytest.mark.parametrize("role", STAFF)
async def test_each_role_reads_exactly_its_classes(
    client: httpx.AsyncClient, world: World, role: Role
) -> None:
    headers = bearer(await login(client, world.phones[role]))

    listed = await client.get("/org/classes", headers=headers)
    expected_ids = {world.classes[k] for k in CLASSES_SEEN[role]}
    assert {c["id"] for c in listed.json()["items"]} == expected_ids

    for key, class_id in world.classes.items():
        response = await client.get(f"/org/classes/{class_id}", headers=headers)
        assert response.status_code == (200 if key in CLASSES_SEEN[role] else 404)
        if response.status_code == 404:
            assert len(await denied_rows("school_class", class_id)) == 1


@pytest.mark.parametrize("role", STAFF)
async def test_each_role_reads_exactly_its_regions(
    client: httpx.AsyncClient, world: World, role: Role
) -> None:
    headers = bearer(await login(client, world.phones[role]))

    listed = await client.get("/org/regions", headers=headers)
    assert {r["region_code"] for r in listed.json()} == REGIONS_SEEN[role]
    for code in ("330106", "320102"):
        response = await client.get(f"/org/regions/{code}", headers=headers)
        assert response.status_code == (200 if code in REGIONS_SEEN[role] else 404)


async def test_outside_scope_answers_like_a_missing_row(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = bearer(await login(client, world.phones[Role.registrar]))

    outside = await client.get(f"/org/schools/{world.schools['D']}", headers=headers)
    missing = await client.get("/org/schools/999999", headers=headers)

    assert outside.status_code == missing.status_code == 404
    strip = lambda body: {k: v for k, v in body.items() if k != "request_id"}  # noqa: E731
    assert strip(outside.json()) == strip(missing.json())
    assert len(await denied_rows("school", world.schools["D"])) == 1
    assert await denied_rows("school", 999999) == []


async def test_parent_may_not_use_staff_endpoints(client: httpx.AsyncClient, world: World) -> None:
    headers = bearer(await login(client, world.phones[Role.parent]))

    response = await client.get(f"/org/schools/{world.schools['A']}", headers=headers)

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    me = await client.get("/me", headers=headers)
    assert me.json()["scope"]["kind"] == "guardian"


@pytest.mark.parametrize("role", STAFF)
async def test_each_role_lists_only_accounts_in_its_scope(
    client: httpx.AsyncClient, world: World, role: Role
) -> None:
    headers = bearer(await login(client, world.phones[role]))

    listed = await client.get("/accounts", headers=headers, params={"page_size": 200})

    seen = {Role(a["role"]) for a in listed.json()["items"]}
    expected = {
        Role.teacher: {Role.teacher},
        Role.registrar: {Role.teacher, Role.registrar, Role.school_leader},
        Role.school_leader: {Role.teacher, Role.registrar, Role.school_leader},
        Role.county_reviewer: {
            Role.teacher,
            Role.registrar,
            Role.school_leader,
            Role.county_reviewer,
        },
        Role.city_admin: {
            Role.teacher,
            Role.registrar,
            Role.school_leader,
            Role.county_reviewer,
            Role.city_admin,
        },
        Role.province_admin: set(Role) - {Role.parent, Role.sysadmin},
        Role.sysadmin: set(Role),
    }[role]
    assert seen == expected

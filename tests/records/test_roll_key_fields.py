"""The record read's key-field flag follows the province's controls (受控字段, issue 19): a
field a province made key shows as key in the staff's and the parent's reads of its schools'
records, and not in another province's; given back, it is ordinary again; a national key
field is key everywhere."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from backend.accounts.roles import Role
from backend.config import Settings
from backend.records.tables import GuardianLink
from tests.factories import World, bearer, build_world, login, make_account, make_students
from tests.records.requests import as_role

CONTROLS = "/provinces/330000/field-controls"
JIANGSU_ADMIN = "13800007777"  # the other province's reader (a sysadmin reads no records)


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 1)  # 浙江 西湖区
    world.other_students = await make_students(world, "D1", 1, start=10)  # 江苏 玄武区
    await GuardianLink.insert(
        GuardianLink(
            account=world.accounts[Role.parent],
            student=world.students[0],
            guardian_slot=1,
            created_at=datetime.now(UTC),
        )
    )
    await make_account(settings, Role.province_admin, JIANGSU_ADMIN, region_code="320000")
    return world


async def key_flags(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> dict[str, bool]:
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return {f["field"]: f["key"] for f in response.json()["fields"]}


async def test_a_field_a_province_made_key_reads_as_key_in_its_schools_only(
    client: httpx.AsyncClient, world: World
) -> None:
    province = await as_role(client, world, Role.province_admin)
    registrar = await as_role(client, world, Role.registrar)
    parent = await as_role(client, world, Role.parent)
    jiangsu = bearer(await login(client, JIANGSU_ADMIN))
    ours, theirs = world.students[0], world.other_students[0]

    before = await key_flags(client, f"/students/{ours}", registrar)
    assert (before["health"], before["name"]) == (False, True)

    response = await client.put(f"{CONTROLS}/health", json={"key": True}, headers=province)
    assert response.status_code == 200, response.text

    assert (await key_flags(client, f"/students/{ours}", registrar))["health"] is True
    assert (await key_flags(client, f"/my/children/{ours}", parent))["health"] is True
    assert (await key_flags(client, f"/students/{ours}", province))["health"] is True
    elsewhere = await key_flags(client, f"/students/{theirs}", jiangsu)
    assert (elsewhere["health"], elsewhere["name"]) == (False, True)

    response = await client.put(f"{CONTROLS}/health", json={"key": False}, headers=province)
    assert response.status_code == 200, response.text
    assert (await key_flags(client, f"/students/{ours}", registrar))["health"] is False
    assert (await key_flags(client, f"/my/children/{ours}", parent))["health"] is False

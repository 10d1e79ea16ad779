"""Controlled fields (受控字段) as a province's configuration, through the API with real role
accounts: a province makes an ordinary field key data (its schools' changes of it now go to
the authority, with the ID document; another province's do not), stops parents proposing a
field, and cannot release a national key field; only its own province admin sets them,
audited."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import httpx
import pytest

from backend.accounts.roles import Role
from backend.config import Settings
from backend.records import controls
from backend.records.catalog import BY_CODE, Chain
from backend.records.tables import GuardianLink
from tests.factories import World, build_world, make_students, open_campaign
from tests.records.requests import as_role, audit_rows, decide, jpeg, multipart

CONTROLS = "/provinces/330000/field-controls"


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 2)
    await open_campaign(corrections_open=True)
    await GuardianLink.insert(
        GuardianLink(
            account=world.accounts[Role.parent],
            student=world.students[1],
            guardian_slot=1,
            created_at=datetime.now(UTC),
        )
    )
    return world


async def change(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    student: int,
    field_code: str,
    value: str,
    photos: list[tuple[str, bytes]] | tuple[()] = (),
) -> httpx.Response:
    body = {"student_id": student, "field_code": field_code, "new_value": value}
    body["reason"] = "核对后更正"
    return await client.post("/change-requests", files=multipart(body, photos), headers=headers)


async def test_a_province_makes_a_field_key_and_its_schools_changes_go_to_the_authority(
    client: httpx.AsyncClient, world: World
) -> None:
    province = await as_role(client, world, Role.province_admin)
    registrar = await as_role(client, world, Role.registrar)
    county = await as_role(client, world, Role.county_reviewer)
    student = world.students[0]

    listed = await client.get(CONTROLS, headers=registrar)
    assert listed.status_code == 200, listed.text
    health = next(c for c in listed.json() if c["field_code"] == "health")
    assert (health["key"], health["chain"], health["set_by_province"]) == (
        False,
        "ordinary",
        False,
    )

    refused = await client.put(f"{CONTROLS}/health", json={"key": True}, headers=registrar)
    assert (refused.status_code, refused.json()["code"]) == (403, "controls_province_only")
    response = await client.put(f"{CONTROLS}/health", json={"key": True}, headers=province)
    assert response.status_code == 200, response.text
    assert (response.json()["chain"], response.json()["set_by_province"]) == ("key_data", True)
    logged = await audit_rows("set_field_control", "field_control", "330000:health")
    assert logged[0]["after"] == {"key": True, "parents_may_propose": True}
    assert json.loads(logged[0]["before"]) == {"key": False, "parents_may_propose": True}

    # Now a key-data change: the ID document is required and the county reviews it.
    refused = await change(client, registrar, student, "health", "2")
    assert (refused.status_code, refused.json()["code"]) == (400, "evidence_required")
    made = await change(client, registrar, student, "health", "2", [("id_scan", jpeg())])
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["chain"] == "key_data"
    assert [(s["kind"], s["state"]) for s in body["steps"]] == [
        ("enter", "approved"),
        ("review", "current"),
    ]
    assert body["current_step"]["role"] == "county_reviewer"
    done = await decide(client, county, body["current_step"]["id"])
    assert done.status_code == 200, done.text
    detail = (await client.get(f"/students/{student}", headers=registrar)).json()
    assert next(f for f in detail["fields"] if f["field"] == "health")["value"] == "2"

    # Another province's schools keep the national control.
    assert await controls.chain_for("320102", BY_CODE["health"]) is Chain.ordinary

    # Given back to the school: an ordinary change again.
    response = await client.put(f"{CONTROLS}/health", json={"key": False}, headers=province)
    assert response.status_code == 200, response.text
    made = await change(client, registrar, student, "health", "3")
    assert made.status_code == 201, made.text
    assert made.json()["chain"] == "ordinary"


async def test_a_province_cannot_release_a_national_key_field(
    client: httpx.AsyncClient, world: World
) -> None:
    province = await as_role(client, world, Role.province_admin)
    refused = await client.put(f"{CONTROLS}/name", json={"key": False}, headers=province)
    assert refused.status_code == 400
    assert refused.json()["code"] == "national_control"
    assert "姓名" in refused.json()["message"]
    listed = (await client.get(CONTROLS, headers=province)).json()
    name = next(c for c in listed if c["field_code"] == "name")
    assert (name["key"], name["national_key"]) == (True, True)
    assert await controls.chain_for("330106", BY_CODE["name"]) is Chain.key_data

    other = await client.put(
        "/provinces/320000/field-controls/health", json={"key": True}, headers=province
    )
    assert (other.status_code, other.json()["code"]) == (403, "controls_other_province")
    not_province = await client.put(
        "/provinces/330100/field-controls/health", json={"key": True}, headers=province
    )
    assert (not_province.status_code, not_province.json()["code"]) == (400, "not_a_province")
    unknown = await client.put(f"{CONTROLS}/shoe_size", json={"key": True}, headers=province)
    assert (unknown.status_code, unknown.json()["code"]) == (400, "unknown_field")
    # a county of another province does not read this one's controls
    assert (
        await client.get("/provinces/320000/field-controls", headers=province)
    ).status_code == 404


async def test_a_province_stops_parents_proposing_a_field(
    client: httpx.AsyncClient, world: World
) -> None:
    province = await as_role(client, world, Role.province_admin)
    parent = await as_role(client, world, Role.parent)
    child = world.students[1]

    async def ask() -> httpx.Response:
        return await client.post(
            f"/my/children/{child}/change-requests",
            files=multipart({"field_code": "health", "new_value": "2", "reason": "体检后更正"}),
            headers=parent,
        )

    response = await client.put(
        f"{CONTROLS}/health", json={"key": False, "parents_may_propose": False}, headers=province
    )
    assert response.status_code == 200, response.text
    refused = await ask()
    assert (refused.status_code, refused.json()["code"]) == (400, "field_not_proposable")

    await client.put(f"{CONTROLS}/health", json={"key": False}, headers=province)
    allowed = await ask()
    assert allowed.status_code == 201, allowed.text


async def test_a_province_and_a_national_account_setting_one_field_at_once_both_answer(
    client: httpx.AsyncClient, world: World
) -> None:
    province = await as_role(client, world, Role.province_admin)
    sysadmin = await as_role(client, world, Role.sysadmin)
    answers = await asyncio.gather(
        *(
            client.put(f"{CONTROLS}/health", json={"key": True}, headers=headers)
            for headers in (province, sysadmin) * 2
        )
    )
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    listed = (await client.get(CONTROLS, headers=province)).json()
    assert [c["key"] for c in listed if c["field_code"] == "health"] == [True]


async def test_reads_in_flight_when_the_controls_expire_ask_the_database_once(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every parent's read of a record needs its province's controls: when the cached ones
    expire under load, the reads in flight wait for one query instead of each sending it."""
    province = await as_role(client, world, Role.province_admin)
    answer = await client.put(f"{CONTROLS}/health", json={"key": True}, headers=province)
    assert answer.status_code == 200, answer.text
    controls.forget()
    queries = 0
    read = controls._read

    async def counted(province_code: str) -> dict[str, controls.Control]:
        nonlocal queries
        queries += 1
        await asyncio.sleep(0.05)  # the query still running when the others arrive
        return await read(province_code)

    monkeypatch.setattr(controls, "_read", counted)
    found = await asyncio.gather(*(controls.controls_of("330000") for _ in range(20)))
    assert queries == 1
    assert all(f["health"].key for f in found)
    assert controls._asking == {}

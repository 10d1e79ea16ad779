"""Campaigns: opened by county-level admins and up for regions in scope; their window and
switches close the matching endpoints with `outside_window`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from tests.factories import World, bearer, build_world, login, make_students

NOW = datetime.now(UTC)


def body(region: str = "330106", **changes: object) -> dict[str, object]:
    return {
        "region_code": region,
        "name": "2026年秋季数据质量核查",
        "starts_at": (NOW - timedelta(hours=1)).isoformat(),
        "ends_at": (NOW + timedelta(days=20)).isoformat(),
        **changes,
    }


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    await make_students(world, "A1", 3)
    return world


async def as_role(client: httpx.AsyncClient, world: World, role: Role) -> dict[str, str]:
    return bearer(await login(client, world.phones[role]))


async def test_county_reviewer_opens_a_campaign_for_its_county(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = await as_role(client, world, Role.county_reviewer)

    created = await client.post("/campaigns", headers=headers, json=body())

    assert created.status_code == 201, created.text
    assert created.json()["active"] is True
    assert created.json()["forms_open"] is True
    assert created.json()["corrections_open"] is False
    assert await AuditLog.count().where(AuditLog.entity == "campaign") == 1
    registrar = await as_role(client, world, Role.registrar)
    seen = await client.get("/campaigns", headers=registrar)
    assert [c["id"] for c in seen.json()] == [created.json()["id"]]


async def test_campaign_outside_scope_or_by_a_registrar_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    county = await as_role(client, world, Role.county_reviewer)
    registrar = await as_role(client, world, Role.registrar)

    outside = await client.post("/campaigns", headers=county, json=body("320102"))
    by_registrar = await client.post("/campaigns", headers=registrar, json=body())
    backwards = await client.post(
        "/campaigns", headers=county, json=body(ends_at=(NOW - timedelta(days=3)).isoformat())
    )
    naive = await client.post(
        "/campaigns", headers=county, json=body(starts_at="2026-11-01T00:00:00")
    )

    assert outside.status_code == 404
    assert by_registrar.status_code == 403
    assert backwards.status_code == 400
    assert backwards.json()["field_errors"]["ends_at"]
    assert naive.status_code == 400


async def test_forms_switch_and_window_close_issuing(
    client: httpx.AsyncClient, world: World
) -> None:
    county = await as_role(client, world, Role.county_reviewer)
    registrar = await as_role(client, world, Role.registrar)
    class_id = world.classes["A1"]

    none_yet = await client.post("/form-batches", json={"class_id": class_id}, headers=registrar)
    assert none_yet.status_code == 409
    assert none_yet.json()["code"] == "outside_window"
    assert none_yet.json()["message"] == "当前不在数据质量核查工作时间内"

    campaign = (await client.post("/campaigns", headers=county, json=body(forms_open=False))).json()
    closed = await client.post("/form-batches", json={"class_id": class_id}, headers=registrar)
    assert closed.status_code == 409
    assert closed.json()["message"] == "当前核查工作未开放打印确认表"

    opened = await client.patch(
        f"/campaigns/{campaign['id']}", headers=county, json={"forms_open": True}
    )
    assert opened.json()["forms_open"] is True
    issued = await client.post("/form-batches", json={"class_id": class_id}, headers=registrar)
    assert issued.status_code == 202, issued.text

    ended = await client.patch(
        f"/campaigns/{campaign['id']}",
        headers=county,
        json={
            "starts_at": (NOW - timedelta(days=9)).isoformat(),
            "ends_at": (NOW - timedelta(days=1)).isoformat(),
        },
    )
    assert ended.json()["active"] is False
    after = await client.post("/form-batches", json={"class_id": class_id}, headers=registrar)
    assert after.json()["code"] == "outside_window"


async def test_a_county_cannot_change_the_province_campaign(
    client: httpx.AsyncClient, world: World
) -> None:
    province = await as_role(client, world, Role.province_admin)
    county = await as_role(client, world, Role.county_reviewer)
    campaign = (await client.post("/campaigns", headers=province, json=body("330000"))).json()

    visible = await client.get(f"/campaigns/{campaign['id']}", headers=county)
    changed = await client.patch(
        f"/campaigns/{campaign['id']}", headers=county, json={"forms_open": False}
    )

    assert visible.status_code == 200
    assert changed.status_code == 403

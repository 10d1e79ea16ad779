"""Which schools have not started a campaign (no form of it issued for any class), per region
of the caller's scope, with counts; and a city opens, extends and closes its counties' windows
only inside what its province allows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.records.tables import CampaignSetting
from tests.factories import World, bearer, build_world, login, make_students, open_campaign


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 2)
    world.other_students = await make_students(world, "B1", 3, start=10)
    return world


async def as_role(client: httpx.AsyncClient, world: World, role: Role) -> dict[str, str]:
    return bearer(await login(client, world.phones[role]))


async def not_started(
    client: httpx.AsyncClient, headers: dict[str, str], campaign: int, **params: Any
) -> httpx.Response:
    return await client.get(
        f"/campaigns/{campaign}/schools-not-started", headers=headers, params=params
    )


async def issue_forms_in_school_a(client: httpx.AsyncClient, world: World) -> None:
    registrar = await as_role(client, world, Role.registrar)
    issued = await client.post(
        "/form-batches", headers=registrar, json={"class_id": world.classes["A1"]}
    )
    assert issued.status_code in (201, 202), issued.text


async def test_each_level_sees_the_schools_of_its_region_that_have_not_started(
    client: httpx.AsyncClient, world: World
) -> None:
    campaign = await open_campaign()
    province = await as_role(client, world, Role.province_admin)
    before = (await not_started(client, province, campaign)).json()
    assert (before["schools"], before["started"], before["total"]) == (3, 0, 3)

    await issue_forms_in_school_a(client, world)

    whole = await not_started(client, province, campaign)
    assert whole.status_code == 200, whole.text
    body = whole.json()
    assert body["region_code"] == "330000"
    assert body["region_name"] == "浙江省"
    # 浙江省 has A (started), B and C; D is in 江苏省.
    assert (body["schools"], body["started"], body["total"]) == (3, 1, 2)
    assert [s["school_id"] for s in body["items"]] == [world.schools["B"], world.schools["C"]]
    b = body["items"][0]
    assert (b["region_code"], b["region_name"], b["classes"], b["students"]) == (
        "330108",
        "滨江区",
        1,
        3,
    )
    assert b["open_now"] is True
    assert b["forms_open"] is True
    # The city and the county, by default their own region.
    city = await not_started(client, await as_role(client, world, Role.city_admin), campaign)
    assert (city.json()["schools"], city.json()["started"]) == (2, 1)
    assert [s["school_id"] for s in city.json()["items"]] == [world.schools["B"]]
    county = await not_started(client, await as_role(client, world, Role.county_reviewer), campaign)
    assert (county.json()["schools"], county.json()["total"], county.json()["items"]) == (1, 0, [])
    # The province narrows to one of its cities.
    ningbo = (await not_started(client, province, campaign, region_code="330200")).json()
    assert [s["school_id"] for s in ningbo["items"]] == [world.schools["C"]]


async def test_a_list_pages_and_tells_a_school_whose_window_has_not_begun(
    client: httpx.AsyncClient, world: World
) -> None:
    campaign = await open_campaign()
    now = datetime.now(UTC)
    await CampaignSetting.insert(
        CampaignSetting(
            campaign=campaign,
            region_code="330203",
            set_by="province",
            starts_at=now + timedelta(days=5),
            updated_by=world.accounts[Role.province_admin],
            updated_at=now,
        )
    )
    province = await as_role(client, world, Role.province_admin)

    first = (await not_started(client, province, campaign, page_size=2)).json()
    second = (await not_started(client, province, campaign, page=2, page_size=2)).json()
    past = (await not_started(client, province, campaign, page=9, page_size=2)).json()

    assert [len(p["items"]) for p in (first, second, past)] == [2, 1, 0]
    assert {p["total"] for p in (first, second, past)} == {3}
    [c] = second["items"]
    assert c["school_id"] == world.schools["C"]
    assert c["open_now"] is False  # 海曙区 starts in five days: it cannot have started
    assert c["window_starts_at"] > now.isoformat()


@pytest.mark.parametrize(
    ("role", "region", "status", "code"),
    [
        (Role.registrar, None, 403, "progress_authorities_only"),
        (Role.teacher, None, 403, "progress_authorities_only"),
        (Role.city_admin, "330200", 404, "not_found"),  # Hangzhou asks about Ningbo
        (Role.county_reviewer, "330100", 404, "not_found"),  # a county asks about its city
    ],
)
async def test_refusals(
    client: httpx.AsyncClient, world: World, role: Role, region: str | None, status: int, code: str
) -> None:
    campaign = await open_campaign()
    params = {"region_code": region} if region else {}

    response = await not_started(client, await as_role(client, world, role), campaign, **params)

    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    if status == 403:  # every 403 is audited with its code
        [refused] = await AuditLog.select().where(AuditLog.action == "forbidden")
        assert code in (refused["after"] or "")
    if status == 404:
        [denied] = await AuditLog.select().where(AuditLog.action == "access_denied")
        assert (denied["entity"], denied["entity_id"]) == ("region", region)


async def test_a_campaign_that_does_not_cover_the_region_is_a_conflict(
    client: httpx.AsyncClient, world: World
) -> None:
    hangzhou = await open_campaign("330100")
    province = await as_role(client, world, Role.province_admin)

    ningbo = await not_started(client, province, hangzhou, region_code="330200")
    whole = await not_started(client, province, hangzhou)  # the province: Hangzhou's part

    assert ningbo.status_code == 409
    assert ningbo.json()["code"] == "campaign_not_here"
    assert whole.json()["region_code"] == "330100"
    assert whole.json()["schools"] == 2
    bad = await not_started(client, province, hangzhou, region_code="33")
    assert bad.status_code == 400


async def test_a_city_opens_extends_and_closes_its_countys_window_inside_the_provinces(
    client: httpx.AsyncClient, world: World
) -> None:
    campaign = await open_campaign(days=30)  # the province: yesterday to 30 days on
    now = datetime.now(UTC)
    city = await as_role(client, world, Role.city_admin)
    registrar = await as_role(client, world, Role.registrar)  # school A, in 西湖区
    url = f"/campaigns/{campaign}/regions/330106"

    async def put(**values: datetime) -> httpx.Response:
        body = {k: v.isoformat() for k, v in values.items()}
        return await client.put(url, headers=city, json=body)

    async def may_print() -> int:
        response = await client.post(
            "/form-batches", headers=registrar, json={"class_id": world.classes["A1"]}
        )
        if response.status_code == 409:
            assert response.json()["code"] == "outside_window"
        return response.status_code

    # Open later: the county starts in 3 days; nothing is printed before.
    assert (await put(starts_at=now + timedelta(days=3))).status_code == 200
    assert await may_print() == 409
    # Open now (the start brought back, still inside the province's).
    assert (await put(starts_at=now - timedelta(hours=1))).status_code == 200
    # Close: the county's window ends now.
    assert (await put(ends_at=now + timedelta(seconds=1))).status_code == 200
    await _wait_past(now + timedelta(seconds=1))
    assert await may_print() == 409
    # Extend again, up to the province's end and not past it.
    assert (await put(ends_at=now + timedelta(days=20))).status_code == 200
    assert await may_print() in (201, 202)
    wider = await put(ends_at=now + timedelta(days=40))
    earlier = await put(starts_at=now - timedelta(days=5))
    for refused in (wider, earlier):
        assert refused.status_code == 409
        assert refused.json()["code"] == "campaign_setting_wider"
    # A city never sets another city's county, nor its own level.
    other = await client.put(
        f"/campaigns/{campaign}/regions/330203", headers=city, json={"forms_open": False}
    )
    own = await client.put(
        f"/campaigns/{campaign}/regions/330100", headers=city, json={"forms_open": False}
    )
    assert other.status_code == 404
    assert (own.status_code, own.json()["code"]) == (403, "campaign_setting_not_below")
    sets = await AuditLog.select().where(AuditLog.action == "set_region")
    assert len(sets) == 4


async def _wait_past(moment: datetime) -> None:
    await asyncio.sleep(max((moment - datetime.now(UTC)).total_seconds(), 0) + 0.05)

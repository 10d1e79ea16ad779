"""Who opens the check (notice 001, appendix 2, province items 3–4): the province sets the
window and the two switches per sub-region, a city narrows them for its counties inside what
the province allows, a county only follows. What applies to a county is what every level on
its chain allows, and every endpoint that asks "is the check open here" follows it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.records.tables import Campaign, CampaignSetting
from tests.factories import World, bearer, build_world, login, make_account, make_students
from tests.parents import images

NOW = datetime.now(UTC)
C_REGISTRAR = "13800009999"


def at(days: float) -> str:
    return (NOW + timedelta(days=days)).isoformat()


def body(region: str = "330000", **changes: object) -> dict[str, object]:
    return {
        "region_code": region,
        "name": "2026年秋季数据质量核查",
        "starts_at": at(-1),
        "ends_at": at(20),
        "forms_open": True,
        "corrections_open": True,
        **changes,
    }


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 2)
    world.other_students = await make_students(world, "C1", 1, start=50)
    await make_account(
        settings, Role.registrar, C_REGISTRAR, region_code="330203", school=world.schools["C"]
    )
    return world


async def as_role(client: httpx.AsyncClient, world: World, role: Role) -> dict[str, str]:
    return bearer(await login(client, world.phones[role]))


async def open_province(client: httpx.AsyncClient, world: World, **changes: object) -> int:
    province = await as_role(client, world, Role.province_admin)
    created = await client.post("/campaigns", headers=province, json=body(**changes))
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


async def issue(
    client: httpx.AsyncClient, headers: dict[str, str], class_id: int
) -> httpx.Response:
    return await client.post("/form-batches", json={"class_id": class_id}, headers=headers)


async def effective_for(
    client: httpx.AsyncClient, world: World, campaign_id: int, role: Role
) -> dict[str, object]:
    read = await client.get(f"/campaigns/{campaign_id}", headers=await as_role(client, world, role))
    assert read.status_code == 200, read.text
    return read.json()["effective"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("role", [Role.county_reviewer, Role.city_admin, Role.registrar])
async def test_only_the_province_opens_a_campaign(
    client: httpx.AsyncClient, world: World, role: Role
) -> None:
    headers = await as_role(client, world, role)
    region = "330100" if role is Role.city_admin else "330106"

    response = await client.post("/campaigns", headers=headers, json=body(region))

    assert response.status_code == 403
    assert response.json()["code"] == "campaign_province_only"
    assert "省级" in response.json()["message"]
    assert await Campaign.count() == 0
    [refusal] = await AuditLog.select().where(AuditLog.action == "forbidden")
    assert json.loads(refusal["after"])["code"] == "campaign_province_only"


async def test_a_county_cannot_open_a_switch_its_province_closed(
    client: httpx.AsyncClient, world: World
) -> None:
    """The rough edge: a county reviewer opened its own campaign with the forms switch on, and
    being the most specific it overrode the province's."""
    campaign_id = await open_province(client, world, forms_open=False)
    county = await as_role(client, world, Role.county_reviewer)
    registrar = await as_role(client, world, Role.registrar)

    own = await client.post("/campaigns", headers=county, json=body("330106"))
    patched = await client.patch(
        f"/campaigns/{campaign_id}", headers=county, json={"forms_open": True}
    )
    setting = await client.put(
        f"/campaigns/{campaign_id}/regions/330106", headers=county, json={"forms_open": True}
    )

    assert (own.status_code, own.json()["code"]) == (403, "campaign_province_only")
    assert (patched.status_code, patched.json()["code"]) == (403, "campaign_province_only")
    assert (setting.status_code, setting.json()["code"]) == (403, "campaign_county_cannot_set")
    assert "区县" in setting.json()["message"]
    assert await CampaignSetting.count() == 0
    refused = await issue(client, registrar, world.classes["A1"])
    assert refused.status_code == 409
    assert refused.json()["message"] == "当前核查工作未开放打印确认表"


async def test_the_province_sets_each_sub_region_its_window_and_switches(
    client: httpx.AsyncClient, world: World
) -> None:
    campaign_id = await open_province(client, world)
    province = await as_role(client, world, Role.province_admin)
    registrar = await as_role(client, world, Role.registrar)
    ningbo_registrar = bearer(await login(client, C_REGISTRAR))

    ningbo = await client.put(
        f"/campaigns/{campaign_id}/regions/330200", headers=province, json={"starts_at": at(10)}
    )
    xihu = await client.put(
        f"/campaigns/{campaign_id}/regions/330106", headers=province, json={"forms_open": False}
    )

    assert ningbo.status_code == 200, ningbo.text
    assert ningbo.json()["set_by"] == "province"
    assert ningbo.json()["region_name"] == "宁波市"
    assert ningbo.json()["effective"]["open_now"] is False
    assert xihu.status_code == 200, xihu.text
    later = await issue(client, ningbo_registrar, world.classes["C1"])
    assert (later.status_code, later.json()["message"]) == (409, "当前不在数据质量核查工作时间内")
    switched_off = await issue(client, registrar, world.classes["A1"])
    assert switched_off.json()["message"] == "当前核查工作未开放打印确认表"
    campaign = (await client.get(f"/campaigns/{campaign_id}", headers=province)).json()
    assert [(s["region_code"], s["set_by"]) for s in campaign["regions"]] == [
        ("330106", "province"),
        ("330200", "province"),
    ]
    actions = await AuditLog.select(AuditLog.action, AuditLog.after).where(
        AuditLog.action == "set_region"
    )
    assert [json.loads(a["after"])["region_code"] for a in actions] == ["330200", "330106"]

    cleared = await client.delete(f"/campaigns/{campaign_id}/regions/330106", headers=province)

    assert cleared.status_code == 204
    assert (await issue(client, registrar, world.classes["A1"])).status_code == 202


async def test_a_city_narrows_its_counties_inside_what_the_province_allows(
    client: httpx.AsyncClient, world: World
) -> None:
    campaign_id = await open_province(client, world)
    province = await as_role(client, world, Role.province_admin)
    city = await as_role(client, world, Role.city_admin)
    registrar = await as_role(client, world, Role.registrar)
    await client.put(
        f"/campaigns/{campaign_id}/regions/330100",
        headers=province,
        json={"ends_at": at(10), "corrections_open": False},
    )

    narrowed = await client.put(
        f"/campaigns/{campaign_id}/regions/330106", headers=city, json={"forms_open": False}
    )
    longer = await client.put(
        f"/campaigns/{campaign_id}/regions/330106", headers=city, json={"ends_at": at(15)}
    )
    corrections = await client.put(
        f"/campaigns/{campaign_id}/regions/330106", headers=city, json={"corrections_open": True}
    )
    own_city = await client.put(
        f"/campaigns/{campaign_id}/regions/330100", headers=city, json={"forms_open": False}
    )
    other_city = await client.put(
        f"/campaigns/{campaign_id}/regions/330203", headers=city, json={"forms_open": False}
    )
    shorter = await client.put(
        f"/campaigns/{campaign_id}/regions/330108", headers=city, json={"ends_at": at(5)}
    )

    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["set_by"] == "city"
    assert (longer.status_code, longer.json()["code"]) == (409, "campaign_setting_wider")
    assert "结束时间" in longer.json()["message"]
    assert (corrections.status_code, corrections.json()["code"]) == (409, "campaign_setting_wider")
    assert "录入更正信息" in corrections.json()["message"]
    assert (own_city.status_code, own_city.json()["code"]) == (403, "campaign_setting_not_below")
    assert other_city.status_code == 404
    assert shorter.status_code == 200, shorter.text
    assert shorter.json()["effective"]["ends_at"] == shorter.json()["ends_at"]
    refused = await issue(client, registrar, world.classes["A1"])
    assert refused.json()["message"] == "当前核查工作未开放打印确认表"
    mine = await effective_for(client, world, campaign_id, Role.county_reviewer)
    assert mine["region_code"] == "330106"
    assert (mine["forms_open"], mine["corrections_open"], mine["open_now"]) == (False, False, True)
    assert datetime.fromisoformat(str(mine["ends_at"])) == NOW + timedelta(days=10)


async def test_a_city_cannot_undo_what_the_province_set_for_a_county(
    client: httpx.AsyncClient, world: World
) -> None:
    campaign_id = await open_province(client, world)
    province = await as_role(client, world, Role.province_admin)
    city = await as_role(client, world, Role.city_admin)
    url = f"/campaigns/{campaign_id}/regions/330106"
    await client.put(url, headers=province, json={"forms_open": False})

    reopened = await client.put(url, headers=city, json={"forms_open": True})
    shortened = await client.put(url, headers=city, json={"ends_at": at(5)})

    assert (reopened.status_code, reopened.json()["code"]) == (409, "campaign_setting_wider")
    assert "打印确认表" in reopened.json()["message"]
    assert shortened.status_code == 200, shortened.text
    mine = await effective_for(client, world, campaign_id, Role.county_reviewer)
    assert mine["forms_open"] is False  # the province's word stands beside the city's
    assert datetime.fromisoformat(str(mine["ends_at"])) == NOW + timedelta(days=5)
    # the province narrows the whole campaign: the county gets the narrower of the two
    await client.patch(f"/campaigns/{campaign_id}", headers=province, json={"ends_at": at(3)})
    mine = await effective_for(client, world, campaign_id, Role.county_reviewer)
    assert datetime.fromisoformat(str(mine["ends_at"])) == NOW + timedelta(days=3)
    # the city takes its word back; the province's stays
    assert (await client.delete(url, headers=city)).status_code == 204
    assert await CampaignSetting.count() == 1
    mine = await effective_for(client, world, campaign_id, Role.county_reviewer)
    assert mine["forms_open"] is False


async def test_effective_settings_reach_uploads_and_the_family_views(
    client: httpx.AsyncClient, world: World
) -> None:
    campaign_id = await open_province(client, world)
    province = await as_role(client, world, Role.province_admin)
    registrar = await as_role(client, world, Role.registrar)
    teacher = await as_role(client, world, Role.teacher)
    assert (await issue(client, registrar, world.classes["A1"])).status_code == 202
    url = f"/campaigns/{campaign_id}/regions/330106"

    ended_here = await client.put(url, headers=province, json={"ends_at": at(-0.01)})

    assert ended_here.status_code == 200, ended_here.text
    families = (await client.get("/families", headers=teacher)).json()["items"]
    assert {f["form"]["status"] for f in families} == {"no_campaign"}
    photo = await client.post(
        f"/students/{world.students[0]}/uploads",
        headers=teacher,
        files={"file": ("photo.jpg", images.jpeg_with_orientation(1))},
    )
    assert (photo.status_code, photo.json()["code"]) == (409, "outside_window")
    # elsewhere in the province the check goes on
    ningbo_registrar = bearer(await login(client, C_REGISTRAR))
    assert (await issue(client, ningbo_registrar, world.classes["C1"])).status_code == 202

    await client.delete(url, headers=province)

    families = (await client.get("/families", headers=teacher)).json()["items"]
    assert {f["form"]["status"] for f in families} == {"not_uploaded"}


async def test_a_setting_outside_the_campaign_or_on_a_closed_one_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    province = await as_role(client, world, Role.province_admin)
    city_campaign = (await client.post("/campaigns", headers=province, json=body("330100"))).json()

    ningbo = await client.put(
        f"/campaigns/{city_campaign['id']}/regions/330200",
        headers=province,
        json={"forms_open": False},
    )
    backwards = await client.put(
        f"/campaigns/{city_campaign['id']}/regions/330106",
        headers=province,
        json={"starts_at": at(5), "ends_at": at(4)},
    )
    await client.post(f"/campaigns/{city_campaign['id']}/close", headers=province)
    closed = await client.put(
        f"/campaigns/{city_campaign['id']}/regions/330106",
        headers=province,
        json={"forms_open": False},
    )

    assert (ningbo.status_code, ningbo.json()["code"]) == (409, "region_outside_campaign")
    assert (backwards.status_code, backwards.json()["code"]) == (400, "bad_window")
    assert (closed.status_code, closed.json()["code"]) == (409, "campaign_closed")
    assert await CampaignSetting.count() == 0

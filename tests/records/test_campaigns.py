"""Campaigns: opened by the province for a region in its scope, never two at once for one
region (or a region containing or contained in it); closed early or, before any form is
printed, deleted; their window and switches close the matching endpoints with
`outside_window`."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.records.tables import Campaign, IssuedForm
from tests.factories import World, bearer, build_world, login, make_students, open_campaign
from tests.parents import images

NOW = datetime.now(UTC)
CHINA = timezone(timedelta(hours=8))
AUTUMN = ("2026-09-01T00:00:00+08:00", "2027-02-01T00:00:00+08:00")


def body(region: str = "330000", **changes: object) -> dict[str, object]:
    return {
        "region_code": region,
        "name": "2026年秋季数据质量核查",
        "starts_at": (NOW - timedelta(hours=1)).isoformat(),
        "ends_at": (NOW + timedelta(days=20)).isoformat(),
        **changes,
    }


def window(starts: str, ends: str) -> dict[str, str]:
    return {"starts_at": starts, "ends_at": ends}


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 3)
    return world


async def as_role(client: httpx.AsyncClient, world: World, role: Role) -> dict[str, str]:
    return bearer(await login(client, world.phones[role]))


async def audit_actions(campaign_id: int) -> list[str]:
    rows = await AuditLog.select(AuditLog.action).where(
        (AuditLog.entity == "campaign") & (AuditLog.entity_id == str(campaign_id))
    )
    return [row["action"] for row in rows]


async def test_the_province_opens_a_campaign_its_schools_see(
    client: httpx.AsyncClient, world: World
) -> None:
    province = await as_role(client, world, Role.province_admin)

    created = await client.post("/campaigns", headers=province, json=body())

    assert created.status_code == 201, created.text
    campaign = created.json()
    assert (campaign["active"], campaign["state"]) == (True, "open")
    assert (campaign["forms_open"], campaign["corrections_open"]) == (True, False)
    assert campaign["closed_at"] is None
    assert await audit_actions(campaign["id"]) == ["create"]
    registrar = await as_role(client, world, Role.registrar)
    seen = (await client.get("/campaigns", headers=registrar)).json()
    assert [c["id"] for c in seen] == [campaign["id"]]
    # the registrar's county has no setting of its own: the province's window applies
    assert seen[0]["effective"]["region_code"] == "330106"
    assert seen[0]["effective"]["open_now"] is True


async def test_bad_input_and_a_region_outside_scope_are_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    province = await as_role(client, world, Role.province_admin)

    outside = await client.post("/campaigns", headers=province, json=body("320000"))
    backwards = await client.post(
        "/campaigns", headers=province, json=body(ends_at=(NOW - timedelta(days=3)).isoformat())
    )
    naive = await client.post(
        "/campaigns", headers=province, json=body(starts_at="2026-11-01T00:00:00")
    )

    assert outside.status_code == 404
    assert backwards.status_code == 400
    assert backwards.json()["field_errors"]["ends_at"]
    assert naive.status_code == 400
    assert await Campaign.count() == 0


@pytest.mark.parametrize(
    ("region", "starts", "ends"),
    [
        ("330000", "2026-12-01T00:00:00+08:00", "2027-03-01T00:00:00+08:00"),  # same region
        ("330100", "2026-10-01T00:00:00+08:00", "2026-11-01T00:00:00+08:00"),  # a city inside
        ("330106", "2026-08-01T00:00:00+08:00", "2026-09-02T00:00:00+08:00"),  # a county inside
    ],
    ids=["same province", "a city of it", "a county of it"],
)
async def test_a_campaign_overlapping_another_is_refused_by_name_and_dates(
    client: httpx.AsyncClient, world: World, region: str, starts: str, ends: str
) -> None:
    province = await as_role(client, world, Role.province_admin)
    first = await client.post("/campaigns", headers=province, json=body(**window(*AUTUMN)))
    assert first.status_code == 201, first.text

    second = await client.post(
        "/campaigns",
        headers=province,
        json=body(region, name="重复的核查", **window(starts, ends)),
    )

    assert second.status_code == 409, second.text
    error = second.json()
    assert error["code"] == "campaign_overlaps"
    assert "2026年秋季数据质量核查" in error["message"]
    assert "2026年9月1日" in error["message"]
    assert "2027年2月1日" in error["message"]
    assert await Campaign.count() == 1


async def test_a_province_campaign_over_a_county_campaign_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    """A campaign made before the province owned them (one county's) still counts."""
    await open_campaign("330106")
    province = await as_role(client, world, Role.province_admin)

    response = await client.post("/campaigns", headers=province, json=body())

    assert response.status_code == 409
    assert response.json()["code"] == "campaign_overlaps"


async def test_two_overlapping_campaigns_sent_at_once_are_not_both_stored(
    client: httpx.AsyncClient, world: World
) -> None:
    province = await as_role(client, world, Role.province_admin)
    sysadmin = await as_role(client, world, Role.sysadmin)

    answers = await asyncio.gather(
        *(
            client.post("/campaigns", headers=headers, json=body(region, **window(*AUTUMN)))
            for headers, region in [(province, "330000"), (sysadmin, "330100")] * 3
        )
    )

    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409, 409, 409]
    assert await Campaign.count() == 1


async def test_campaigns_that_only_touch_or_lie_elsewhere_are_accepted(
    client: httpx.AsyncClient, world: World
) -> None:
    province = await as_role(client, world, Role.province_admin)
    sysadmin = await as_role(client, world, Role.sysadmin)
    await client.post("/campaigns", headers=province, json=body(**window(*AUTUMN)))

    spring = await client.post(
        "/campaigns",
        headers=province,
        json=body(name="2027年春季核查", **window(AUTUMN[1], "2027-07-01T00:00:00+08:00")),
    )
    jiangsu = await client.post(
        "/campaigns", headers=sysadmin, json=body("320000", **window(*AUTUMN))
    )

    assert spring.status_code == 201, spring.text
    assert jiangsu.status_code == 201, jiangsu.text


async def test_moving_a_window_onto_another_campaign_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    province = await as_role(client, world, Role.province_admin)
    await client.post("/campaigns", headers=province, json=body(**window(*AUTUMN)))
    spring = (
        await client.post(
            "/campaigns",
            headers=province,
            json=body(name="2027年春季核查", **window(AUTUMN[1], "2027-07-01T00:00:00+08:00")),
        )
    ).json()

    moved = await client.patch(
        f"/campaigns/{spring['id']}",
        headers=province,
        json={"starts_at": "2027-01-15T00:00:00+08:00"},
    )

    assert moved.status_code == 409
    assert moved.json()["code"] == "campaign_overlaps"
    stored = await Campaign.select(Campaign.starts_at).where(Campaign.id == spring["id"]).first()
    assert stored is not None
    assert stored["starts_at"] == datetime(2027, 2, 1, tzinfo=CHINA)


async def test_a_second_campaign_does_not_reset_the_families(
    client: httpx.AsyncClient, world: World
) -> None:
    """The rough edge itself: a second campaign used to be accepted and every family of the
    region fell back to `not_issued`."""
    province = await as_role(client, world, Role.province_admin)
    registrar = await as_role(client, world, Role.registrar)
    teacher = await as_role(client, world, Role.teacher)
    await client.post("/campaigns", headers=province, json=body())
    issued = await client.post(
        "/form-batches", json={"class_id": world.classes["A1"]}, headers=registrar
    )
    assert issued.status_code == 202, issued.text

    again = await client.post(
        "/campaigns",
        headers=province,
        json=body("330106", name="又一次核查", starts_at=(NOW - timedelta(minutes=5)).isoformat()),
    )

    assert again.status_code == 409
    families = (await client.get("/families", headers=teacher)).json()["items"]
    assert {f["form"]["status"] for f in families} == {"not_uploaded"}


async def test_closing_ends_the_campaign_now_and_keeps_its_forms(
    client: httpx.AsyncClient, world: World
) -> None:
    province = await as_role(client, world, Role.province_admin)
    registrar = await as_role(client, world, Role.registrar)
    teacher = await as_role(client, world, Role.teacher)
    campaign = (await client.post("/campaigns", headers=province, json=body())).json()
    await client.post("/form-batches", json={"class_id": world.classes["A1"]}, headers=registrar)

    closed = await client.post(f"/campaigns/{campaign['id']}/close", headers=province)

    assert closed.status_code == 200, closed.text
    assert closed.json()["state"] == "closed"
    assert closed.json()["active"] is False
    assert closed.json()["closed_at"] is not None
    ends_at = datetime.fromisoformat(closed.json()["ends_at"])
    assert ends_at <= datetime.now(UTC)
    assert await audit_actions(campaign["id"]) == ["create", "close"]
    # the forms stay, as history; the families see no open check, and nothing is accepted
    assert await IssuedForm.count() == 3
    families = (await client.get("/families", headers=teacher)).json()["items"]
    assert {f["form"]["status"] for f in families} == {"no_campaign"}
    reissue = await client.post(
        "/form-batches", json={"class_id": world.classes["A1"]}, headers=registrar
    )
    assert reissue.json()["code"] == "outside_window"
    photo = await client.post(
        f"/students/{world.students[0]}/uploads",
        headers=teacher,
        files={"file": ("photo.jpg", images.jpeg_with_orientation(1))},
    )
    assert photo.status_code == 409
    assert photo.json()["code"] == "outside_window"
    # closed is final; and the region is free for a new campaign from now on
    twice = await client.post(f"/campaigns/{campaign['id']}/close", headers=province)
    reopened = await client.patch(
        f"/campaigns/{campaign['id']}",
        headers=province,
        json={"ends_at": (NOW + timedelta(days=30)).isoformat()},
    )
    assert (twice.status_code, twice.json()["code"]) == (409, "campaign_closed")
    assert (reopened.status_code, reopened.json()["code"]) == (409, "campaign_closed")
    assert "关闭" in reopened.json()["message"]
    follow_up = await client.post(
        "/campaigns",
        headers=province,
        json=body(name="补充核查", starts_at=datetime.now(UTC).isoformat()),
    )
    assert follow_up.status_code == 201, follow_up.text


async def test_a_campaign_not_started_yet_is_deleted_rather_than_closed(
    client: httpx.AsyncClient, world: World
) -> None:
    province = await as_role(client, world, Role.province_admin)
    later = (
        await client.post(
            "/campaigns",
            headers=province,
            json=body(
                starts_at=(NOW + timedelta(days=10)).isoformat(),
                ends_at=(NOW + timedelta(days=40)).isoformat(),
            ),
        )
    ).json()
    assert later["state"] == "upcoming"

    closed = await client.post(f"/campaigns/{later['id']}/close", headers=province)

    assert closed.status_code == 409
    assert closed.json()["code"] == "campaign_not_started"
    assert "删除" in closed.json()["message"]


async def test_a_mistaken_campaign_is_deleted_before_any_form(
    client: httpx.AsyncClient, world: World
) -> None:
    province = await as_role(client, world, Role.province_admin)
    mistaken = (await client.post("/campaigns", headers=province, json=body())).json()
    await client.put(
        f"/campaigns/{mistaken['id']}/regions/330100", headers=province, json={"forms_open": False}
    )

    deleted = await client.delete(f"/campaigns/{mistaken['id']}", headers=province)

    assert deleted.status_code == 204, deleted.text
    assert await Campaign.count() == 0
    gone = await client.get(f"/campaigns/{mistaken['id']}", headers=province)
    assert gone.status_code == 404
    [row] = await AuditLog.select().where(AuditLog.action == "delete")
    assert (row["entity"], row["entity_id"]) == ("campaign", str(mistaken["id"]))
    assert json.loads(row["before"])["name"] == "2026年秋季数据质量核查"
    # the region is free again
    again = await client.post("/campaigns", headers=province, json=body())
    assert again.status_code == 201


async def test_a_campaign_with_forms_is_closed_not_deleted(
    client: httpx.AsyncClient, world: World
) -> None:
    province = await as_role(client, world, Role.province_admin)
    registrar = await as_role(client, world, Role.registrar)
    campaign = (await client.post("/campaigns", headers=province, json=body())).json()
    await client.post("/form-batches", json={"class_id": world.classes["A1"]}, headers=registrar)

    refused = await client.delete(f"/campaigns/{campaign['id']}", headers=province)

    assert refused.status_code == 409
    assert refused.json()["code"] == "campaign_has_forms"
    assert "关闭" in refused.json()["message"]
    assert await Campaign.count() == 1
    assert await IssuedForm.count() == 3
    assert "delete" not in await audit_actions(campaign["id"])


@pytest.mark.parametrize("role", [Role.city_admin, Role.county_reviewer, Role.registrar])
async def test_only_the_province_closes_or_deletes(
    client: httpx.AsyncClient, world: World, role: Role
) -> None:
    province = await as_role(client, world, Role.province_admin)
    other = await as_role(client, world, role)
    campaign = (await client.post("/campaigns", headers=province, json=body())).json()

    closed = await client.post(f"/campaigns/{campaign['id']}/close", headers=other)
    deleted = await client.delete(f"/campaigns/{campaign['id']}", headers=other)

    assert (closed.status_code, closed.json()["code"]) == (403, "campaign_province_only")
    assert (deleted.status_code, deleted.json()["code"]) == (403, "campaign_province_only")
    assert await audit_actions(campaign["id"]) == ["create", "forbidden", "forbidden"]
    assert await Campaign.count() == 1


async def test_forms_switch_and_window_close_issuing(
    client: httpx.AsyncClient, world: World
) -> None:
    province = await as_role(client, world, Role.province_admin)
    registrar = await as_role(client, world, Role.registrar)
    class_id = world.classes["A1"]

    none_yet = await client.post("/form-batches", json={"class_id": class_id}, headers=registrar)
    assert none_yet.status_code == 409
    assert none_yet.json()["code"] == "outside_window"
    assert none_yet.json()["message"] == "当前不在数据质量核查工作时间内"

    campaign = (
        await client.post("/campaigns", headers=province, json=body(forms_open=False))
    ).json()
    closed = await client.post("/form-batches", json={"class_id": class_id}, headers=registrar)
    assert closed.status_code == 409
    assert closed.json()["message"] == "当前核查工作未开放打印确认表"

    opened = await client.patch(
        f"/campaigns/{campaign['id']}", headers=province, json={"forms_open": True}
    )
    assert opened.json()["forms_open"] is True
    issued = await client.post("/form-batches", json={"class_id": class_id}, headers=registrar)
    assert issued.status_code == 202, issued.text

    ended = await client.patch(
        f"/campaigns/{campaign['id']}",
        headers=province,
        json={
            "starts_at": (NOW - timedelta(days=9)).isoformat(),
            "ends_at": (NOW - timedelta(days=1)).isoformat(),
        },
    )
    assert ended.json()["active"] is False
    assert ended.json()["state"] == "ended"
    after = await client.post("/form-batches", json={"class_id": class_id}, headers=registrar)
    assert after.json()["code"] == "outside_window"

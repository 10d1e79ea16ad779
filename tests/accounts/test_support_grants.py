"""No standing god mode (issue 18): a sysadmin reads no student's data until an admin of the
region approves a time-boxed support grant; then, read-only, that region's only, every
request audited with the grant's id, until it runs out or is revoked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from backend.accounts import principal as principal_module
from backend.accounts import support
from backend.accounts.roles import Role
from backend.accounts.support_tables import SupportGrant
from backend.accounts.tables import AuditLog
from backend.config import Settings
from tests.factories import World, bearer, build_world, login, make_students

REASON = "工单 2026-1201-07：学校A导入后照片核验一直失败，需查看学生记录"


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 2)  # 西湖区 330106
    world.other_students = await make_students(world, "B1", 1, start=10)  # 滨江区 330108
    return world


async def as_role(client: httpx.AsyncClient, world: World, role: Role) -> dict[str, str]:
    return bearer(await login(client, world.phones[role]))


async def ask(
    client: httpx.AsyncClient, sysadmin: dict[str, str], region_code: str = "330106", hours: int = 2
) -> dict[str, Any]:
    response = await client.post(
        "/support-grants",
        json={"region_code": region_code, "reason": REASON, "hours": hours},
        headers=sysadmin,
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def decide(
    client: httpx.AsyncClient, headers: dict[str, str], grant_id: int, verb: str, note: str = ""
) -> httpx.Response:
    return await client.post(
        f"/support-grants/{grant_id}/{verb}", json={"note": note}, headers=headers
    )


async def audit_rows(action: str, grant_id: int) -> list[dict[str, Any]]:
    return await AuditLog.select().where(  # type: ignore[no-any-return]
        (AuditLog.action == action)
        & (AuditLog.entity == "support_grant")
        & (AuditLog.entity_id == str(grant_id))
    )


def travel(monkeypatch: pytest.MonkeyPatch, by: timedelta) -> None:
    """Move the clock the principal and the grants read `by` ahead."""
    real = datetime

    class Later(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Later:  # type: ignore[override]
            return real.now(tz) + by  # type: ignore[return-value]

    monkeypatch.setattr(principal_module, "datetime", Later)
    monkeypatch.setattr(support, "_now", lambda: real.now(UTC) + by)


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert response.json()["message"]  # a Chinese sentence a person can act on


async def test_without_a_grant_a_sysadmin_reads_no_student_but_still_configures(
    client: httpx.AsyncClient, world: World
) -> None:
    sysadmin = await as_role(client, world, Role.sysadmin)
    student = world.students[0]

    assert_error(await client.get(f"/students/{student}", headers=sysadmin), 404, "not_found")
    listed = await client.get("/students", headers=sysadmin)
    assert listed.status_code == 200
    assert listed.json()["total"] == 0
    denied = await AuditLog.select().where(
        (AuditLog.action == "access_denied") & (AuditLog.entity_id == str(student))
    )
    assert [row["actor_id"] for row in denied] == [world.accounts[Role.sysadmin]]
    # what is not a person's data keeps the account's national scope
    schools = await client.get("/org/schools", headers=sysadmin)
    assert schools.json()["total"] == len(world.schools)
    accounts = await client.get("/accounts", headers=sysadmin)
    assert accounts.status_code == 200
    assert accounts.json()["total"] == len(world.accounts)


async def test_an_approved_grant_opens_its_region_only_and_ends_by_itself(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    sysadmin = await as_role(client, world, Role.sysadmin)  # a session made before the grant
    mine, elsewhere = world.students[0], world.other_students[0]
    grant = await ask(client, sysadmin, "330106", hours=2)
    assert (grant["status"], grant["in_force"], grant["expires_at"]) == ("requested", False, None)
    assert (await client.get(f"/students/{mine}", headers=sysadmin)).status_code == 404

    approved = await decide(
        client, await as_role(client, world, Role.county_reviewer), grant["id"], "approve"
    )
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert (body["status"], body["in_force"]) == ("approved", True)
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(hours=1, minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=2)

    # the same session sees the grant at its next request: its region, nothing else
    read = await client.get(f"/students/{mine}", headers=sysadmin)
    assert read.status_code == 200, read.text
    assert (await client.get(f"/students/{elsewhere}", headers=sysadmin)).status_code == 404
    listed = (await client.get("/students", headers=sysadmin)).json()
    assert {s["id"] for s in listed["items"]} == set(world.students)
    # read-only and masked: no value in full, no import
    reveal = await client.post(
        f"/students/{mine}/reveal", json={"field": "id_number"}, headers=sysadmin
    )
    assert_error(reveal, 403, "reveal_forbidden")
    # every request under the grant is audited with its id, without the query string
    reads = await audit_rows("support_read", grant["id"])
    paths = [row["after"] for row in reads]
    assert any(f'"/students/{mine}"' in p for p in paths)
    assert all('"region_code":"330106"' in p for p in paths)
    assert {row["actor_id"] for row in reads} == {world.accounts[Role.sysadmin]}

    travel(monkeypatch, timedelta(hours=2, minutes=1))
    assert_error(await client.get(f"/students/{mine}", headers=sysadmin), 404, "not_found")
    assert (await client.get("/students", headers=sysadmin)).json()["total"] == 0
    seen = (await client.get(f"/support-grants/{grant['id']}", headers=sysadmin)).json()
    assert (seen["status"], seen["in_force"]) == ("approved", False)
    late = await client.post(
        f"/support-grants/{grant['id']}/revoke",
        headers=await as_role(client, world, Role.county_reviewer),
    )
    assert_error(late, 409, "support_grant_not_in_force")
    # past its time nothing more is made under it
    assert len(await audit_rows("support_read", grant["id"])) == len(reads)


async def test_only_an_admin_of_the_region_decides(client: httpx.AsyncClient, world: World) -> None:
    sysadmin = await as_role(client, world, Role.sysadmin)
    county = await as_role(client, world, Role.county_reviewer)  # 西湖区
    grant = await ask(client, sysadmin, "330108")  # 滨江区

    # another county's grant answers like a missing one, and the attempt is audited
    assert_error(await decide(client, county, grant["id"], "approve"), 404, "not_found")
    denied = await AuditLog.select().where(
        (AuditLog.action == "access_denied")
        & (AuditLog.entity == "support_grant")
        & (AuditLog.entity_id == str(grant["id"]))
    )
    assert [row["actor_id"] for row in denied] == [world.accounts[Role.county_reviewer]]
    # nobody but a region's admin decides, not even a sysadmin; only a sysadmin asks
    assert_error(
        await decide(client, sysadmin, grant["id"], "approve"), 403, "support_region_admins_only"
    )
    registrar = await as_role(client, world, Role.registrar)
    assert_error(
        await client.get("/support-grants", headers=registrar), 403, "support_region_admins_only"
    )
    asked_by_county = await client.post(
        "/support-grants",
        json={"region_code": "330106", "reason": REASON, "hours": 1},
        headers=county,
    )
    assert_error(asked_by_county, 403, "support_sysadmin_only")
    stored = await SupportGrant.select(SupportGrant.status).where(SupportGrant.id == grant["id"])
    assert stored == [{"status": "requested"}]
    assert (await client.get("/support-grants", headers=county)).json()["total"] == 0

    # the city above 滨江区 does
    city = await as_role(client, world, Role.city_admin)
    assert (await client.get("/support-grants", headers=city)).json()["total"] == 1
    approved = await decide(client, city, grant["id"], "approve", "限查看学校B")
    assert approved.status_code == 200, approved.text
    assert approved.json()["decided_by_id"] == world.accounts[Role.city_admin]
    assert approved.json()["decision_note"] == "限查看学校B"
    other = world.other_students[0]
    assert (await client.get(f"/students/{other}", headers=sysadmin)).status_code == 200
    assert (await client.get(f"/students/{world.students[0]}", headers=sysadmin)).status_code == 404
    [requested] = await audit_rows("request", grant["id"])
    assert requested["actor_id"] == world.accounts[Role.sysadmin]
    assert '"hours":2' in requested["after"]
    assert '"region_code":"330108"' in requested["after"]
    [approval] = await audit_rows("approve", grant["id"])
    assert approval["actor_id"] == world.accounts[Role.city_admin]


async def test_a_refused_grant_opens_nothing(client: httpx.AsyncClient, world: World) -> None:
    sysadmin = await as_role(client, world, Role.sysadmin)
    province = await as_role(client, world, Role.province_admin)
    grant = await ask(client, sysadmin)

    refused = await decide(client, province, grant["id"], "refuse", "请先说明需要查看哪所学校")
    assert refused.status_code == 200, refused.text
    assert (refused.json()["status"], refused.json()["in_force"]) == ("refused", False)
    assert refused.json()["status_label"] == "已拒绝"
    assert (await client.get(f"/students/{world.students[0]}", headers=sysadmin)).status_code == 404
    assert_error(
        await decide(client, province, grant["id"], "approve"), 409, "support_grant_decided"
    )
    [row] = await audit_rows("refuse", grant["id"])
    assert row["actor_id"] == world.accounts[Role.province_admin]
    assert "请先说明" in row["after"]
    assert await audit_rows("support_read", grant["id"]) == []


async def test_any_admin_of_the_region_revokes_and_the_next_request_sees_it(
    client: httpx.AsyncClient, world: World
) -> None:
    sysadmin = await as_role(client, world, Role.sysadmin)
    grant = await ask(client, sysadmin, hours=72)
    county = await as_role(client, world, Role.county_reviewer)
    assert (await decide(client, county, grant["id"], "approve")).status_code == 200
    student = world.students[0]
    assert (await client.get(f"/students/{student}", headers=sysadmin)).status_code == 200

    # the city above, not the approver, ends it
    city = await as_role(client, world, Role.city_admin)
    revoked = await client.post(f"/support-grants/{grant['id']}/revoke", headers=city)
    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["status"], revoked.json()["in_force"]) == ("revoked", False)
    assert revoked.json()["revoked_by_id"] == world.accounts[Role.city_admin]
    assert_error(await client.get(f"/students/{student}", headers=sysadmin), 404, "not_found")
    again = await client.post(f"/support-grants/{grant['id']}/revoke", headers=county)
    assert_error(again, 409, "support_grant_not_in_force")
    [row] = await audit_rows("revoke", grant["id"])
    assert row["actor_id"] == world.accounts[Role.city_admin]


async def test_one_grant_in_force_at_a_time(client: httpx.AsyncClient, world: World) -> None:
    sysadmin = await as_role(client, world, Role.sysadmin)
    city = await as_role(client, world, Role.city_admin)
    first = await ask(client, sysadmin, "330106")
    second = await ask(client, sysadmin, "330108")
    assert (await decide(client, city, first["id"], "approve")).status_code == 200

    assert_error(await decide(client, city, second["id"], "approve"), 409, "support_grant_in_force")
    stored = await SupportGrant.select(SupportGrant.status).where(SupportGrant.id == second["id"])
    assert stored == [{"status": "requested"}]
    assert (
        await client.post(f"/support-grants/{first['id']}/revoke", headers=city)
    ).status_code == 200
    assert (await decide(client, city, second["id"], "approve")).status_code == 200
    other = world.other_students[0]
    assert (await client.get(f"/students/{other}", headers=sysadmin)).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"region_code": "330106", "reason": REASON, "hours": 0}, "hours"),
        ({"region_code": "330106", "reason": REASON, "hours": 169}, "hours"),
        ({"region_code": "330106", "reason": "", "hours": 8}, "reason"),
        ({"region_code": "33010", "reason": REASON, "hours": 8}, "region_code"),
    ],
)
async def test_a_grant_is_reasoned_and_time_boxed(
    client: httpx.AsyncClient, world: World, body: dict[str, Any], field: str
) -> None:
    sysadmin = await as_role(client, world, Role.sysadmin)
    response = await client.post("/support-grants", json=body, headers=sysadmin)
    assert_error(response, 400, "validation_error")
    assert field in response.text
    assert not await SupportGrant.exists()


async def test_a_region_that_does_not_exist_is_not_granted(
    client: httpx.AsyncClient, world: World
) -> None:
    sysadmin = await as_role(client, world, Role.sysadmin)
    response = await client.post(
        "/support-grants",
        json={"region_code": "110000", "reason": REASON, "hours": 8},
        headers=sysadmin,
    )
    assert_error(response, 404, "not_found")
    assert not await SupportGrant.exists()

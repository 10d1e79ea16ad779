"""Bulk exports of full student records (unmasked), which regulation 002 allows only under an
authorising document: refused without one, refused when the recorder confirms its own, allowed
after a second admin confirms (by those two admins, within the approved region only), refused
24 hours after the confirmation; every step and every refusal audited."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import openpyxl
import pytest

from backend.accounts.roles import Role
from backend.accounts.tables import Account, AuditLog
from backend.config import Settings
from backend.records.tables import Student
from backend.reports import exports
from backend.reports.tables import ExportApproval, ExportJob
from tests.factories import (
    World,
    add_direct_schools,
    bearer,
    build_world,
    login,
    make_account,
    make_students,
    run_jobs,
)

DOCUMENT = {
    "document_number": "西政〔2026〕12号",
    "issuing_authority": "杭州市西湖区人民政府",
    "region_code": "330106",
    "purpose": "学生资助核对",
}
BINJIANG_REVIEWER = "13600000108"


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    await add_direct_schools(world, settings)  # a second county reviewer of 330106
    await make_account(
        settings, Role.county_reviewer, BINJIANG_REVIEWER, name="滨江审核员", region_code="330108"
    )
    world.students = await make_students(world, "A1", 3)
    world.other_students = await make_students(world, "B1", 2, start=20)
    return world


class People:
    def __init__(self, client: httpx.AsyncClient, world: World) -> None:
        self.client, self.world = client, world
        self._tokens: dict[str, dict[str, str]] = {}

    async def __call__(self, who: Role | str) -> dict[str, str]:
        key = str(who)
        if key not in self._tokens:
            if key in self.world.staff:
                phone = self.world.staff[key][1]
            elif key == "binjiang":
                phone = BINJIANG_REVIEWER
            else:
                phone = self.world.phones[Role(key)]
            self._tokens[key] = bearer(await login(self.client, phone))
        return self._tokens[key]


@pytest.fixture
def as_(client: httpx.AsyncClient, world: World) -> People:
    return People(client, world)


async def record(
    client: httpx.AsyncClient, headers: dict[str, str], **changes: str
) -> httpx.Response:
    return await client.post("/export-approvals", json={**DOCUMENT, **changes}, headers=headers)


async def confirm(
    client: httpx.AsyncClient, headers: dict[str, str], approval_id: int
) -> httpx.Response:
    return await client.post(f"/export-approvals/{approval_id}/confirm", headers=headers)


async def bulk(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post(
        "/exports", json={"kind": "student_records", "format": "xlsx", **body}, headers=headers
    )


async def approved(client: httpx.AsyncClient, as_: People) -> int:
    made = await record(client, await as_(Role.county_reviewer))
    assert made.status_code == 201, made.text
    done = await confirm(client, await as_("county_reviewer_2"), made.json()["id"])
    assert done.status_code == 200, done.text
    return int(made.json()["id"])


async def audited(action: str, entity: str, entity_id: object = None) -> list[dict[str, Any]]:
    query = AuditLog.select().where((AuditLog.action == action) & (AuditLog.entity == entity))
    if entity_id is not None:
        query = query.where(AuditLog.entity_id == str(entity_id))
    return await query  # type: ignore[no-any-return]


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert response.json()["message"]  # a Chinese sentence for the person


async def test_full_records_are_refused_without_an_approval(
    client: httpx.AsyncClient, as_: People
) -> None:
    refused(await bulk(client, await as_(Role.county_reviewer)), 403, "export_needs_approval")
    [row] = await audited("export_refused", "export_approval")
    assert json.loads(row["after"]) == {"code": "export_needs_approval"}
    # a school may not, whatever it names
    refused(await bulk(client, await as_(Role.registrar), approval_id=1), 403, "export_admins_only")
    assert await ExportJob.count() == 0


async def test_the_recorder_cannot_confirm_its_own_approval(
    client: httpx.AsyncClient, as_: People, world: World
) -> None:
    county = await as_(Role.county_reviewer)
    made = await record(client, county)
    assert made.status_code == 201, made.text
    approval = made.json()
    assert (approval["state"], approval["in_force"], approval["expires_at"]) == (
        "pending",
        False,
        None,
    )
    assert approval["recorded_by_id"] == world.accounts[Role.county_reviewer]

    refused(await confirm(client, county, approval["id"]), 403, "approval_same_admin")
    refused(await confirm(client, county, approval["id"]), 403, "approval_same_admin")
    refused(await bulk(client, county, approval_id=approval["id"]), 409, "approval_not_confirmed")
    row = await ExportApproval.select().where(ExportApproval.id == approval["id"]).first()
    assert row is not None
    assert (row["state"], row["confirmed_by"]) == ("pending", None)
    assert len(await audited("forbidden", "export_approval", approval["id"])) == 0
    refusals = await AuditLog.select().where(AuditLog.action == "forbidden")
    assert [json.loads(r["after"])["code"] for r in refusals] == ["approval_same_admin"] * 2
    assert await ExportJob.count() == 0


async def test_two_admins_allow_full_records_of_the_approved_region_for_24_hours(
    client: httpx.AsyncClient, as_: People, world: World
) -> None:
    approval_id = await approved(client, as_)
    shown = (
        await client.get(f"/export-approvals/{approval_id}", headers=await as_(Role.city_admin))
    ).json()
    assert (shown["state"], shown["in_force"]) == ("confirmed", True)
    assert shown["confirmed_by_id"] == world.staff["county_reviewer_2"][0]
    expires = datetime.fromisoformat(shown["expires_at"])
    confirmed = datetime.fromisoformat(shown["confirmed_at"])
    assert expires - confirmed == timedelta(hours=24)

    for who in (Role.county_reviewer, "county_reviewer_2"):  # either of the two
        made = await bulk(client, await as_(who), approval_id=approval_id)
        assert made.status_code == 201, made.text
        body = made.json()
        assert (body["status"], body["row_count"], body["approval_id"]) == ("done", 3, approval_id)
        assert datetime.fromisoformat(body["expires_at"]) <= expires  # never past the approval

    data = (await client.get(body["download_url"], headers=await as_("county_reviewer_2"))).content
    sheet = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    header = {r[0]: r[1] for r in rows[:6]}
    assert header["导出内容"] == "学生学籍信息"
    assert header["导出范围"] == "浙江省杭州市西湖区"
    assert header["数据行数"] == "3"
    assert "西政〔2026〕12号" in header["说明"]
    assert "杭州市西湖区人民政府" in header["说明"]
    text = json.dumps(rows, ensure_ascii=False, default=str)
    for student in await Student.select().where(Student.id.is_in(world.students)):
        assert student["id_number"] in text  # in full: that is what was approved
    for student in await Student.select().where(Student.id.is_in(world.other_students)):
        assert student["name"] not in text  # 滨江区's children are not in it

    [recorded] = await audited("record", "export_approval", approval_id)
    assert json.loads(recorded["after"])["document_number"] == "西政〔2026〕12号"
    [confirmed_row] = await audited("confirm", "export_approval", approval_id)
    assert confirmed_row["actor_id"] == world.staff["county_reviewer_2"][0]
    exported = await audited("export", "export_job")
    assert [json.loads(r["after"])["rows"] for r in exported] == [3, 3]
    assert all(json.loads(r["after"])["approval"] == approval_id for r in exported)


async def test_exports_are_refused_24_hours_after_the_confirmation(
    client: httpx.AsyncClient, as_: People
) -> None:
    approval_id = await approved(client, as_)
    county = await as_(Role.county_reviewer)
    made = (await bulk(client, county, approval_id=approval_id)).json()

    # A day passes: the approval's times are set back by 24 hours and a second.
    day = timedelta(hours=24, seconds=1)
    row = await ExportApproval.select().where(ExportApproval.id == approval_id).first()
    assert row is not None
    await ExportApproval.update(
        {
            ExportApproval.confirmed_at: row["confirmed_at"] - day,
            ExportApproval.expires_at: row["expires_at"] - day,
        }
    ).where(ExportApproval.id == approval_id)
    await ExportJob.update({ExportJob.expires_at: datetime.now(UTC) - timedelta(seconds=1)}).where(
        ExportJob.id == made["id"]
    )

    refused(await bulk(client, county, approval_id=approval_id), 409, "approval_expired")
    refused(await client.get(made["download_url"], headers=county), 409, "export_expired")
    shown = (await client.get(f"/export-approvals/{approval_id}", headers=county)).json()
    assert shown["in_force"] is False
    [row] = await audited("export_refused", "export_approval", approval_id)
    assert json.loads(row["after"]) == {"code": "approval_expired"}
    assert await ExportJob.count() == 1


async def test_exports_outside_the_approved_scope_are_refused(
    client: httpx.AsyncClient, as_: People
) -> None:
    approval_id = await approved(client, as_)
    county = await as_(Role.county_reviewer)
    # Another county's children under 西湖区's approval.
    refused(
        await bulk(client, county, approval_id=approval_id, region_code="330108"),
        403,
        "export_outside_approval",
    )
    refused(
        await bulk(client, county, approval_id=approval_id, region_code="330100"),
        403,
        "export_outside_approval",
    )
    # An admin above who is neither of the two: the document named them, not everyone.
    refused(
        await bulk(client, await as_(Role.city_admin), approval_id=approval_id),
        403,
        "approval_not_yours",
    )
    # Another county's admin does not even see it.
    refused(await bulk(client, await as_("binjiang"), approval_id=approval_id), 404, "not_found")
    assert len(await audited("access_denied", "export_approval", approval_id)) == 1
    # Nor may a county record a document for a region that is not its own.
    refused(await record(client, county, region_code="330108"), 403, "approval_outside_scope")
    refused(await record(client, county, region_code="330000"), 403, "approval_outside_scope")
    assert await ExportJob.count() == 0
    assert await ExportApproval.count() == 1


async def test_a_lower_rank_or_another_county_cannot_confirm(
    client: httpx.AsyncClient, as_: People
) -> None:
    made = (await record(client, await as_(Role.city_admin))).json()
    refused(
        await confirm(client, await as_(Role.county_reviewer), made["id"]),
        403,
        "approval_rank_too_low",
    )
    refused(await confirm(client, await as_("binjiang"), made["id"]), 404, "not_found")
    refused(await confirm(client, await as_(Role.registrar), made["id"]), 403, "export_admins_only")
    done = await confirm(client, await as_(Role.province_admin), made["id"])
    assert (done.status_code, done.json()["state"]) == (200, "confirmed")
    refused(
        await confirm(client, await as_(Role.province_admin), made["id"]),
        409,
        "approval_not_pending",
    )
    # a sysadmin records and confirms nothing: it is no authority (docs/security.md)
    refused(await confirm(client, await as_(Role.sysadmin), made["id"]), 403, "export_admins_only")


async def test_of_two_admins_confirming_at_once_one_confirms(
    client: httpx.AsyncClient, as_: People
) -> None:
    made = (await record(client, await as_(Role.county_reviewer))).json()
    second, city = await as_("county_reviewer_2"), await as_(Role.city_admin)
    answers = await asyncio.gather(
        confirm(client, second, made["id"]), confirm(client, city, made["id"])
    )
    assert sorted(a.status_code for a in answers) == [200, 409]
    assert len(await audited("confirm", "export_approval", made["id"])) == 1


async def test_the_job_checks_the_approval_again_when_it_runs(
    app: Any,
    settings: Settings,
    client: httpx.AsyncClient,
    as_: People,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A large export is asked for while the approval is in force and runs after it expired:
    no file is made."""
    monkeypatch.setattr(exports, "INLINE_ROWS", 1)
    approval_id = await approved(client, as_)
    county = await as_(Role.county_reviewer)
    made = (await bulk(client, county, approval_id=approval_id)).json()
    assert made["status"] == "queued"
    await ExportApproval.update(
        {ExportApproval.expires_at: datetime.now(UTC) - timedelta(seconds=1)}
    ).where(ExportApproval.id == approval_id)

    await run_jobs(app, settings)
    shown = (await client.get(f"/exports/{made['id']}", headers=county)).json()
    assert (shown["status"], shown["download_url"]) == ("failed", None)
    assert "过期" in shown["message"]
    refused(await client.get(f"/exports/{made['id']}/file", headers=county), 409, "export_failed")
    assert await audited("export", "export_job") == []


async def test_the_job_makes_no_file_for_an_account_disabled_meanwhile(
    app: Any,
    settings: Settings,
    client: httpx.AsyncClient,
    as_: People,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exports, "INLINE_ROWS", 1)
    approval_id = await approved(client, as_)
    made = (await bulk(client, await as_(Role.county_reviewer), approval_id=approval_id)).json()
    await Account.update({Account.status: "disabled"}).where(
        Account.id == world.accounts[Role.county_reviewer]
    )
    await run_jobs(app, settings)
    row = await ExportJob.select().where(ExportJob.id == made["id"]).first()
    assert row is not None
    assert (row["status"], row["storage_key"]) == ("failed", None)
    assert await audited("export", "export_job") == []


async def test_a_withdrawn_approval_stops_exports_and_downloads(
    client: httpx.AsyncClient, as_: People, world: World
) -> None:
    approval_id = await approved(client, as_)
    county = await as_(Role.county_reviewer)
    made = (await bulk(client, county, approval_id=approval_id)).json()
    assert made["status"] == "done"

    city = await as_(Role.city_admin)
    withdrawn = await client.post(f"/export-approvals/{approval_id}/revoke", headers=city)
    assert withdrawn.status_code == 200, withdrawn.text
    assert (withdrawn.json()["state"], withdrawn.json()["in_force"]) == ("revoked", False)
    refused(await bulk(client, county, approval_id=approval_id), 409, "approval_revoked")
    refused(await client.get(made["download_url"], headers=county), 409, "approval_revoked")
    again = await client.post(f"/export-approvals/{approval_id}/revoke", headers=city)
    refused(again, 409, "approval_already_revoked")
    [row] = await audited("revoke", "export_approval", approval_id)
    assert row["actor_id"] == world.accounts[Role.city_admin]
    refused(
        await client.post(f"/export-approvals/{approval_id}/revoke", headers=await as_("binjiang")),
        404,
        "not_found",
    )


async def test_an_admin_moved_out_of_the_approved_region_gets_no_file(
    app: Any,
    settings: Settings,
    client: httpx.AsyncClient,
    as_: People,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The county reviewer who recorded the approval is moved to another county while its
    large export waits: the job makes no file of the old county's records, and a file made
    before the move can no longer be downloaded (as asking again answers 404)."""
    approval_id = await approved(client, as_)
    county = await as_(Role.county_reviewer)
    small = (await bulk(client, county, approval_id=approval_id)).json()
    assert small["status"] == "done"
    monkeypatch.setattr(exports, "INLINE_ROWS", 1)
    made = (await bulk(client, county, approval_id=approval_id)).json()
    assert made["status"] == "queued"
    await Account.update({Account.region_code: "330108"}).where(
        Account.id == world.accounts[Role.county_reviewer]
    )

    await run_jobs(app, settings)
    row = await ExportJob.select().where(ExportJob.id == made["id"]).first()
    assert row is not None
    assert (row["status"], row["storage_key"]) == ("failed", None)
    assert "管辖范围" in row["message"]
    assert len(await audited("export", "export_job")) == 1  # the small one only
    refused(await bulk(client, county, approval_id=approval_id), 404, "not_found")
    refused(await client.get(small["download_url"], headers=county), 404, "not_found")

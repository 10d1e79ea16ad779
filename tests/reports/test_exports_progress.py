"""Exports of a campaign's progress table (the node, then each child one level down), over
`backend.reports.progress.progress_table`: the counts the API shows, within the caller's scope
only, with the header block, audited with the row count."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import openpyxl
import pytest

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.reports import progress
from backend.reports.tables import ExportJob
from tests.reports.progress_world import ProgressWorld, build, counts, refresh


@pytest.fixture
async def pw(settings: Settings) -> ProgressWorld:
    world = await build(settings)
    await refresh()
    return world


async def export(
    client: httpx.AsyncClient, pw: ProgressWorld, role: Role, **body: object
) -> httpx.Response:
    return await client.post(
        "/exports",
        json={"kind": "progress", "campaign_id": pw.campaign, **body},
        headers=await pw.headers(client, role),
    )


async def test_a_city_exports_its_counties_progress_as_the_api_counts_it(
    client: httpx.AsyncClient, pw: ProgressWorld
) -> None:
    made = await export(client, pw, Role.city_admin, format="xlsx")
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["status"], body["scope_label"]) == ("done", "浙江省杭州市")
    got = await client.get(body["download_url"], headers=await pw.headers(client, Role.city_admin))
    sheet = openpyxl.load_workbook(io.BytesIO(got.content)).worksheets[0]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    blank = next(i for i, r in enumerate(rows) if all(v is None for v in r))
    header = {r[0]: r[1] for r in rows[:blank]}
    columns, data = rows[blank + 1], rows[blank + 2 :]
    assert header["导出内容"] == "核查进度表"
    assert header["导出人"] == "city_admin（市级管理员）"
    assert header["数据行数"] == str(len(data))
    assert columns[:4] == ["层级", "名称", "地区代码", "在籍学生"]
    # 杭州市 itself, then its counties: 西湖区 (A1 4 + A2 2) and 滨江区 (B1 2).
    by_name = {r[1]: r for r in data}
    assert data[0][:2] == ["市", "杭州市"]
    students = columns.index("在籍学生")
    assert by_name["杭州市"][students] == 8
    assert by_name["西湖区"][students] == 6
    assert by_name["滨江区"][students] == 2
    assert "海曙区" not in by_name  # 宁波's county is not the city's
    api = await counts(client, pw, Role.city_admin)
    assert by_name["杭州市"][students] == api["students"]

    [row] = await AuditLog.select().where(
        (AuditLog.action == "export") & (AuditLog.entity_id == str(body["id"]))
    )
    after = json.loads(row["after"])
    assert (after["kind"], after["rows"]) == ("progress", len(data))


async def test_a_county_cannot_export_another_region_and_a_school_exports_its_classes(
    client: httpx.AsyncClient, pw: ProgressWorld
) -> None:
    refused = await export(client, pw, Role.county_reviewer, region_code="330108")
    assert (refused.status_code, refused.json()["code"]) == (404, "not_found")
    refused = await export(client, pw, Role.county_reviewer, school_id=pw.world.schools["B"])
    assert (refused.status_code, refused.json()["code"]) == (404, "not_found")
    assert await ExportJob.count() == 0

    made = (await export(client, pw, Role.registrar, format="csv")).json()
    got = await client.get(made["download_url"], headers=await pw.headers(client, Role.registrar))
    rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    data = rows[rows.index([]) + 2 :]
    assert [(r[0], r[1]) for r in data] == [("学校", "学校A"), ("班级", "A1班"), ("班级", "A2班")]

    missing = await client.post(
        "/exports",
        json={"kind": "progress"},
        headers=await pw.headers(client, Role.registrar),
    )
    assert (missing.status_code, missing.json()["code"]) == (400, "campaign_required")


async def test_a_small_export_reads_its_table_once(
    client: httpx.AsyncClient, pw: ProgressWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file made during the request is made of the rows the request counted: the
    progress table (a national one reads every county's counts) is not read a second time."""
    reads: list[int] = []
    table = progress.progress_table

    async def counted(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        reads.append(1)
        return await table(*args, **kwargs)

    monkeypatch.setattr(progress, "progress_table", counted)
    made = await export(client, pw, Role.city_admin, format="csv")
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "done"
    assert len(reads) == 1


async def test_the_header_names_the_node_exported(
    client: httpx.AsyncClient, pw: ProgressWorld
) -> None:
    """A city's table of one county, or of one class, says so in its header."""
    for body, label in (
        ({"region_code": "330106"}, "浙江省杭州市西湖区"),
        ({"class_id": pw.world.classes["A1"]}, "浙江省杭州市西湖区学校AA1班"),
    ):
        made = await export(client, pw, Role.city_admin, format="csv", **body)
        assert made.status_code == 201, made.text
        got = await client.get(
            made.json()["download_url"], headers=await pw.headers(client, Role.city_admin)
        )
        rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
        header = dict((r[0], r[1]) for r in rows[: rows.index([])])
        assert header["导出范围"] == made.json()["scope_label"] == label

"""Exports of the problem-record list (XLSX and CSV), over HTTP as a phone asks for them: only
the caller's scope, ID numbers and phones masked by the one rule (in the cells and inside free
text), the header block saying who, when, what scope and how many rows, the audit row with the
row count, a large export made by the worker, and a file only its requester downloads, for 24
hours."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import openpyxl
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog, SchoolClass
from backend.config import Settings
from backend.db import transaction
from backend.masking import mask_id_number, mask_phone
from backend.records.ids import make_resident_id
from backend.records.problem_tables import ProblemCase
from backend.records.problems import refresh
from backend.records.service import RecordIn, write_records
from backend.reports import exports, exports_sources
from backend.reports.tables import ExportJob
from backend.workdays import CHINA
from tests.factories import SYSTEM, World, bearer, build_world, login, make_account, run_jobs

BINJIANG_REVIEWER = "13600000108"


async def add_problem_student(world: World, class_key: str, i: int) -> dict[str, str]:
    """A record whose birth date disagrees with its ID number: a problem case of its school."""
    klass = await SchoolClass.select().where(SchoolClass.id == world.classes[class_key]).first()
    assert klass is not None
    born = date(2017, 3, 1 + i)
    values = {
        "name": f"导出学生{class_key}{i:02d}",
        "sex": "1",
        "birth_date": "2016-06-06",
        "ethnicity": "01",
        "nationality": "CN",
        "id_type": "1",
        "id_number": make_resident_id(klass["region_code"], born, i, "1"),
        "guardian1_name": f"家长{i:02d}",
        "guardian1_relation": "1",
        "guardian1_phone": f"1392222{i:04d}",
    }
    record = RecordIn(
        f"J{klass['region_code']}{i:010d}",
        klass["school"],
        klass["id"],
        klass["region_code"],
        values,
    )
    async with transaction():
        await write_records(SYSTEM, [record])
    return values


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    await make_account(
        settings, Role.county_reviewer, BINJIANG_REVIEWER, name="滨江审核员", region_code="330108"
    )
    return world


@pytest.fixture
async def students(world: World) -> dict[str, list[dict[str, str]]]:
    made = {
        "A": [await add_problem_student(world, "A1", i) for i in (1, 2)],
        "B": [await add_problem_student(world, "B1", i) for i in (3,)],
    }
    await refresh()
    return made


async def as_role(client: httpx.AsyncClient, world: World, role: Role) -> dict[str, str]:
    return bearer(await login(client, world.phones[role]))


async def export(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/exports", json={"kind": "problem_cases", **body}, headers=headers)


async def download(
    client: httpx.AsyncClient, headers: dict[str, str], made: dict[str, Any]
) -> bytes:
    got = await client.get(made["download_url"], headers=headers)
    assert got.status_code == 200, got.text
    assert got.headers["cache-control"] == "no-store"
    assert got.headers["content-disposition"].startswith("attachment; filename*=UTF-8''")
    return got.content


def read_xlsx(data: bytes) -> tuple[dict[str, str], list[str], list[list[Any]], Any]:
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book.worksheets[0]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    head_end = next(i for i, r in enumerate(rows) if all(v is None for v in r))
    header = {r[0]: r[1] for r in rows[:head_end]}
    return header, rows[head_end + 1], rows[head_end + 2 :], book


def read_csv(data: bytes) -> tuple[dict[str, str], list[str], list[list[str]]]:
    assert data.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    head_end = rows.index([])
    return dict((r[0], r[1]) for r in rows[:head_end]), rows[head_end + 1], rows[head_end + 2 :]


async def audit_rows(
    action: str, entity_id: object = None, entity: str = "export_job"
) -> list[dict[str, Any]]:
    query = AuditLog.select().where((AuditLog.action == action) & (AuditLog.entity == entity))
    if entity_id is not None:
        query = query.where(AuditLog.entity_id == str(entity_id))
    return await query  # type: ignore[no-any-return]


def check_header(header: dict[str, str], world: World, rows: int) -> None:
    assert header["导出内容"] == "问题学籍名单"
    assert header["导出人"] == "county_reviewer（县级学籍主管部门）"
    assert header["导出范围"] == "浙江省杭州市西湖区"
    assert header["数据行数"] == str(rows)
    shown = datetime.strptime(header["导出时间"].removesuffix("（北京时间）"), "%Y-%m-%d %H:%M:%S")
    assert abs(shown.replace(tzinfo=CHINA) - datetime.now(UTC)) < timedelta(minutes=2)
    assert "脱敏" in header["说明"]


async def test_a_county_exports_its_problem_records_masked_as_xlsx(
    client: httpx.AsyncClient, world: World, students: dict[str, list[dict[str, str]]]
) -> None:
    county = await as_role(client, world, Role.county_reviewer)
    made = await export(client, county, format="xlsx")
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["status"], body["row_count"], body["format"]) == ("done", 2, "xlsx")
    assert body["scope_label"] == "浙江省杭州市西湖区"
    data = await download(client, county, body)

    header, columns, rows, book = read_xlsx(data)
    check_header(header, world, 2)
    assert book.properties.creator == "county_reviewer"
    assert book.properties.subject == "浙江省杭州市西湖区"
    assert "数据行数：2" in book.properties.description
    assert columns[:5] == ["学校", "班级", "学生姓名", "学籍号", "身份证件号"]
    assert sorted(r[2] for r in rows) == ["导出学生A101", "导出学生A102"]  # not B's
    text = json.dumps([header, rows], ensure_ascii=False, default=str)
    for student in students["A"] + students["B"]:
        assert student["id_number"] not in text
    shown = {r[4] for r in rows}
    assert shown == {mask_id_number(s["id_number"]) for s in students["A"]}

    [audited] = await audit_rows("export", body["id"])
    after = json.loads(audited["after"])
    assert (after["rows"], after["kind"], after["format"]) == (2, "problem_cases", "xlsx")
    assert after["scope"] == "浙江省杭州市西湖区"
    assert audited["actor_id"] == world.accounts[Role.county_reviewer]
    assert len(await audit_rows("download", body["id"])) == 1


async def test_the_csv_opens_in_excel_and_is_masked_too(
    client: httpx.AsyncClient, world: World, students: dict[str, list[dict[str, str]]]
) -> None:
    county = await as_role(client, world, Role.county_reviewer)
    made = (await export(client, county, format="csv")).json()
    assert made["status"] == "done"
    header, columns, rows = read_csv(await download(client, county, made))
    check_header(header, world, 2)
    assert columns[4] == "身份证件号"
    assert {r[4] for r in rows} == {mask_id_number(s["id_number"]) for s in students["A"]}
    text = "\n".join(",".join(r) for r in rows)
    assert all(s["id_number"] not in text for s in students["A"])
    [audited] = await audit_rows("export", made["id"])
    assert json.loads(audited["after"])["rows"] == 2


async def test_free_text_is_masked_and_never_runs_as_a_formula(
    client: httpx.AsyncClient, world: World, students: dict[str, list[dict[str, str]]]
) -> None:
    """An imported list's description carrying an ID number, a phone and a formula."""
    hostile = f'=HYPERLINK("http://evil","点我") {students["A"][0]["id_number"]} 13912345678'
    await ProblemCase.update({ProblemCase.detail: hostile}).where(
        ProblemCase.region_code == "330106"
    )
    county = await as_role(client, world, Role.county_reviewer)

    made = (await export(client, county, format="xlsx")).json()
    _, columns, _, book = read_xlsx(await download(client, county, made))
    detail = columns.index("问题描述")
    sheet = book.worksheets[0]
    cells = [c for row in sheet.iter_rows() for c in row if c.column == detail + 1]
    texts = [c.value for c in cells if isinstance(c.value, str) and "HYPERLINK" in c.value]
    assert len(texts) == 2
    assert all(c.data_type == "s" for c in cells if c.value and "HYPERLINK" in str(c.value))
    assert students["A"][0]["id_number"] not in texts[0]
    assert mask_id_number(students["A"][0]["id_number"]) in texts[0]
    assert mask_phone("13912345678") in texts[0]
    assert "13912345678" not in texts[0]

    made = (await export(client, county, format="csv")).json()
    _, _, csv_rows = read_csv(await download(client, county, made))
    assert all(r[detail].startswith("'=HYPERLINK") for r in csv_rows)


async def test_a_county_cannot_export_another_countys_records(
    client: httpx.AsyncClient, world: World, students: dict[str, list[dict[str, str]]]
) -> None:
    binjiang = bearer(await login(client, BINJIANG_REVIEWER))
    made = (await export(client, binjiang, format="csv")).json()
    header, _, rows = read_csv(await download(client, binjiang, made))
    assert header["导出范围"] == "浙江省杭州市滨江区"
    assert [r[2] for r in rows] == ["导出学生B103"]

    # Naming a school of another county answers as if it did not exist, audited.
    refused = await export(client, binjiang, school_id=world.schools["A"])
    assert (refused.status_code, refused.json()["code"]) == (404, "not_found")
    assert await audit_rows("access_denied", world.schools["A"], "school")
    assert await ExportJob.count() == 1

    # Another's export and its file: not found, and the attempt audited.
    county = await as_role(client, world, Role.county_reviewer)
    for path in (f"/exports/{made['id']}", f"/exports/{made['id']}/file"):
        seen = await client.get(path, headers=county)
        assert (seen.status_code, seen.json()["code"]) == (404, "not_found")
    assert len(await audit_rows("access_denied", made["id"])) == 2
    assert (await client.get("/exports", headers=county)).json()["total"] == 0


async def test_a_school_exports_its_own_and_a_teacher_may_not(
    client: httpx.AsyncClient, world: World, students: dict[str, list[dict[str, str]]]
) -> None:
    registrar = await as_role(client, world, Role.registrar)
    made = (await export(client, registrar, format="csv")).json()
    header, _, rows = read_csv(await download(client, registrar, made))
    assert header["导出范围"] == "浙江省杭州市西湖区学校A"
    assert len(rows) == 2

    teacher = await as_role(client, world, Role.teacher)
    refused = await export(client, teacher)
    assert (refused.status_code, refused.json()["code"]) == (403, "export_forbidden")
    assert refused.json()["message"] == "只有学籍管理员及以上角色可以导出名单和进度表"
    assert await ExportJob.count() == 1


async def test_a_large_export_is_made_by_the_worker_with_its_progress(
    app: Litestar,
    settings: Settings,
    client: httpx.AsyncClient,
    world: World,
    students: dict[str, list[dict[str, str]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exports, "INLINE_ROWS", 1)
    monkeypatch.setattr(exports_sources, "BATCH", 2)  # the rows read in two batches
    province = await as_role(client, world, Role.province_admin)
    made = (await export(client, province, format="xlsx")).json()
    assert (made["status"], made["download_url"]) == ("queued", None)
    early = await client.get(f"/exports/{made['id']}/file", headers=province)
    assert (early.status_code, early.json()["code"]) == (409, "export_not_ready")

    await run_jobs(app, settings)
    done = (await client.get(f"/exports/{made['id']}", headers=province)).json()
    assert (done["status"], done["row_count"], done["phase"]) == ("done", 3, "done")
    assert (done["done"], done["total"]) == (3, 3)
    header, _, rows, _ = read_xlsx(await download(client, province, done))
    assert (header["导出范围"], header["数据行数"], len(rows)) == ("浙江省", "3", 3)
    assert header["导出人"] == "province_admin（省级管理员）"
    [audited] = await audit_rows("export", made["id"])
    assert json.loads(audited["after"])["rows"] == 3
    assert audited["actor_id"] == world.accounts[Role.province_admin]


async def test_a_file_is_downloaded_for_24_hours_then_deleted(
    app: Litestar,
    client: httpx.AsyncClient,
    world: World,
    students: dict[str, list[dict[str, str]]],
) -> None:
    county = await as_role(client, world, Role.county_reviewer)
    made = (await export(client, county, format="csv")).json()
    expires = datetime.fromisoformat(made["expires_at"])
    assert timedelta(hours=23, minutes=58) < expires - datetime.now(UTC) <= timedelta(hours=24)
    row = await ExportJob.select().where(ExportJob.id == made["id"]).first()
    assert row is not None
    await app.state.storage.get(row["storage_key"])  # stored

    # The clock moves past the 24 hours: the row's time is set back, as a day passing would.
    await ExportJob.update({ExportJob.expires_at: datetime.now(UTC) - timedelta(seconds=1)}).where(
        ExportJob.id == made["id"]
    )
    late = await client.get(made["download_url"], headers=county)
    assert (late.status_code, late.json()["code"]) == (409, "export_expired")
    assert await audit_rows("download_refused", made["id"])

    assert await exports.sweep(app.state.storage, app.state.arq) == {"expired": 1, "requeued": 0}
    gone = await ExportJob.select().where(ExportJob.id == made["id"]).first()
    assert gone is not None
    assert (gone["status"], gone["storage_key"]) == ("expired", None)
    with pytest.raises(FileNotFoundError):
        await app.state.storage.get(row["storage_key"])


async def test_the_sweeper_takes_a_lost_export_again_and_gives_up_on_an_old_one(
    app: Litestar,
    settings: Settings,
    client: httpx.AsyncClient,
    world: World,
    students: dict[str, list[dict[str, str]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis lost the queued job (it restarted empty): the sweeper enqueues it again; one
    stuck for hours is failed with a message instead of being tried for ever."""
    monkeypatch.setattr(exports, "INLINE_ROWS", 1)
    county = await as_role(client, world, Role.county_reviewer)
    lost = (await export(client, county, format="csv")).json()
    old = (await export(client, county, format="csv")).json()
    await app.state.arq.flushdb()  # the queue is gone
    now = datetime.now(UTC)
    await ExportJob.update({ExportJob.created_at: now - timedelta(minutes=40)}).where(
        ExportJob.id == lost["id"]
    )
    await ExportJob.update({ExportJob.created_at: now - timedelta(hours=4)}).where(
        ExportJob.id == old["id"]
    )
    assert await exports.sweep(app.state.storage, app.state.arq) == {"expired": 0, "requeued": 1}
    await run_jobs(app, settings)
    done = (await client.get(f"/exports/{lost['id']}", headers=county)).json()
    assert (done["status"], done["row_count"]) == ("done", 2)
    failed = (await client.get(f"/exports/{old['id']}", headers=county)).json()
    assert failed["status"] == "failed"
    assert "超时" in failed["message"]


async def test_hostile_ids_and_text_answer_as_a_missing_row_or_a_validation_error(
    client: httpx.AsyncClient, world: World
) -> None:
    """An id past int4, a NUL byte in an approval's text, an unknown kind: 404 or 400 with
    the error's code, never a 500."""
    county = await as_role(client, world, Role.county_reviewer)
    big = 2147483648
    for url in (f"/exports/{big}", f"/exports/{big}/file", f"/export-approvals/{big}"):
        got = await client.get(url, headers=county)
        assert (got.status_code, got.json()["code"]) == (404, "not_found"), (url, got.text)
    for url in (f"/export-approvals/{big}/confirm", f"/export-approvals/{big}/revoke"):
        got = await client.post(url, headers=county)
        assert (got.status_code, got.json()["code"]) == (404, "not_found"), (url, got.text)
    for body in (
        {"kind": "student_records", "approval_id": big},
        {"kind": "progress", "campaign_id": big},
        {"kind": "problem_cases", "school_id": big},
        {"kind": "problem_cases", "region_code": "33\x0006"},
        {"kind": "everything"},
    ):
        got = await client.post("/exports", json=body, headers=county)
        assert got.status_code == 400, (body, got.text)
    nul = {
        "document_number": "西政\x00〔2026〕12号",
        "issuing_authority": "杭州市西湖区人民政府",
        "region_code": "330106",
    }
    got = await client.post("/export-approvals", json=nul, headers=county)
    assert (got.status_code, got.json()["code"]) == (400, "invalid_characters"), got.text


async def test_the_audited_digest_is_the_downloaded_files(
    client: httpx.AsyncClient, world: World, students: dict[str, list[dict[str, str]]]
) -> None:
    county = await as_role(client, world, Role.county_reviewer)
    made = (await export(client, county, format="xlsx")).json()
    data = await download(client, county, made)
    digest = hashlib.sha256(data).hexdigest()
    [row] = await audit_rows("export", made["id"])
    assert (made["sha256"], made["size"]) == (digest, len(data))
    assert json.loads(row["after"])["sha256"] == digest


async def test_numbers_written_loosely_in_free_text_are_masked_too(
    client: httpx.AsyncClient, world: World, students: dict[str, list[dict[str, str]]]
) -> None:
    """A description as a clerk types it: a phone with +86 or spaces, an ID number with a
    digit missing or one too many. None leaves whole; the tail of an ID number never shows."""
    id_number = students["A"][0]["id_number"]
    loose = {
        "+86 phone": ("电话+8613912345678", "13912345678"),
        "spaced phone": ("电话 139 1234 5678", "1234 5678"),
        "dashed phone": ("电话139-1234-5678", "1234-5678"),
        "short ID": (f"证件{id_number[:17]}", id_number[6:17]),
        "long ID": (f"证件{id_number}1", id_number[6:]),
    }
    county = await as_role(client, world, Role.county_reviewer)
    for name, (text, secret) in loose.items():
        await ProblemCase.update({ProblemCase.detail: text}).where(
            ProblemCase.region_code == "330106"
        )
        made = (await export(client, county, format="csv")).json()
        _, columns, rows = read_csv(await download(client, county, made))
        shown = {r[columns.index("问题描述")] for r in rows}
        assert shown, name
        assert all(secret not in s for s in shown), (name, shown)


async def test_the_header_names_the_school_a_list_was_narrowed_to(
    client: httpx.AsyncClient, world: World, students: dict[str, list[dict[str, str]]]
) -> None:
    """A county's list of one school says that school, not the whole county, is in it."""
    county = await as_role(client, world, Role.county_reviewer)
    made = (await export(client, county, format="csv", school_id=world.schools["A"])).json()
    header, _, rows = read_csv(await download(client, county, made))
    assert header["导出范围"] == made["scope_label"] == "浙江省杭州市西湖区学校A"
    assert len(rows) == 2

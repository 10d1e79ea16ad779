"""Importing registrars' spreadsheets through the API and a real arq worker."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from backend.accounts.audit_seal import Sealer
from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.records.tables import ImportJob, ProblemFlag, Student
from tests.factories import World, bearer, build_world, login, run_jobs
from tests.records.files import HEADERS, student_row, to_csv, to_xlsx

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def world(settings: Settings) -> World:
    return await build_world(settings)


@pytest.fixture
async def registrar(client: httpx.AsyncClient, world: World) -> dict[str, str]:
    return bearer(await login(client, world.phones[Role.registrar]))


async def do_import(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    headers: dict[str, str],
    content: bytes,
    filename: str = "学生.csv",
    dry_run: bool = False,
) -> dict[str, Any]:
    started = await client.post(
        "/imports",
        headers=headers,
        files={"file": (filename, content)},
        data={"dry_run": "true" if dry_run else "false"},
    )
    assert started.status_code == 202, started.text
    await run_jobs(app, settings)
    report = await client.get(f"/imports/{started.json()['id']}", headers=headers)
    assert report.status_code == 200
    return report.json()  # type: ignore[no-any-return]


GOOD = [student_row(i) for i in range(1, 11)]


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("学生.csv", to_csv(GOOD)),
        ("学生-bom.csv", b"\xef\xbb\xbf" + to_csv(GOOD)),
        ("学生-gbk.csv", to_csv(GOOD, encoding="gbk")),
        ("学生-gb18030.csv", to_csv(GOOD, encoding="gb18030")),
        ("学生.xlsx", to_xlsx(GOOD)),
    ],
)
async def test_a_good_file_imports_every_student(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    registrar: dict[str, str],
    filename: str,
    content: bytes,
) -> None:
    report = await do_import(client, app, settings, registrar, content, filename)

    assert report["status"] == "done", report
    assert report["summary"] == {
        "rows": 10,
        "created": 10,
        "updated": 0,
        "unchanged": 0,
        "flagged": 0,
        "same_school_duplicates": 0,
        "key_changes": 0,
        "key_change_requests_created": 0,
        "same_school_duplicate_rows": [],
        "key_change_rows": [],
    }
    assert report["done"] == report["total"] == 10
    students = await Student.select().where(Student.school == world.schools["A"])
    assert sorted(s["name"] for s in students) == [f"学生{i:03d}" for i in range(1, 11)]
    one = next(s for s in students if s["name"] == "学生001")
    assert one["registry_number"] == "G" + GOOD[0]["身份证件号"]
    fields = (
        one["fields"]
        if isinstance(one["fields"], dict)
        else __import__("json").loads(one["fields"])
    )
    assert fields["sex"] == "1"
    assert fields["ethnicity"] == "01"
    assert fields["guardian1_relation"] == "1"
    created = await AuditLog.count().where(
        (AuditLog.action == "create") & (AuditLog.entity == "student")
    )
    assert created == 10


async def test_english_headers_work_too(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, registrar: dict[str, str]
) -> None:
    from backend.records.importer import HEADERS as MAP

    english = [next(k for k, v in MAP.items() if v == MAP[h] and k.isascii()) for h in HEADERS]
    rows = [{e: r[h] for e, h in zip(english, HEADERS, strict=True)} for r in GOOD[:3]]
    report = await do_import(client, app, settings, registrar, to_csv(rows, english))
    assert report["summary"]["created"] == 3


async def test_dry_run_reports_and_changes_nothing(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, registrar: dict[str, str]
) -> None:
    audit_before = await AuditLog.count()

    report = await do_import(client, app, settings, registrar, to_csv(GOOD), dry_run=True)

    assert report["status"] == "done"
    assert report["dry_run"] is True
    assert report["summary"]["created"] == 10
    assert await Student.count() == 0
    assert await ProblemFlag.count() == 0
    # The job's creation and the dry run itself are audited; no student, no class.
    assert await AuditLog.count() == audit_before + 2


async def test_reimporting_the_same_file_changes_nothing(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, registrar: dict[str, str]
) -> None:
    await do_import(client, app, settings, registrar, to_csv(GOOD))
    snapshot = await Student.select(Student.id, Student.fields, Student.updated_at)
    student_audits = await AuditLog.count().where(AuditLog.entity == "student")

    again = await do_import(client, app, settings, registrar, to_csv(GOOD))

    assert again["summary"] == {
        "rows": 10,
        "created": 0,
        "updated": 0,
        "unchanged": 10,
        "flagged": 0,
        "same_school_duplicates": 0,
        "key_changes": 0,
        "key_change_requests_created": 0,
        "same_school_duplicate_rows": [],
        "key_change_rows": [],
    }
    assert await Student.select(Student.id, Student.fields, Student.updated_at) == snapshot
    assert await AuditLog.count().where(AuditLog.entity == "student") == student_audits


async def test_a_changed_row_updates_and_audits_the_difference(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, registrar: dict[str, str]
) -> None:
    await do_import(client, app, settings, registrar, to_csv(GOOD))
    changed = [*GOOD[:9], {**GOOD[9], "现住址": "浙江省杭州市西湖区新地址1号"}]

    report = await do_import(client, app, settings, registrar, to_csv(changed))

    assert report["summary"]["updated"] == 1
    assert report["summary"]["unchanged"] == 9
    update = await AuditLog.select().where(AuditLog.action == "update").first()
    assert update is not None
    # which field changed, readable; its values sealed (backend/accounts/audit_seal.py)
    assert set(json.loads(update["after"])) == {"current_address"}
    assert "新地址" not in update["after"]
    sealer = Sealer.of()
    assert "新地址" in sealer.reveal(json.loads(update["after"]))["current_address"]
    assert "文三路10号" in sealer.reveal(json.loads(update["before"]))["current_address"]


async def test_invalid_ids_are_imported_and_flagged(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, registrar: dict[str, str]
) -> None:
    good_id = GOOD[0]["身份证件号"]
    bad_checksum = good_id[:-1] + ("0" if good_id[-1] != "0" else "1")
    rows = [
        {**GOOD[0], "身份证件号": bad_checksum},
        {**GOOD[1], "出生日期": "2010-01-01"},
        *GOOD[2:],
    ]

    report = await do_import(client, app, settings, registrar, to_csv(rows))

    assert report["status"] == "done"
    assert report["summary"]["created"] == 10
    assert report["summary"]["flagged"] == 2
    kinds = {r["kind"] for r in await ProblemFlag.select(ProblemFlag.kind)}
    assert kinds == {"id_invalid", "id_birth_mismatch"}


async def test_same_id_at_two_schools_is_flagged_on_both(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    province = bearer(await login(client, world.phones[Role.province_admin]))
    codes = {"A": "2133010600", "B": "2133010801"}
    rows = [{**GOOD[0], "学校标识码": codes["A"]}, {**GOOD[0], "学校标识码": codes["B"]}]

    report = await do_import(
        client, app, settings, province, to_csv(rows, [*HEADERS, "学校标识码"])
    )

    assert report["status"] == "done", report
    flagged = await ProblemFlag.select(ProblemFlag.student, ProblemFlag.kind)
    assert {f["kind"] for f in flagged} == {"duplicate_id"}
    assert len(flagged) == 2


async def enrol_at_school_b(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World, row: dict[str, Any]
) -> None:
    province = bearer(await login(client, world.phones[Role.province_admin]))
    rows = [{**row, "学校标识码": "2133010801"}]
    report = await do_import(
        client, app, settings, province, to_csv(rows, [*HEADERS, "学校标识码"])
    )
    assert report["summary"]["created"] == 1


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    return {k: report[k] for k in ("status", "error_count", "errors", "summary", "total")}


async def test_a_dry_run_says_nothing_about_other_schools_the_real_import_flags_it(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    registrar: dict[str, str],
) -> None:
    # GOOD[0]'s ID number is enrolled at school B; GOOD[1]'s nowhere.
    await enrol_at_school_b(client, app, settings, world, GOOD[0])
    enrolled_elsewhere = await do_import(
        client, app, settings, registrar, to_csv([GOOD[0]]), dry_run=True
    )
    enrolled_nowhere = await do_import(
        client, app, settings, registrar, to_csv([GOOD[1]]), dry_run=True
    )

    assert enrolled_elsewhere["status"] == "done"
    assert comparable(enrolled_elsewhere) == comparable(enrolled_nowhere)
    assert enrolled_elsewhere["summary"]["flagged"] == 0
    assert await ProblemFlag.count() == 0

    real = await do_import(client, app, settings, registrar, to_csv([GOOD[0]]))

    assert real["summary"]["flagged"] >= 1
    flags = await ProblemFlag.select(ProblemFlag.kind)
    assert [f["kind"] for f in flags] == ["duplicate_id", "duplicate_id"]


async def test_a_dry_run_still_reports_the_schools_own_problems(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    registrar: dict[str, str],
) -> None:
    good_id = GOOD[0]["身份证件号"]
    bad_checksum = good_id[:-1] + ("0" if good_id[-1] != "0" else "1")
    rows = [{**GOOD[0], "身份证件号": bad_checksum}, *GOOD[1:4]]

    report = await do_import(client, app, settings, registrar, to_csv(rows), dry_run=True)
    assert report["summary"]["flagged"] == 1
    invalid = await do_import(
        client,
        app,
        settings,
        registrar,
        to_csv([*rows, {**GOOD[5], "民族": "火星族"}]),
        dry_run=True,
    )
    assert invalid["status"] == "failed"
    assert [(e["row"], e["column"]) for e in invalid["errors"]] == [(6, "民族")]


async def test_every_dry_run_is_audited_with_the_file_hash_and_no_personal_data(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    registrar: dict[str, str],
) -> None:
    content = to_csv(GOOD[:3])
    await do_import(client, app, settings, registrar, content, dry_run=True)

    rows = await AuditLog.select().where(AuditLog.action == "dry_run")
    assert len(rows) == 1
    assert rows[0]["actor_id"] == world.accounts[Role.registrar]
    after = rows[0]["after"] if isinstance(rows[0]["after"], dict) else json.loads(rows[0]["after"])
    assert after["sha256"] == hashlib.sha256(content).hexdigest()
    assert after["rows"] == 3
    text = json.dumps(after, ensure_ascii=False)
    for row in GOOD[:3]:
        assert row["身份证件号"] not in text
        assert row["姓名"] not in text
        assert row["联系电话"] not in text


async def test_dry_runs_are_throttled_per_account(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    registrar: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(app.state, "settings", settings.with_(import_dry_runs_per_hour=2))

    async def start(n: int, dry_run: bool = True) -> httpx.Response:
        return await client.post(
            "/imports",
            headers=registrar,
            files={"file": ("学生.csv", to_csv([GOOD[n]]))},
            data={"dry_run": "true" if dry_run else "false"},
        )

    assert [(await start(n)).status_code for n in range(2)] == [202, 202]
    over = await start(2)

    assert over.status_code == 429
    assert over.json()["code"] == "too_many_dry_runs"
    assert "每小时" in over.json()["message"]
    assert 0 < int(over.headers["retry-after"]) <= 3600
    assert await ImportJob.count() == 2
    assert (await start(3, dry_run=False)).status_code == 202  # a real import is not a probe


def xlsx_with_formula() -> bytes:
    import io

    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(to_xlsx(GOOD[:2])))
    sheet = book.active
    assert sheet is not None
    sheet["A3"] = '=CONCAT("学生","002")'
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("filename", "content", "expect"),
    [
        ("乱码.csv", bytes(range(128, 256)) * 20, "无法识别文件编码"),
        ("空.csv", b"", "文件是空的"),
        ("只有表头.csv", to_csv([]), "只有表头"),
        ("缺列.csv", to_csv(GOOD, [h for h in HEADERS if h != "出生日期"]), "缺少必填列：出生日期"),
        ("旧版.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512, "不支持旧版 .xls"),
        ("坏的.xlsx", b"PK\x03\x04" + b"\x00" * 100, "无法读取该 Excel 文件"),
    ],
)
async def test_bad_files_fail_with_a_clear_message_and_change_nothing(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    registrar: dict[str, str],
    filename: str,
    content: bytes,
    expect: str,
) -> None:
    started = await client.post("/imports", headers=registrar, files={"file": (filename, content)})
    if not content:
        assert started.status_code == 400
        assert started.json()["message"] == "文件是空的"
        return
    assert started.status_code == 202
    await run_jobs(app, settings)
    report = (await client.get(f"/imports/{started.json()['id']}", headers=registrar)).json()

    assert report["status"] == "failed"
    assert expect in report["errors"][0]["message"]
    assert await Student.count() == 0


async def test_bad_rows_are_each_reported_with_row_and_column(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, registrar: dict[str, str]
) -> None:
    rows = [
        GOOD[0],
        {**GOOD[1], "出生日期": "去年"},
        {**GOOD[2], "民族": "火星族"},
        {**GOOD[3], "联系电话": "123"},
        GOOD[0],  # the same student twice
        {**GOOD[5], "年级": "十"},
    ]

    report = await do_import(client, app, settings, registrar, to_csv(rows))

    assert report["status"] == "failed"
    found = {(e["row"], e["column"]) for e in report["errors"]}
    assert found == {(3, "出生日期"), (4, "民族"), (5, "联系电话"), (6, "姓名"), (7, "年级")}
    assert all(e["message"] for e in report["errors"])
    assert await Student.count() == 0  # all or nothing


async def test_formulas_in_xlsx_cells_are_refused_by_cell(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, registrar: dict[str, str]
) -> None:
    report = await do_import(client, app, settings, registrar, xlsx_with_formula(), "公式.xlsx")
    assert report["status"] == "failed"
    assert report["errors"][0]["row"] == 3
    assert "公式" in report["errors"][0]["message"]


async def test_dates_in_five_formats_and_excel_dates_are_read(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, registrar: dict[str, str]
) -> None:
    formats = ["2018-02-02", "2018/2/2", "2018.02.02", "2018年2月2日", "20180202"]
    rows = [{**GOOD[i], "出生日期": f, "身份证件号": ""} for i, f in enumerate(formats)]
    rows.append({**GOOD[6], "出生日期": datetime(2018, 2, 2), "身份证件号": ""})

    report = await do_import(client, app, settings, registrar, to_xlsx(rows), "日期.xlsx")

    assert report["status"] == "done", report["errors"]
    births = {
        __import__("json").loads(s["fields"])["birth_date"]
        if isinstance(s["fields"], str)
        else s["fields"]["birth_date"]
        for s in await Student.select()
    }
    assert births == {date(2018, 2, 2).isoformat()}


async def test_a_file_over_the_limit_is_refused_with_a_chinese_message(
    client: httpx.AsyncClient, registrar: dict[str, str]
) -> None:
    huge = b"x" * (100 * 1024 * 1024)
    response = await client.post("/imports", headers=registrar, files={"file": ("大.csv", huge)})
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"
    assert response.json()["message"] == "文件不能超过 20 MB，请拆分后再导入"
    assert await ImportJob.count() == 0


async def test_registrar_cannot_import_into_another_school(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, registrar: dict[str, str]
) -> None:
    rows = [{**GOOD[0], "学校标识码": "3201020003"}]
    report = await do_import(
        client, app, settings, registrar, to_csv(rows, [*HEADERS, "学校标识码"])
    )
    assert report["status"] == "failed"
    assert "不在您的管辖范围内" in report["errors"][0]["message"]


async def test_teachers_cannot_import(client: httpx.AsyncClient, world: World) -> None:
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    response = await client.post("/imports", headers=teacher, files={"file": ("a.csv", b"x")})
    assert response.status_code == 403


def run_cli(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120
    )


async def test_the_cli_imports_the_same_way(world: World, tmp_path: Path) -> None:
    path = tmp_path / "学生.csv"
    path.write_bytes(to_csv(GOOD[:4]))
    command = [
        sys.executable,
        "-m",
        "backend",
        "import",
        str(path),
        "--account",
        world.phones[Role.registrar],
    ]

    dry = run_cli([*command, "--dry-run"])
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert await Student.count() == 0
    real = run_cli(command)
    assert real.returncode == 0, real.stdout + real.stderr
    assert '"created": 4' in real.stdout
    assert await Student.count() == 4


async def test_an_id_number_another_student_of_the_school_holds_is_flagged_and_reported(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, registrar: dict[str, str]
) -> None:
    headers = [*HEADERS, "学籍号"]
    enrolled = [{**row, "学籍号": "G" + row["身份证件号"]} for row in GOOD[:3]]
    assert (await do_import(client, app, settings, registrar, to_csv(enrolled, headers)))[
        "summary"
    ]["created"] == 3
    held = GOOD[0]["身份证件号"]
    # Row 3 of the new file is another child typed with GOOD[0]'s ID number.
    new_file = to_csv(
        [
            {**GOOD[5], "学籍号": "G" + GOOD[5]["身份证件号"]},
            {**GOOD[0], "姓名": "王小明", "学籍号": "J21330106201801010001"},
        ],
        headers,
    )
    expected = [{"row": 3, "id_number": held[:6] + "*" * 12, "records_in_school": 2}]

    dry = await do_import(client, app, settings, registrar, new_file, dry_run=True)

    assert dry["status"] == "done", dry
    assert dry["summary"]["same_school_duplicates"] == 1
    assert dry["summary"]["same_school_duplicate_rows"] == expected
    assert held not in json.dumps(dry, ensure_ascii=False)
    assert await ProblemFlag.count() == 0

    real = await do_import(client, app, settings, registrar, new_file)

    assert real["status"] == "done", real
    assert real["summary"]["created"] == 2
    assert real["summary"]["same_school_duplicates"] == 1
    assert real["summary"]["same_school_duplicate_rows"] == expected
    assert held not in json.dumps(real, ensure_ascii=False)
    holders = await Student.select(Student.id).where(Student.id_number == held)
    flags = await ProblemFlag.select(ProblemFlag.student, ProblemFlag.kind, ProblemFlag.detail)
    assert sorted((f["student"], f["kind"]) for f in flags) == sorted(
        (h["id"], "duplicate_id_in_school") for h in holders
    )
    assert len(holders) == 2
    assert all("本校" in f["detail"] for f in flags)
    # The registrar finds them among the school's problem records.
    listed = await client.get("/students?problem=duplicate_id_in_school", headers=registrar)
    assert listed.status_code == 200, listed.text
    assert sorted(s["id"] for s in listed.json()["items"]) == sorted(h["id"] for h in holders)


async def test_two_rows_of_one_file_with_one_id_number_are_both_reported(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, registrar: dict[str, str]
) -> None:
    headers = [*HEADERS, "学籍号"]
    rows = [
        {**GOOD[0], "学籍号": "G" + GOOD[0]["身份证件号"]},
        {**GOOD[1], "学籍号": "G" + GOOD[1]["身份证件号"]},
        {**GOOD[0], "姓名": "王小明", "学籍号": "J21330106201801010001"},
    ]

    report = await do_import(client, app, settings, registrar, to_csv(rows, headers))

    assert report["summary"]["same_school_duplicates"] == 2
    assert [r["row"] for r in report["summary"]["same_school_duplicate_rows"]] == [2, 4]
    assert report["summary"]["flagged"] == 2


async def test_the_same_id_at_two_schools_is_not_a_same_school_duplicate(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    province = bearer(await login(client, world.phones[Role.province_admin]))
    rows = [{**GOOD[0], "学校标识码": "2133010600"}, {**GOOD[0], "学校标识码": "2133010801"}]
    report = await do_import(
        client, app, settings, province, to_csv(rows, [*HEADERS, "学校标识码"])
    )
    assert report["summary"]["same_school_duplicates"] == 0
    assert report["summary"]["same_school_duplicate_rows"] == []


async def test_dry_runs_hold_their_limit_under_concurrent_requests(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    registrar: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(app.state, "settings", settings.with_(import_dry_runs_per_hour=2))

    answers = await asyncio.gather(
        *(
            client.post(
                "/imports",
                headers=registrar,
                files={"file": ("学生.csv", to_csv([GOOD[n]]))},
                data={"dry_run": "true"},
            )
            for n in range(6)
        )
    )

    assert sorted(a.status_code for a in answers) == [202, 202, 429, 429, 429, 429]
    assert {a.json()["code"] for a in answers if a.status_code == 429} == {"too_many_dry_runs"}
    assert await ImportJob.count() == 2

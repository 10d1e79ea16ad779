"""The national system's list of problem records (CSV and XLSX), imported by an authority:
rows matched, not matched and wrong reported in Chinese; importing it again changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from backend.accounts.roles import Role
from backend.config import Settings
from backend.records.problem_tables import ProblemCase
from backend.records.tables import Student
from tests.records.files import to_csv, to_xlsx
from tests.records.problem_world import ProblemWorld, add_student, build, fields_for, tokens

HEADERS = ["学校标识码", "学籍号", "姓名", "身份证件号", "问题类型", "问题描述"]


@pytest.fixture
async def pw(settings: Settings) -> ProblemWorld:
    return await build(settings)


async def rows(pw: ProblemWorld) -> list[dict[str, Any]]:
    students = [await add_student(pw, fields_for(i)) for i in range(1, 4)]
    records = await Student.select().where(Student.id.is_in(students)).order_by(Student.id)
    a = "2133010600"
    return [
        {"学校标识码": a, "学籍号": records[0]["registry_number"], "问题类型": "身份证号不存在"},
        {
            "学校标识码": a,
            "身份证件号": records[1]["id_number"],
            "姓名": records[1]["name"],
            "问题类型": "姓名与身份证号不匹配",
            "问题描述": "公安比对：姓名不一致",
        },
        {"学校标识码": a, "学籍号": records[2]["registry_number"], "问题类型": "重复"},
        # not matched: no such student at the school
        {"学校标识码": a, "学籍号": "G330106201701019999", "问题类型": "重复"},
        # a school outside the caller's region (Jiangsu)
        {"学校标识码": "2132010203", "学籍号": "G1", "问题类型": "重复"},
        # wrong rows
        {"学校标识码": a, "学籍号": records[0]["registry_number"], "问题类型": "其他问题"},
        {"学校标识码": a, "问题类型": "重复"},
        {"学籍号": records[0]["registry_number"], "问题类型": "重复"},
    ]


def post(client: httpx.AsyncClient, name: str, content: bytes, headers: dict[str, str]) -> Any:
    return client.post("/problem-lists", files={"file": (name, content)}, headers=headers)


@pytest.mark.parametrize("form", ["csv", "xlsx"])
async def test_the_national_list_opens_cases_and_reports_the_rest(
    client: httpx.AsyncClient, pw: ProblemWorld, form: str
) -> None:
    listed = await rows(pw)
    content = to_csv(listed, HEADERS) if form == "csv" else to_xlsx(listed, HEADERS)
    county = await tokens(client, pw, Role.county_reviewer)
    done = await post(client, f"list.{form}", content, county)
    assert done.status_code == 200, done.text
    report = done.json()
    assert report["total_rows"] == 8
    assert (report["matched"], report["created"], report["not_matched"]) == (3, 3, 2)
    by_row = {e["row"]: e for e in report["errors"]}
    assert sorted(by_row) == [5, 6, 7, 8, 9]
    assert "未找到" in by_row[5]["message"]
    assert "管辖范围" in by_row[6]["message"]
    assert by_row[7]["column"] == "问题类型"
    assert "身份证号不存在" in by_row[7]["message"]
    assert "至少填一项" in by_row[8]["message"]
    assert "学校标识码" in by_row[9]["message"]
    kinds = sorted(c["kind"] for c in await ProblemCase.select(ProblemCase.kind))
    assert kinds == ["id_not_found", "name_id_mismatch", "national_duplicate"]

    registrar = await tokens(client, pw, Role.registrar)
    seen = (
        await client.get("/problem-cases", params={"open_only": True}, headers=registrar)
    ).json()
    assert seen["total"] == 3
    mismatch = next(c for c in seen["items"] if c["kind"] == "name_id_mismatch")
    assert mismatch["kind_label"] == "姓名与身份证号不匹配"
    assert mismatch["detail"] == "公安比对：姓名不一致"
    assert mismatch["source"] == "national"

    again = (await post(client, f"list.{form}", content, county)).json()
    assert (again["created"], again["unchanged"], again["matched"]) == (0, 3, 3)
    assert await ProblemCase.count() == 3


async def test_only_authorities_import_for_their_own_region(
    client: httpx.AsyncClient, pw: ProblemWorld
) -> None:
    listed = await rows(pw)
    content = to_csv(listed, HEADERS)
    registrar = await tokens(client, pw, Role.registrar)
    refused = await post(client, "list.csv", content, registrar)
    assert refused.status_code == 403
    assert refused.json()["code"] == "authorities_only"
    province = await tokens(client, pw, Role.province_admin)
    assert (await post(client, "list.csv", content, province)).json()["created"] == 3


async def test_a_list_that_cannot_be_read_is_refused_whole(
    client: httpx.AsyncClient, pw: ProblemWorld
) -> None:
    county = await tokens(client, pw, Role.county_reviewer)
    missing = await post(client, "list.csv", "姓名,学籍号\n张三,G1\n".encode(), county)
    assert missing.status_code == 400
    assert missing.json()["code"] == "missing_columns"
    assert "问题类型" in missing.json()["message"]
    empty = await post(client, "list.csv", b"", county)
    assert empty.status_code == 400
    assert empty.json()["code"] == "empty_file"


async def test_an_id_number_or_phone_typed_into_a_description_is_masked_in_the_list(
    client: httpx.AsyncClient, pw: ProblemWorld
) -> None:
    """A clerk's description may carry the numbers themselves: the list shows them by the one
    masking rule, as the export does."""
    student = await add_student(pw, fields_for(1))
    record = await Student.select().where(Student.id == student).first()
    detail = f"与 {record['id_number']} 重复，联系 139 1234 5678"
    listed = [
        {
            "学校标识码": "2133010600",
            "学籍号": record["registry_number"],
            "问题类型": "重复",
            "问题描述": detail,
        }
    ]
    county = await tokens(client, pw, Role.county_reviewer)
    assert (await post(client, "list.csv", to_csv(listed, HEADERS), county)).status_code == 200

    registrar = await tokens(client, pw, Role.registrar)
    seen = (await client.get("/problem-cases", headers=registrar)).json()
    [case] = seen["items"]
    assert record["id_number"] not in case["detail"]
    assert "13912345678" not in case["detail"]
    assert "139 1234 5678" not in case["detail"]
    assert case["detail"].startswith("与 " + record["id_number"][:6])

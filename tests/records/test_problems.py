"""Problem records (问题学籍) through the API with real role accounts: every kind, local and
national, handled by every action it takes and reviewed by the county; evidence refused when
incomplete; rejection and send-back; scope."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.records.review_tables import ChangeRequest, RequestSource
from backend.records.tables import ProblemFlag, Student
from tests.records.files import to_csv
from tests.records.problem_world import (
    ID_CARD,
    PROOF_AND_REGISTER,
    RECEIPT,
    ProblemWorld,
    act,
    add_student,
    build,
    case_of,
    current_step,
    decide,
    fields_for,
    tokens,
    valid_id,
)

LIST_HEADERS = ["学校标识码", "学籍号", "姓名", "身份证件号", "问题类型", "问题描述"]
NATIONAL_LABEL = {
    "id_not_found": "身份证号不存在",
    "name_id_mismatch": "姓名与身份证号不匹配",
    "national_duplicate": "重复",
}


@pytest.fixture
async def pw(settings: Settings) -> ProblemWorld:
    return await build(settings)


async def make_problem(
    client: httpx.AsyncClient, pw: ProblemWorld, kind: str, i: int
) -> tuple[int, dict[str, str]]:
    """A student of school A with a problem of `kind`; its id and its fields."""
    values = fields_for(i)
    if kind == "id_invalid":
        number = values["id_number"]
        values["id_number"] = number[:-1] + ("0" if number[-1] != "0" else "1")
    elif kind == "id_birth_mismatch":
        values["birth_date"] = "2016-06-06"
    elif kind == "id_sex_mismatch":
        values["sex"] = "2" if values["sex"] == "1" else "1"
    elif kind == "duplicate_id":
        await add_student(pw, fields_for(i, name="另一校学生"), school="A3")
    elif kind == "duplicate_id_in_school":
        await add_student(pw, fields_for(i, name="重复录入学生"))
    student = await add_student(pw, values)
    if kind in NATIONAL_LABEL:
        row = await Student.select().where(Student.id == student).first()
        assert row is not None
        listed = to_csv(
            [
                {
                    "学校标识码": "2133010600",
                    "学籍号": row["registry_number"],
                    "姓名": values["name"],
                    "身份证件号": values["id_number"],
                    "问题类型": NATIONAL_LABEL[kind],
                }
            ],
            LIST_HEADERS,
        )
        county = await tokens(client, pw, Role.county_reviewer)
        done = await client.post(
            "/problem-lists", files={"file": ("list.csv", listed, "text/csv")}, headers=county
        )
        assert done.status_code == 200, done.text
        assert done.json()["created"] == 1, done.json()
    return student, values


def fix_for(kind: str, values: dict[str, str], i: int) -> dict[str, str]:
    """The key-data change that puts the record right."""
    if kind == "id_birth_mismatch":
        return {"field_code": "birth_date", "new_value": fields_for(i)["birth_date"]}
    if kind == "id_sex_mismatch":
        return {"field_code": "sex", "new_value": fields_for(i)["sex"]}
    if kind == "name_id_mismatch":
        return {"field_code": "name", "new_value": values["name"] + "华"}
    return {"field_code": "id_number", "new_value": valid_id(values, 90 + i % 9)}


LOCAL = ["id_invalid", "id_birth_mismatch", "id_sex_mismatch", "duplicate_id"]
NATIONAL = list(NATIONAL_LABEL)
CASES = [
    (kind, action)
    for kind in [*LOCAL, "duplicate_id_in_school", *NATIONAL]
    for action in ("delete", "corroborate", "change")
    if not (kind == "duplicate_id_in_school" and action == "corroborate")
]
EVIDENCE = [PROOF_AND_REGISTER, ID_CARD, RECEIPT]


@pytest.mark.parametrize(("kind", "action"), CASES)
async def test_each_kind_is_handled_by_each_action_with_the_countys_review(
    client: httpx.AsyncClient, pw: ProblemWorld, kind: str, action: str
) -> None:
    i = CASES.index((kind, action)) + 1
    student, values = await make_problem(client, pw, kind, i)
    registrar = await tokens(client, pw, Role.registrar)
    county = await tokens(client, pw, Role.county_reviewer)
    case = await case_of(client, registrar, student, kind)
    assert case["state"] == "open"
    assert case["source"] == ("national" if kind in NATIONAL else "local")
    assert action in case["allowed_actions"]
    assert "*" in (case["id_number"] or "*")  # masked
    assert case["due_on"] is not None

    if action == "delete":
        done = await act(client, registrar, case["id"], "delete", note="该生不在本校就读")
    elif action == "corroborate":
        evidence = EVIDENCE[i % 3]
        done = await act(client, registrar, case["id"], "corroborate", evidence, note="学籍无误")
    else:
        evidence = ID_CARD if i % 2 else {**ID_CARD, **PROOF_AND_REGISTER}
        done = await act(
            client, registrar, case["id"], "change", evidence, **fix_for(kind, values, i)
        )
    assert done.status_code == 201, done.text
    acted = done.json()
    assert acted["state"] == "in_review"
    assert acted["allowed_actions"] == []

    # the county (which administers school A) reviews it, through the engine
    step = current_step(acted)
    teacher = await tokens(client, pw, Role.teacher)
    refused = await decide(client, teacher, step, "approve")
    assert refused.status_code in (403, 404), refused.text
    approved = await decide(client, county, step, "approve")
    assert approved.status_code == 200, approved.text

    after = await client.get(f"/problem-cases/{case['id']}", headers=registrar)
    assert after.status_code == 200, after.text
    row = await Student.select().where(Student.id == student).first()
    assert row is not None
    if action == "delete":
        assert after.json()["state"] == "resolved"
        assert row["status"] == "removed"
        roll = await client.get(
            "/students", params={"school_id": pw.world.schools["A"]}, headers=registrar
        )
        assert student not in [s["id"] for s in roll.json()["items"]]
        kept = await client.get(f"/students/{student}", headers=registrar)
        assert kept.status_code == 200  # kept for history
        assert kept.json()["status"] == "removed"
    elif action == "corroborate":
        assert after.json()["state"] == "corroborated"
        assert row["status"] == "enrolled"
    else:
        assert after.json()["state"] == "resolved", after.json()
        request = (
            await ChangeRequest.select()
            .where(ChangeRequest.id == after.json()["actions"][-1]["change_request_id"])
            .first()
        )
        assert request is not None
        assert request["source"] == RequestSource.problem.value
        assert request["state"] == "applied"
        flags = await ProblemFlag.select(ProblemFlag.kind).where(ProblemFlag.student == student)
        assert kind not in {f["kind"] for f in flags}
    assert after.json()["actions"][-1]["state"] == "approved"


async def test_corroboration_needs_a_complete_set_of_evidence(
    client: httpx.AsyncClient, pw: ProblemWorld
) -> None:
    student, _ = await make_problem(client, pw, "id_birth_mismatch", 1)
    registrar = await tokens(client, pw, Role.registrar)
    case = await case_of(client, registrar, student, "id_birth_mismatch")
    for incomplete in ({}, {"enrolment_proof": 1}, {"household_register": 2}, {"other": 1}):
        refused = await act(client, registrar, case["id"], "corroborate", incomplete)
        assert refused.status_code == 400, refused.text
        assert refused.json()["code"] == "evidence_incomplete"
        assert "在校证明" in refused.json()["message"]
    # a key-data change needs the ID card whatever else comes with it
    change = await act(
        client,
        registrar,
        case["id"],
        "change",
        RECEIPT,
        field_code="birth_date",
        new_value=fields_for(1)["birth_date"],
    )
    assert change.status_code == 400, change.text
    assert change.json()["code"] == "evidence_required"
    assert (await client.get(f"/problem-cases/{case['id']}", headers=registrar)).json()[
        "state"
    ] == "open"
    assert await ChangeRequest.count() == 0
    deleted = await act(client, registrar, case["id"], "delete")
    assert deleted.status_code == 400
    assert deleted.json()["code"] == "note_required"
    in_school = await make_problem(client, pw, "duplicate_id_in_school", 2)
    dup = await case_of(client, registrar, in_school[0], "duplicate_id_in_school")
    refused = await act(client, registrar, dup["id"], "corroborate", ID_CARD)
    assert refused.status_code == 400
    assert refused.json()["code"] == "action_not_allowed"


async def test_a_rejected_action_reopens_the_case_and_a_sent_back_one_is_amended(
    client: httpx.AsyncClient, pw: ProblemWorld
) -> None:
    student, _ = await make_problem(client, pw, "id_invalid", 3)
    registrar = await tokens(client, pw, Role.registrar)
    county = await tokens(client, pw, Role.county_reviewer)
    case = await case_of(client, registrar, student, "id_invalid")
    done = await act(client, registrar, case["id"], "corroborate", RECEIPT)
    again = await act(client, registrar, case["id"], "corroborate", RECEIPT)
    assert again.status_code == 409
    assert again.json()["code"] == "case_not_open"

    rejected = await decide(client, county, current_step(done.json()), "reject", "回执不清晰")
    assert rejected.status_code == 200, rejected.text
    now = (await client.get(f"/problem-cases/{case['id']}", headers=registrar)).json()
    assert now["state"] == "open"
    assert now["reason"] == "回执不清晰"
    assert now["actions"][-1]["state"] == "rejected"

    second = await act(client, registrar, case["id"], "corroborate", ID_CARD)
    assert second.status_code == 201, second.text
    sent = await decide(client, county, current_step(second.json()), "send_back", "请补充户口簿")
    assert sent.status_code == 200
    now = (await client.get(f"/problem-cases/{case['id']}", headers=registrar)).json()
    assert now["state"] == "sent_back"
    assert now["state_label"] == "退回补充"
    assert now["reason"] == "请补充户口簿"

    third = await act(client, registrar, case["id"], "corroborate", PROOF_AND_REGISTER)
    assert third.status_code == 201, third.text
    assert [a["state"] for a in third.json()["actions"]] == ["rejected", "sent_back", "in_review"]
    ok = await decide(client, county, current_step(third.json()), "approve")
    assert ok.status_code == 200
    now = (await client.get(f"/problem-cases/{case['id']}", headers=registrar)).json()
    assert now["state"] == "corroborated"


async def test_a_rejected_change_reopens_the_case_with_the_reason(
    client: httpx.AsyncClient, pw: ProblemWorld
) -> None:
    student, values = await make_problem(client, pw, "id_not_found", 4)
    registrar = await tokens(client, pw, Role.registrar)
    county = await tokens(client, pw, Role.county_reviewer)
    case = await case_of(client, registrar, student, "id_not_found")
    done = await act(
        client, registrar, case["id"], "change", ID_CARD, **fix_for("id_not_found", values, 4)
    )
    assert done.status_code == 201, done.text
    rejected = await decide(
        client, county, current_step(done.json()), "reject", "证件号码与照片不符"
    )
    assert rejected.status_code == 200
    now = (await client.get(f"/problem-cases/{case['id']}", headers=registrar)).json()
    assert now["state"] == "open"
    assert now["reason"] == "证件号码与照片不符"
    assert now["actions"][-1]["state"] == "rejected"


async def test_another_schools_case_is_not_found_and_only_the_registrar_acts(
    client: httpx.AsyncClient, pw: ProblemWorld
) -> None:
    student, _ = await make_problem(client, pw, "duplicate_id", 5)
    registrar = await tokens(client, pw, Role.registrar)
    other = await tokens(client, pw, "a3_registrar")
    case = await case_of(client, registrar, student, "duplicate_id")
    audits = await AuditLog.count()
    hidden = await client.get(f"/problem-cases/{case['id']}", headers=other)
    assert hidden.status_code == 404
    assert await AuditLog.count() > audits  # the attempt is audited
    acting = await act(client, other, case["id"], "corroborate", ID_CARD)
    assert acting.status_code == 404
    listed = await client.get("/problem-cases", headers=other)
    assert case["id"] not in [c["id"] for c in listed.json()["items"]]
    leader = await tokens(client, pw, Role.school_leader)
    refused = await act(client, leader, case["id"], "corroborate", ID_CARD)
    assert refused.status_code == 403
    assert refused.json()["code"] == "problem_registrar_only"
    parent = await tokens(client, pw, Role.parent)
    assert (await client.get("/problem-cases", headers=parent)).status_code == 403


def _kinds(counts: dict[str, Any]) -> dict[str, int]:
    return {k["kind"]: k["count"] for k in counts["kinds"]}


async def test_open_cases_are_counted_per_school_and_per_region(
    client: httpx.AsyncClient, pw: ProblemWorld
) -> None:
    await make_problem(client, pw, "id_invalid", 6)
    await make_problem(client, pw, "id_sex_mismatch", 7)
    await make_problem(client, pw, "duplicate_id", 8)  # one case at A, one at A3
    corroborated, _ = await make_problem(client, pw, "id_birth_mismatch", 9)
    registrar = await tokens(client, pw, Role.registrar)
    county = await tokens(client, pw, Role.county_reviewer)
    case = await case_of(client, registrar, corroborated, "id_birth_mismatch")
    done = await act(client, registrar, case["id"], "corroborate", ID_CARD)
    await decide(client, county, current_step(done.json()), "approve")  # no longer open

    school = (await client.get("/problem-cases/counts", headers=registrar)).json()
    assert school["school_id"] == pw.world.schools["A"]
    assert _kinds(school) == {"id_invalid": 1, "id_sex_mismatch": 1, "duplicate_id": 1}
    assert school["total"] == 3

    by_county = (await client.get("/problem-cases/counts", headers=county)).json()
    assert by_county["region_code"] == "330106"
    assert by_county["groups_are"] == "school"
    groups = {g["name"]: g["total"] for g in by_county["groups"]}
    assert groups == {"学校A": 3, "学校A3": 1}
    assert _kinds(by_county)["duplicate_id"] == 2

    city = await tokens(client, pw, Role.city_admin)
    by_city = (await client.get("/problem-cases/counts", headers=city)).json()
    assert by_city["groups_are"] == "region"
    assert {g["key"]: g["total"] for g in by_city["groups"]} == {"330106": 4}
    assert by_city["groups"][0]["name"] == "西湖区"
    province = await tokens(client, pw, Role.province_admin)
    by_province = (await client.get("/problem-cases/counts", headers=province)).json()
    assert {g["key"]: g["total"] for g in by_province["groups"]} == {"330100": 4}
    drill = await client.get(
        "/problem-cases/counts", params={"region_code": "330106"}, headers=province
    )
    assert drill.json()["groups_are"] == "school"
    assert drill.json()["total"] == 4
    outside = await client.get(
        "/problem-cases/counts", params={"region_code": "320102"}, headers=province
    )
    assert outside.status_code == 404
    elsewhere = await client.get(
        "/problem-cases/counts", params={"school_id": pw.world.schools["D"]}, headers=county
    )
    assert elsewhere.status_code == 404
    a3 = await client.get("/problem-cases/counts", params={"school_id": pw.a3}, headers=county)
    assert a3.json()["total"] == 1


async def test_an_action_waits_in_the_reviewers_queue_with_what_it_is_about(
    client: httpx.AsyncClient, pw: ProblemWorld
) -> None:
    student, _ = await make_problem(client, pw, "id_invalid", 5)
    registrar = await tokens(client, pw, Role.registrar)
    county = await tokens(client, pw, Role.county_reviewer)
    case = await case_of(client, registrar, student, "id_invalid")
    done = await act(client, registrar, case["id"], "corroborate", ID_CARD)
    assert done.status_code == 201, done.text

    queue = await client.get(
        "/review-steps", params={"subject_kind": "problem_action"}, headers=county
    )
    assert queue.status_code == 200, queue.text
    [item] = [i for i in queue.json()["items"] if i["step_id"] == current_step(done.json())]
    assert item["student_id"] == student
    assert item["summary"]["title"] == "问题学籍「身份证件号错误」：佐证"
    assert item["summary"]["evidence"] == ["id_scan"]
    assert item["summary"]["has_document"] is True


async def test_a_form_field_that_is_not_utf8_is_a_malformed_body(
    client: httpx.AsyncClient, pw: ProblemWorld
) -> None:
    student, _ = await make_problem(client, pw, "id_invalid", 10)
    registrar = await tokens(client, pw, Role.registrar)
    case = await case_of(client, registrar, student, "id_invalid")
    body = (
        b'--b\r\nContent-Disposition: form-data; name="action"\r\n\r\ndelete\r\n'
        b'--b\r\nContent-Disposition: form-data; name="note"\r\n\r\n\xfd\xfe\r\n--b--\r\n'
    )
    answer = await client.post(
        f"/problem-cases/{case['id']}/actions",
        content=body,
        headers={**registrar, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "malformed_multipart"

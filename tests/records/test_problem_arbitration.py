"""A duplicate ID number at two schools: resolved when one school lets go of it, or, when
both corroborate, decided by national arbitration (教育部仲裁)."""

from __future__ import annotations

import httpx
import pytest

from backend.accounts.roles import Role
from backend.config import Settings
from backend.records.tables import ProblemFlag, Student
from tests.records.problem_world import (
    ID_CARD,
    PROOF_AND_REGISTER,
    ProblemWorld,
    act,
    add_student,
    build,
    case_of,
    current_step,
    decide,
    fields_for,
    tokens,
)


@pytest.fixture
async def pw(settings: Settings) -> ProblemWorld:
    return await build(settings)


async def both_corroborate(
    client: httpx.AsyncClient, pw: ProblemWorld
) -> tuple[int, int, dict[str, object], dict[str, object]]:
    at_a = await add_student(pw, fields_for(1))
    at_a3 = await add_student(pw, fields_for(1, name="同号学生"), school="A3")
    county = await tokens(client, pw, Role.county_reviewer)
    cases = []
    for student, who, evidence in (
        (at_a, Role.registrar, ID_CARD),
        (at_a3, "a3_registrar", PROOF_AND_REGISTER),
    ):
        registrar = await tokens(client, pw, who)
        case = await case_of(client, registrar, student, "duplicate_id")
        done = await act(client, registrar, case["id"], "corroborate", evidence, note="在本校就读")
        assert done.status_code == 201, done.text
        approved = await decide(client, county, current_step(done.json()), "approve")
        assert approved.status_code == 200, approved.text
        cases.append(case)
    return at_a, at_a3, cases[0], cases[1]


async def test_a_duplicate_both_schools_corroborate_is_arbitrated_nationally(
    client: httpx.AsyncClient, pw: ProblemWorld
) -> None:
    at_a, at_a3, case_a, case_a3 = await both_corroborate(client, pw)
    registrar = await tokens(client, pw, Role.registrar)
    seen = (await client.get(f"/problem-cases/{case_a['id']}", headers=registrar)).json()
    assert seen["state"] == "arbitration"
    assert seen["state_label"] == "教育部仲裁中"
    other = await tokens(client, pw, "a3_registrar")
    assert (await client.get(f"/problem-cases/{case_a3['id']}", headers=other)).json()[
        "state"
    ] == "arbitration"
    # in arbitration the schools cannot act, and counts keep it open
    blocked = await act(client, registrar, case_a["id"], "delete", note="x")
    assert blocked.status_code == 409
    county = await tokens(client, pw, Role.county_reviewer)
    counts = (await client.get("/problem-cases/counts", headers=county)).json()
    assert {k["kind"]: k["count"] for k in counts["kinds"]} == {"duplicate_id": 2}

    # only a national account arbitrates
    body = {"keep_school_id": pw.a3, "reason": "经核实该生在A3就读"}
    refused = await client.post(
        f"/problem-cases/{case_a['id']}/arbitration", json=body, headers=county
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "national_only"
    nation = await tokens(client, pw, Role.sysadmin)
    wrong = await client.post(
        f"/problem-cases/{case_a['id']}/arbitration",
        json={"keep_school_id": pw.world.schools["D"]},
        headers=nation,
    )
    assert wrong.status_code == 400
    assert wrong.json()["code"] == "invalid_keep_school"
    # the arbitration step is the nation's: the county's decision is refused
    step = current_step(seen)
    assert (await decide(client, county, step, "approve")).status_code == 403

    done = await client.post(
        f"/problem-cases/{case_a['id']}/arbitration", json=body, headers=nation
    )
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "resolved"
    assert "教育部仲裁" in done.json()["reason"]
    assert done.json()["actions"][-1]["action"] == "arbitrate"
    assert done.json()["actions"][-1]["keep_school_id"] == pw.a3

    kept = await Student.select(Student.status).where(Student.id == at_a3).first()
    removed = await Student.select(Student.status).where(Student.id == at_a).first()
    assert kept is not None
    assert kept["status"] == "enrolled"
    assert removed is not None
    assert removed["status"] == "removed"
    assert not await ProblemFlag.exists().where(ProblemFlag.student == at_a3)
    after = (await client.get(f"/problem-cases/{case_a3['id']}", headers=other)).json()
    assert after["state"] == "resolved"
    assert after["reason"] == "教育部仲裁：保留本校学籍"
    again = await client.post(
        f"/problem-cases/{case_a['id']}/arbitration", json=body, headers=nation
    )
    assert again.status_code == 409
    counts = (await client.get("/problem-cases/counts", headers=county)).json()
    assert counts["total"] == 0


async def test_refusing_to_arbitrate_sends_both_schools_back_to_act(
    client: httpx.AsyncClient, pw: ProblemWorld
) -> None:
    _, _, case_a, case_a3 = await both_corroborate(client, pw)
    nation = await tokens(client, pw, Role.sysadmin)
    seen = (await client.get(f"/problem-cases/{case_a['id']}", headers=nation)).json()
    refused = await decide(client, nation, current_step(seen), "reject", "请两校先核实在读情况")
    assert refused.status_code == 200, refused.text
    # back with the schools, they are theirs to read (a sysadmin reads no records)
    schools = {case_a["id"]: Role.registrar, case_a3["id"]: "a3_registrar"}
    for case in (case_a, case_a3):
        school = await tokens(client, pw, schools[case["id"]])
        now = (await client.get(f"/problem-cases/{case['id']}", headers=school)).json()
        assert now["state"] == "open"
        assert now["reason"] == "请两校先核实在读情况"


async def test_a_duplicate_is_resolved_when_the_other_school_deletes_its_record(
    client: httpx.AsyncClient, pw: ProblemWorld
) -> None:
    at_a = await add_student(pw, fields_for(2))
    at_a3 = await add_student(pw, fields_for(2, name="同号学生"), school="A3")
    registrar = await tokens(client, pw, Role.registrar)
    other = await tokens(client, pw, "a3_registrar")
    county = await tokens(client, pw, Role.county_reviewer)
    case_a = await case_of(client, registrar, at_a, "duplicate_id")
    corroborated = await act(client, registrar, case_a["id"], "corroborate", ID_CARD)
    assert (
        await decide(client, county, current_step(corroborated.json()), "approve")
    ).status_code == 200
    case_a3 = await case_of(client, other, at_a3, "duplicate_id")
    deleted = await act(client, other, case_a3["id"], "delete", note="该生未在本校就读")
    assert (
        await decide(client, county, current_step(deleted.json()), "approve")
    ).status_code == 200

    assert (await client.get(f"/problem-cases/{case_a['id']}", headers=registrar)).json()[
        "state"
    ] == "resolved"
    assert (await client.get(f"/problem-cases/{case_a3['id']}", headers=other)).json()[
        "state"
    ] == "resolved"
    roll = await client.get("/students", headers=other)
    assert at_a3 not in [s["id"] for s in roll.json()["items"]]
    gone = await client.get("/students", params={"status": "removed"}, headers=other)
    assert [s["id"] for s in gone.json()["items"]] == [at_a3]

"""A record in the middle of a status change (`Student.open_change`, `records.holds`), through
the API with real role accounts: every path that would change it refuses with 409
`record_change_open` and writes nothing (a change request made or approved at its last step,
a problem-record action, a class move, an import, a roll mark), a hold set at the very moment a
request is made is not slipped past, and the check campaign lists the child apart: no form
printed, not among the students progress expects, not on the paper-return list, under its own
heading on the class roll, flagged on the teacher's family list and on the record."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.config import Settings
from backend.db import transaction
from backend.records.holds import RecordChangeOpen
from backend.records.moves import move_student
from backend.records.problem_tables import ProblemCase
from backend.records.review_tables import ChangeRequest, ReviewStep
from backend.records.roll_tables import RollEntry
from backend.records.service import load_fields
from backend.records.tables import IssuedForm, Student, StudentStatus
from backend.reports import progress_refresh
from tests.factories import SYSTEM, make_students, open_campaign
from tests.parents.helpers import issue_forms
from tests.records.files import student_row, to_csv
from tests.records.problem_world import ProblemWorld, act, build, case_of, tokens
from tests.records.requests import as_role, current_step, decide
from tests.records.test_change_requests import create, fields_of
from tests.records.test_import import do_import
from tests.records.test_problems import make_problem

TRANSFER = 7001  # the open change's id (backend.transfers'; only its presence matters here)
HELD_MESSAGE = "该学生有正在办理的学籍异动（如转学），办结前不能修改学籍信息"


@pytest.fixture
async def pw(settings: Settings) -> ProblemWorld:
    pw = await build(settings)
    pw.world.students = await make_students(pw.world, "A1", 3)
    pw.world.other_students = await make_students(pw.world, "A2", 1, start=10)
    return pw


@pytest.fixture
async def campaign() -> int:
    return await open_campaign(corrections_open=True)


async def hold(student_id: int, change: int | None = TRANSFER) -> None:
    await Student.update({Student.open_change: change}).where(Student.id == student_id)


def refused(response: httpx.Response) -> None:
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "record_change_open", response.json()


async def test_a_change_request_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, pw: ProblemWorld, campaign: int
) -> None:
    student = pw.world.students[0]
    await hold(student)
    registrar = await as_role(client, pw.world, Role.registrar)
    answer = await create(client, registrar, student, "health", "2")
    refused(answer)
    assert answer.json()["message"] == HELD_MESSAGE
    assert await ChangeRequest.count() == 0
    assert "health" not in await fields_of(student)

    # once the change is closed the same request goes through
    await hold(student, None)
    assert (await create(client, registrar, student, "health", "2")).status_code == 201


async def test_the_last_approval_is_refused_and_its_step_stays_current(
    client: httpx.AsyncClient, pw: ProblemWorld, campaign: int
) -> None:
    student = pw.world.students[0]
    registrar = await as_role(client, pw.world, Role.registrar)
    made = await create(client, registrar, student, "health", "2")
    assert made.status_code == 201, made.text
    step = made.json()["current_step"]["id"]
    await hold(student)  # a transfer opened while the request waited on the leader

    leader = await as_role(client, pw.world, Role.school_leader)
    answer = await decide(client, leader, step)
    refused(answer)
    assert "办结前不能批准" in answer.json()["message"]
    assert "health" not in await fields_of(student)
    row = await ReviewStep.select(ReviewStep.state).where(ReviewStep.id == step).first()
    assert row == {"state": "current"}
    request = await ChangeRequest.select(ChangeRequest.state).first()
    assert request == {"state": "in_review"}
    # a rejection is still possible: it changes nothing on the record
    assert (await current_step(client, registrar, made.json()["id"]))["id"] == step

    await hold(student, None)
    assert (await decide(client, leader, step)).status_code == 200
    assert (await fields_of(student))["health"] == "2"


async def test_a_hold_set_at_the_same_instant_is_not_slipped_past(
    client: httpx.AsyncClient, pw: ProblemWorld, campaign: int
) -> None:
    """The hold's transaction has written the row and not committed when the request comes
    in: the request waits on the row and is refused once the hold commits. A request that
    read the record without its lock would be stored (201) beside the open transfer."""
    student = pw.world.students[0]
    registrar = await as_role(client, pw.world, Role.registrar)
    written = asyncio.Event()

    async def open_transfer() -> None:
        async with transaction():
            await hold(student)
            written.set()
            await asyncio.sleep(0.5)

    async def request_change() -> httpx.Response:
        await written.wait()
        return await create(client, registrar, student, "health", "2")

    _, answer = await asyncio.gather(open_transfer(), request_change())
    refused(answer)
    assert await ChangeRequest.count() == 0
    assert (await Student.select(Student.open_change).where(Student.id == student).first()) == {
        "open_change": TRANSFER
    }


async def test_a_problem_action_is_refused(client: httpx.AsyncClient, pw: ProblemWorld) -> None:
    student, _ = await make_problem(client, pw, "id_invalid", 1)
    registrar = await tokens(client, pw, Role.registrar)
    case = await case_of(client, registrar, student, "id_invalid")
    await hold(student)
    refused(await act(client, registrar, case["id"], "delete", note="该生不在本校就读"))
    row = await ProblemCase.select(ProblemCase.state).where(ProblemCase.id == case["id"]).first()
    assert row == {"state": "open"}
    assert (await Student.select(Student.status).where(Student.id == student).first()) == {
        "status": StudentStatus.enrolled.value
    }


async def test_an_approved_deletion_is_refused_while_a_change_is_open(
    client: httpx.AsyncClient, pw: ProblemWorld
) -> None:
    student, _ = await make_problem(client, pw, "id_invalid", 2)
    registrar = await tokens(client, pw, Role.registrar)
    case = await case_of(client, registrar, student, "id_invalid")
    acted = await act(client, registrar, case["id"], "delete", note="该生不在本校就读")
    assert acted.status_code == 201, acted.text
    step = next(s for a in acted.json()["actions"] for s in a["steps"] if s["state"] == "current")
    await hold(student)
    county = await tokens(client, pw, Role.county_reviewer)
    refused(await decide(client, county, step["id"]))
    assert (await Student.select(Student.status).where(Student.id == student).first()) == {
        "status": StudentStatus.enrolled.value
    }


async def test_a_class_move_is_refused_but_the_changes_own_move_goes_through(
    pw: ProblemWorld,
) -> None:
    student = pw.world.students[0]
    a1, a2, b1 = (pw.world.classes[k] for k in ("A1", "A2", "B1"))
    await hold(student)
    with pytest.raises(RecordChangeOpen):
        await move_student(SYSTEM, student, a2)
    with pytest.raises(RecordChangeOpen):
        await move_student(SYSTEM, student, b1, for_change=TRANSFER + 1)
    where = await Student.select(Student.school_class).where(Student.id == student).first()
    assert where == {"school_class": a1}
    moved = await move_student(SYSTEM, student, b1, for_change=TRANSFER)
    assert moved.followed["student"] == 1
    where = await Student.select(Student.school_class).where(Student.id == student).first()
    assert where == {"school_class": b1}


async def test_an_import_that_would_change_a_held_record_fails_naming_its_row(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, pw: ProblemWorld
) -> None:
    registrar = await tokens(client, pw, Role.registrar)
    rows = [student_row(i) for i in (51, 52, 53)]  # none of the fixture's students
    first = await do_import(client, app, settings, registrar, to_csv(rows))
    assert first["status"] == "done", first
    held = await Student.select(Student.id, Student.fields).where(Student.name == "学生052").first()
    assert held is not None
    await hold(held["id"])

    # the same file again changes nothing: a held record left as it is fails nothing
    again = await do_import(client, app, settings, registrar, to_csv(rows))
    assert again["status"] == "done", again
    assert again["summary"]["unchanged"] == 3

    changed = [dict(r, 现住址="浙江省杭州市西湖区文二路9号") for r in rows]
    for dry_run in (True, False):
        report = await do_import(client, app, settings, registrar, to_csv(changed), dry_run=dry_run)
        assert report["status"] == "failed", report
        assert report["summary"]["code"] == "record_change_open"
        assert [(e["row"], e["column"]) for e in report["errors"]] == [(3, "学籍号")]
        assert "异动" in report["errors"][0]["message"]
    after = await Student.select(Student.fields).where(Student.id == held["id"]).first()
    assert after == {"fields": held["fields"]}
    others = await Student.select(Student.fields).where(Student.name == "学生051").first()
    assert others is not None
    # all or nothing: the other rows are not written either
    assert load_fields(others["fields"])["current_address"].endswith("文三路51号")

    # a key field of the held record becomes no change request either
    renamed = [dict(r) for r in rows]
    renamed[1]["姓名"] = "学生五十二"
    report = await do_import(client, app, settings, registrar, to_csv(renamed))
    assert report["status"] == "failed", report
    assert await ChangeRequest.count() == 0


async def roll(
    client: httpx.AsyncClient, headers: dict[str, str], campaign: int, klass: int
) -> Any:
    answer = await client.get(f"/campaigns/{campaign}/classes/{klass}/roll", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_the_class_roll_lists_a_held_record_apart_and_refuses_its_mark(
    client: httpx.AsyncClient, pw: ProblemWorld, campaign: int
) -> None:
    held, *others = pw.world.students
    suspended = (await make_students(pw.world, "A1", 1, start=40))[0]
    await Student.update({Student.status: StudentStatus.suspended.value}).where(
        Student.id == suspended
    )
    teacher = await as_role(client, pw.world, Role.teacher)
    a1 = pw.world.classes["A1"]
    # marked not here before the transfer opened (the child has left for the new school)
    before = await client.put(
        f"/campaigns/{campaign}/classes/{a1}/roll/records/{held}",
        json={"mark": "not_here", "reason": "transferred"},
        headers=teacher,
    )
    assert before.status_code == 200, before.text
    await hold(held)
    for student in others:
        put = await client.put(
            f"/campaigns/{campaign}/classes/{a1}/roll/records/{student}",
            json={"mark": "here"},
            headers=teacher,
        )
        assert put.status_code == 200, put.text
    body = await roll(client, teacher, campaign, a1)
    assert [r["student_id"] for r in body["roll"]] == others
    assert (body["records"], body["marked"], body["checked"]) == (2, 2, True)
    assert [c["student_id"] for c in body["changing"]] == [held]
    assert body["changing"][0]["label"] == body["changing_label"] == "异动办理中"

    answer = await client.put(
        f"/campaigns/{campaign}/classes/{a1}/roll/records/{held}",
        json={"mark": "not_here", "reason": "transferred"},
        headers=teacher,
    )
    refused(answer)
    assert answer.json()["message"] == "该学生有正在办理的学籍异动（如转学），异动办结后再核对"

    # the registrar cannot start the record's deletion from the roll either
    registrar = await as_role(client, pw.world, Role.registrar)
    entry = before.json()["id"]
    decided = await client.post(
        f"/roll-entries/{entry}/decision",
        json={"outcome": "delete", "reason": "已转学"},
        headers=registrar,
    )
    refused(decided)
    row = (
        await RollEntry.select(RollEntry.state, RollEntry.mark).where(RollEntry.id == entry).first()
    )
    assert row == {"state": "waiting", "mark": "not_here"}
    assert await ProblemCase.count().where(ProblemCase.student == held) == 0

    progress = await client.get(f"/campaigns/{campaign}/roll-progress", headers=registrar)
    assert progress.status_code == 200, progress.text
    assert (progress.json()["records"], progress.json()["classes_checked"]) == (3, 1)


async def test_no_form_is_printed_and_the_checklist_leaves_the_child_out(
    client: httpx.AsyncClient, pw: ProblemWorld, campaign: int
) -> None:
    held, *others = pw.world.students
    await hold(held)
    forms = await issue_forms(client, pw.world, "A1")
    assert len(forms) == 2
    assert await IssuedForm.count().where(IssuedForm.student == held) == 0
    teacher = await as_role(client, pw.world, Role.teacher)
    checklist = await client.get(
        f"/campaigns/{campaign}/classes/{pw.world.classes['A1']}/paper-returns", headers=teacher
    )
    assert checklist.status_code == 200, checklist.text
    assert sorted(i["student_id"] for i in checklist.json()["items"]) == sorted(others)
    assert checklist.json()["total"] == 2

    # the family list shows the child, flagged
    families = await client.get("/families", headers=teacher)
    assert families.status_code == 200, families.text
    flags = {
        f["student_id"]: (f["change_open"], f["change_open_label"])
        for f in families.json()["items"]
    }
    assert flags[held] == (True, "异动办理中")
    assert all(flags[s] == (False, None) for s in others)


async def test_the_record_says_a_change_is_open_and_its_status_in_chinese(
    client: httpx.AsyncClient, pw: ProblemWorld
) -> None:
    held = pw.world.students[0]
    await hold(held)
    registrar = await as_role(client, pw.world, Role.registrar)
    one = (await client.get(f"/students/{held}", headers=registrar)).json()
    assert (one["status"], one["status_label"], one["change_open"]) == ("enrolled", "在籍", True)
    listed = await client.get(
        "/students", params={"class_id": pw.world.classes["A1"]}, headers=registrar
    )
    by_id = {s["id"]: s for s in listed.json()["items"]}
    assert by_id[held]["change_open"] is True
    assert by_id[pw.world.students[1]]["change_open"] is False
    await Student.update({Student.status: StudentStatus.suspended.value}).where(
        Student.id == pw.world.students[1]
    )
    other = (await client.get(f"/students/{pw.world.students[1]}", headers=registrar)).json()
    assert (other["status_label"], other["change_open"]) == ("休学", False)


async def expected(client: httpx.AsyncClient, headers: dict[str, str], campaign: int) -> int:
    await progress_refresh.refresh()
    answer = await client.get(
        f"/campaigns/{campaign}/progress",
        params={"class_id": str(await _a1(client))},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["counts"]["students"])


async def _a1(client: httpx.AsyncClient) -> int:
    from backend.accounts.tables import SchoolClass

    row = await SchoolClass.select(SchoolClass.id).where(SchoolClass.name == "A1班").first()
    assert row is not None
    return int(row["id"])


async def test_progress_expects_neither_held_nor_suspended_students(
    client: httpx.AsyncClient, pw: ProblemWorld, campaign: int
) -> None:
    held, suspended, _ = pw.world.students
    registrar = await as_role(client, pw.world, Role.registrar)
    assert await expected(client, registrar, campaign) == 3
    await hold(held)
    await Student.update({Student.status: StudentStatus.suspended.value}).where(
        Student.id == suspended
    )
    assert await expected(client, registrar, campaign) == 1
    await hold(held, None)  # the transfer fell through: the child is expected again
    assert await expected(client, registrar, campaign) == 2

"""The class roll (人籍一致) through the API with real role accounts: a class checked end to end
by its teacher with a child missing and one without a record, each reaching the registrar's
queue and decided there (the child registered through the write path); progress per school
and region; another class's teacher answered 404 (audited)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from backend.accounts.roles import Role
from backend.config import Settings
from backend.notify.tables import Notification
from backend.records.service import load_fields
from backend.records.tables import Student
from tests.factories import World, bearer, build_world, login, make_account, make_students
from tests.factories import open_campaign as open_campaign_row
from tests.records.requests import as_role, audit_rows


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 3)
    world.other_students = await make_students(world, "A2", 1, start=10)
    await make_account(
        settings,
        Role.teacher,
        "13600000001",
        name="teacher_A2",
        region_code="330106",
        school=world.schools["A"],
        school_class=world.classes["A2"],
    )
    return world


@pytest.fixture
async def campaign() -> int:
    return await open_campaign_row()


def roll_path(campaign: int, class_id: int) -> str:
    return f"/campaigns/{campaign}/classes/{class_id}/roll"


async def mark(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    campaign: int,
    class_id: int,
    student_id: int,
    mark: str,
    reason: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"mark": mark}
    if reason is not None:
        body["reason"] = reason
    return await client.put(
        f"{roll_path(campaign, class_id)}/records/{student_id}", json=body, headers=headers
    )


async def progress(
    client: httpx.AsyncClient, headers: dict[str, str], campaign: int, **query: Any
) -> dict[str, Any]:
    response = await client.get(
        f"/campaigns/{campaign}/roll-progress", params=query, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_class_checked_end_to_end(
    client: httpx.AsyncClient, world: World, campaign: int
) -> None:
    teacher = await as_role(client, world, Role.teacher)
    registrar = await as_role(client, world, Role.registrar)
    county = await as_role(client, world, Role.county_reviewer)
    a1 = world.classes["A1"]
    here, also_here, gone = world.students

    response = await client.get(roll_path(campaign, a1), headers=teacher)
    assert response.status_code == 200, response.text
    roll = response.json()
    assert (roll["records"], roll["marked"], roll["checked"]) == (3, 0, False)
    assert [r["mark"] for r in roll["roll"]] == [None, None, None]

    assert (await mark(client, teacher, campaign, a1, here, "here")).status_code == 200
    refused = await mark(client, teacher, campaign, a1, gone, "not_here")
    assert refused.status_code == 400
    assert refused.json()["code"] == "reason_required"
    response = await mark(client, teacher, campaign, a1, gone, "not_here", "transferred")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "waiting"
    assert response.json()["reason_label"] == "已转学"

    refused = await client.post(
        f"{roll_path(campaign, a1)}/unregistered",
        json={"name": "王小明", "sex": "3", "birth_date": "2018-13-40"},
        headers=teacher,
    )
    assert refused.status_code == 400
    assert set(refused.json()["field_errors"]) == {"sex", "birth_date"}
    response = await client.post(
        f"{roll_path(campaign, a1)}/unregistered",
        json={"name": "王小明", "sex": "男", "birth_date": "2018年3月5日"},
        headers=teacher,
    )
    assert response.status_code == 201, response.text
    child = response.json()
    assert (child["name"], child["sex"], child["birth_date"]) == ("王小明", "1", "2018-03-05")
    assert child["student_id"] is None
    assert child["state"] == "waiting"

    roll = (await client.get(roll_path(campaign, a1), headers=teacher)).json()
    assert (roll["marked"], roll["checked"]) == (2, False)
    assert (await mark(client, teacher, campaign, a1, also_here, "here")).status_code == 200
    roll = (await client.get(roll_path(campaign, a1), headers=teacher)).json()
    assert (roll["marked"], roll["checked"]) == (3, True)
    assert [u["name"] for u in roll["unregistered"]] == ["王小明"]

    # Both mismatches wait in the school registrar's queue, and only there.
    response = await client.get("/roll-entries", params={"state": "waiting"}, headers=registrar)
    assert response.status_code == 200, response.text
    waiting = {e["mark"]: e for e in response.json()["items"]}
    assert set(waiting) == {"not_here", "unregistered"}
    assert waiting["not_here"]["student_id"] == gone
    missing_id, child_id = waiting["not_here"]["id"], waiting["unregistered"]["id"]
    # The school's registrar is told of each once, without the child's name.
    told = await Notification.select().where(Notification.account == world.accounts[Role.registrar])
    assert sorted((n["category"], n["subject_id"]) for n in told) == sorted(
        [("roll_mismatch", missing_id), ("roll_mismatch", child_id)]
    )
    assert all("王小明" not in n["title"] + n["body"] for n in told)
    assert (
        await Notification.count().where(Notification.account == world.accounts[Role.teacher]) == 0
    )

    totals = await progress(client, county, campaign)
    assert totals == {
        "classes": 2,
        "classes_checked": 1,
        "records": 4,
        "marked": 3,
        "not_here": 1,
        "unregistered": 1,
        "waiting": 2,
    }

    # Only the registrar decides; each kind of mismatch takes its own outcomes.
    refused = await client.post(
        f"/roll-entries/{missing_id}/decision", json={"outcome": "transfer"}, headers=teacher
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "roll_registrar_only")
    refused = await client.post(
        f"/roll-entries/{missing_id}/decision", json={"outcome": "reject"}, headers=registrar
    )
    assert (refused.status_code, refused.json()["code"]) == (400, "outcome_not_allowed")
    response = await client.post(
        f"/roll-entries/{missing_id}/decision", json={"outcome": "transfer"}, headers=registrar
    )
    assert response.status_code == 200, response.text
    assert (response.json()["state"], response.json()["outcome_label"]) == ("handled", "办理转出")
    again = await client.post(
        f"/roll-entries/{missing_id}/decision", json={"outcome": "keep"}, headers=registrar
    )
    assert (again.status_code, again.json()["code"]) == (409, "roll_entry_not_waiting")
    # a decided mark is the registrar's now
    late = await mark(client, teacher, campaign, a1, gone, "here")
    assert (late.status_code, late.json()["code"]) == (409, "roll_entry_decided")

    # The child without a record is registered: a record of the class, written like any.
    refused = await client.post(
        f"/roll-entries/{child_id}/registration",
        json={"fields": {"ethnicity": "01"}},
        headers=registrar,
    )
    assert refused.status_code == 400
    assert "fields.id_type" in refused.json()["field_errors"]
    response = await client.post(
        f"/roll-entries/{child_id}/registration",
        json={"fields": {"ethnicity": "01", "nationality": "CN", "id_type": "9"}},
        headers=registrar,
    )
    assert response.status_code == 201, response.text
    registered = response.json()
    assert registered["state"] == "registered"
    student = (
        await Student.select().where(Student.id == registered["registered_student_id"]).first()
    )
    assert student is not None
    assert student["school_class"] == a1
    assert student["registry_number"].startswith("J")
    assert load_fields(student["fields"])["birth_date"] == "2018-03-05"
    assert await audit_rows("create", "student", student["id"])

    roll = (await client.get(roll_path(campaign, a1), headers=teacher)).json()
    assert (roll["records"], roll["marked"], roll["checked"]) == (4, 4, True)
    totals = await progress(client, county, campaign)
    assert (totals["classes_checked"], totals["waiting"]) == (1, 0)
    by_school = (
        await client.get(f"/campaigns/{campaign}/roll-progress/schools", headers=county)
    ).json()
    assert [(s["school_name"], s["classes"], s["classes_checked"]) for s in by_school["items"]] == [
        ("学校A", 2, 1)
    ]
    # a county elsewhere counts nothing of this school
    assert (await progress(client, county, campaign, region_code="330108"))["classes"] == 0


async def test_another_class_teacher_is_answered_404_and_audited(
    client: httpx.AsyncClient, world: World, campaign: int
) -> None:
    other = bearer(await login(client, "13600000001"))
    a1, a2 = world.classes["A1"], world.classes["A2"]
    student = world.students[0]

    response = await client.get(roll_path(campaign, a1), headers=other)
    assert response.status_code == 404
    response = await mark(client, other, campaign, a1, student, "here")
    assert response.status_code == 404
    # nor through its own class's path
    response = await mark(client, other, campaign, a2, student, "here")
    assert response.status_code == 404
    assert await audit_rows("access_denied", "school_class", a1)
    assert await audit_rows("access_denied", "student", student)

    # its own class works, and its queue holds nothing of A1
    own = world.other_students[0]
    response = await mark(client, other, campaign, a2, own, "not_here", "never_came")
    assert response.status_code == 200, response.text
    listed = (await client.get("/roll-entries", headers=other)).json()["items"]
    assert [e["student_id"] for e in listed] == [own]


async def test_marks_only_while_the_campaign_runs(client: httpx.AsyncClient, world: World) -> None:
    ended = await open_campaign_row(days=0)
    teacher = await as_role(client, world, Role.teacher)
    response = await mark(client, teacher, ended, world.classes["A1"], world.students[0], "here")
    assert (response.status_code, response.json()["code"]) == (409, "campaign_not_open")


async def test_a_teacher_and_the_registrar_marking_one_record_at_once_both_land(
    client: httpx.AsyncClient, world: World, campaign: int
) -> None:
    teacher = await as_role(client, world, Role.teacher)
    registrar = await as_role(client, world, Role.registrar)
    a1, student = world.classes["A1"], world.students[0]
    answers = await asyncio.gather(
        mark(client, teacher, campaign, a1, student, "here"),
        mark(client, registrar, campaign, a1, student, "not_here", "left"),
    )
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    roll = (await client.get(roll_path(campaign, a1), headers=teacher)).json()
    assert roll["marked"] == 1


async def test_two_registrations_of_one_child_at_once_make_one_record(
    client: httpx.AsyncClient, world: World, campaign: int
) -> None:
    teacher = await as_role(client, world, Role.teacher)
    registrar = await as_role(client, world, Role.registrar)
    added = await client.post(
        f"{roll_path(campaign, world.classes['A1'])}/unregistered",
        json={"name": "王小明", "sex": "1", "birth_date": "2018-03-05"},
        headers=teacher,
    )
    assert added.status_code == 201, added.text
    before = await Student.count()
    answers = await asyncio.gather(
        *(
            client.post(
                f"/roll-entries/{added.json()['id']}/registration",
                json={"fields": {"ethnicity": "01", "nationality": "CN", "id_type": "9"}},
                headers=registrar,
            )
            for _ in range(2)
        )
    )
    assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
    refused = next(a for a in answers if a.status_code == 409)
    assert refused.json()["code"] == "roll_entry_not_waiting"
    assert await Student.count() == before + 1

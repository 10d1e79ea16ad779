"""A registrar's `delete` on a *not here* roll entry starts the problem-record deletion: a case
of kind `roll_not_here` with a `delete` action waiting on the county's review, exactly as from
the problem list; the entry links to the case and shows its state as the review goes on (the
record removed once approved; the case back with the school, the reason shown, when
rejected). Transfers and suspensions have no procedure yet: recorded only, no case. Two
registrars deciding at once start one deletion."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from backend.accounts.roles import Role
from backend.config import Settings
from backend.records.problem_tables import ProblemAction, ProblemCase
from backend.records.tables import Student
from tests.factories import World, build_world, make_students
from tests.factories import open_campaign as open_campaign_row
from tests.records.requests import as_role, audit_rows, decide


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 3)
    return world


@pytest.fixture
async def campaign() -> int:
    return await open_campaign_row()


async def not_here(
    client: httpx.AsyncClient, world: World, campaign: int, student: int, reason: str = "left"
) -> int:
    teacher = await as_role(client, world, Role.teacher)
    response = await client.put(
        f"/campaigns/{campaign}/classes/{world.classes['A1']}/roll/records/{student}",
        json={"mark": "not_here", "reason": reason, "note": "已随父母去外省"},
        headers=teacher,
    )
    assert response.status_code == 200, response.text
    entry_id: int = response.json()["id"]
    return entry_id


async def decide_entry(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    entry_id: int,
    outcome: str,
    reason: str = "",
) -> httpx.Response:
    return await client.post(
        f"/roll-entries/{entry_id}/decision",
        json={"outcome": outcome, "reason": reason},
        headers=headers,
    )


async def entry(client: httpx.AsyncClient, headers: dict[str, str], entry_id: int) -> Any:
    response = await client.get(f"/roll-entries/{entry_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_delete_starts_the_problem_record_deletion_reviewed_by_the_county(
    client: httpx.AsyncClient, world: World, campaign: int
) -> None:
    registrar = await as_role(client, world, Role.registrar)
    county = await as_role(client, world, Role.county_reviewer)
    gone = world.students[0]
    entry_id = await not_here(client, world, campaign, gone)

    response = await decide_entry(client, registrar, entry_id, "delete", "家长确认已转往外省")
    assert response.status_code == 200, response.text
    decided = response.json()
    assert (decided["state"], decided["outcome"]) == ("handled", "delete")
    case_id = decided["problem_case_id"]
    assert case_id is not None
    assert (decided["problem_case_state"], decided["problem_case_state_label"]) == (
        "in_review",
        "审核中",
    )
    # Not removed yet: the deletion waits on the authority like any other.
    student = await Student.select(Student.status).where(Student.id == gone).first()
    assert student == {"status": "enrolled"}

    # The same case the problem list shows, with its delete action and its review step.
    case = (await client.get(f"/problem-cases/{case_id}", headers=registrar)).json()
    assert (case["student_id"], case["kind"], case["state"]) == (gone, "roll_not_here", "in_review")
    assert case["kind_label"] == "班级核对：在籍不在班"
    [action] = case["actions"]
    assert (action["action"], action["state"]) == ("delete", "in_review")
    assert "已离校" in action["note"]
    assert "家长确认已转往外省" in action["note"]
    listed = await client.get("/problem-cases", params={"kind": "roll_not_here"}, headers=registrar)
    assert [c["id"] for c in listed.json()["items"]] == [case_id]
    assert await audit_rows("problem_delete", "problem_case", case_id)
    logged = await audit_rows("roll_decide", "roll_entry", entry_id)
    assert logged[0]["after"] == {"outcome": "delete", "problem_case": case_id}

    # The county finds it in its queue and approves: the record leaves the roll.
    queue = (
        await client.get("/review-steps", params={"subject_kind": "problem_action"}, headers=county)
    ).json()
    [step] = [i for i in queue["items"] if i["student_id"] == gone]
    assert step["step_id"] == action["steps"][0]["id"]
    approved = await decide(client, county, step["step_id"])
    assert approved.status_code == 200, approved.text
    student = await Student.select(Student.status).where(Student.id == gone).first()
    assert student == {"status": "removed"}
    now = await entry(client, registrar, entry_id)
    assert (now["problem_case_id"], now["problem_case_state"]) == (case_id, "resolved")


async def test_a_rejected_deletion_comes_back_to_the_school_and_the_entry_shows_it(
    client: httpx.AsyncClient, world: World, campaign: int
) -> None:
    registrar = await as_role(client, world, Role.registrar)
    county = await as_role(client, world, Role.county_reviewer)
    gone = world.students[1]
    entry_id = await not_here(client, world, campaign, gone, "never_came")
    decided = (await decide_entry(client, registrar, entry_id, "delete")).json()
    case_id = decided["problem_case_id"]
    step = (await client.get(f"/problem-cases/{case_id}", headers=registrar)).json()["actions"][0][
        "steps"
    ][0]
    rejected = await decide(client, county, step["id"], "reject", "请核实是否休学")
    assert rejected.status_code == 200, rejected.text

    now = await entry(client, registrar, entry_id)
    assert (now["problem_case_state"], now["review_note"]) == ("open", "请核实是否休学")
    # The registrar acts again from the problem list, as on any case (a second round).
    again = await client.post(
        f"/problem-cases/{case_id}/actions",
        files=[("action", (None, "delete")), ("note", (None, "已核实从未到校"))],
        headers=registrar,
    )
    assert again.status_code == 201, again.text
    assert (await entry(client, registrar, entry_id))["problem_case_state"] == "in_review"
    student = await Student.select(Student.status).where(Student.id == gone).first()
    assert student == {"status": "enrolled"}


async def test_transfer_and_suspend_are_recorded_without_a_case(
    client: httpx.AsyncClient, world: World, campaign: int
) -> None:
    registrar = await as_role(client, world, Role.registrar)
    for student, outcome in zip(world.students[:2], ("transfer", "suspend"), strict=True):
        entry_id = await not_here(client, world, campaign, student, "transferred")
        response = await decide_entry(client, registrar, entry_id, outcome)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["outcome"], body["problem_case_id"], body["problem_case_state"]) == (
            outcome,
            None,
            None,
        )
    assert await ProblemCase.count() == 0


async def test_two_registrars_deleting_at_once_start_one_deletion(
    client: httpx.AsyncClient, world: World, campaign: int
) -> None:
    registrar = await as_role(client, world, Role.registrar)
    entry_id = await not_here(client, world, campaign, world.students[2])
    first, second = await asyncio.gather(
        decide_entry(client, registrar, entry_id, "delete"),
        decide_entry(client, registrar, entry_id, "delete"),
    )
    assert sorted((first.status_code, second.status_code)) == [200, 409]
    refused = first if first.status_code == 409 else second
    assert refused.json()["code"] == "roll_entry_not_waiting"
    assert await ProblemCase.count() == 1
    assert await ProblemAction.count() == 1


async def test_another_schools_registrar_cannot_start_a_deletion(
    client: httpx.AsyncClient, world: World, campaign: int, settings: Settings
) -> None:
    from tests.factories import bearer, login, make_account

    await make_account(
        settings,
        Role.registrar,
        "13600000009",
        name="registrar_B",
        region_code="330108",
        school=world.schools["B"],
    )
    other = bearer(await login(client, "13600000009"))
    entry_id = await not_here(client, world, campaign, world.students[0])
    refused = await decide_entry(client, other, entry_id, "delete")
    assert refused.status_code == 404
    assert await audit_rows("access_denied", "roll_entry", entry_id)
    assert await ProblemCase.count() == 0

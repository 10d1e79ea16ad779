"""Campaign progress counted against a seed whose truth is known: at every level (province,
city, county, school, class) and after each kind of event — forms issued, paper ticked and
unticked, photos with each verdict, corrections submitted and entered, a step falling overdue,
problem records opened and closed, a student moving school. The counts are read through the
API, after the worker's refresh."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from backend.accounts.roles import Role
from backend.config import Settings
from backend.db import transaction
from backend.records import problems
from backend.records.ids import make_resident_id
from backend.records.progress_marks import ProgressMark
from backend.records.review_tables import ReviewStep
from backend.records.service import RecordIn, write_records
from backend.records.tables import IssuedForm, Student
from backend.reports import progress_refresh
from tests.factories import SYSTEM
from tests.parents.helpers import issue_forms
from tests.records.requests import as_role, decide
from tests.reports.progress_world import SIZES, ProgressWorld, build, checked_photo, counts, read
from tests.reports.progress_world import refresh as refresh_progress


@pytest.fixture
async def pw(settings: Settings) -> ProgressWorld:
    return await build(settings)


# Every node of the campaign's region and what it holds: class keys under it.
NODES: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "province": ({"region_code": "330000"}, ("A1", "A2", "B1", "C1")),
    "city": ({"region_code": "330100"}, ("A1", "A2", "B1")),
    "county": ({"region_code": "330106"}, ("A1", "A2")),
    "other_city": ({"region_code": "330200"}, ("C1",)),
}


async def _all_levels(
    client: httpx.AsyncClient, pw: ProgressWorld, name: str, per_class: dict[str, int]
) -> None:
    """`name` counts `per_class[key]` in each class, summed right at every level."""
    for _label, (params, keys) in NODES.items():
        got = await counts(client, pw, **params)
        assert got[name] == sum(per_class.get(k, 0) for k in keys), (params, name, got)
    school = await counts(client, pw, school_id=pw.world.schools["A"])
    assert school[name] == per_class.get("A1", 0) + per_class.get("A2", 0)
    for key in ("A1", "A2", "B1", "C1"):
        got = await counts(client, pw, class_id=pw.world.classes[key])
        assert got[name] == per_class.get(key, 0), (key, name, got)


async def test_a_campaign_starts_with_every_school_counted_and_its_students(
    client: httpx.AsyncClient, pw: ProgressWorld
) -> None:
    # every school of 浙江 (A, B, C) at the campaign's first look, and D, whose students' writes
    # marked it (no campaign of 江苏 counts it)
    assert await refresh_progress() == 4
    await _all_levels(client, pw, "students", SIZES)
    body = (await read(client, pw, Role.sysadmin, region_code="330000")).json()
    assert body["node"] == {
        "level": "province",
        "name": "浙江省",
        "region_code": "330000",
        "school_id": None,
        "class_id": None,
    }
    # one level down: the cities, with their totals
    children = body["children"]
    assert [(c["node"]["region_code"], c["counts"]["students"]) for c in children["items"]] == [
        ("330100", 8),
        ("330200", 1),
    ]
    assert children["total"] == 2
    assert body["schools_waiting"] == 0
    county = (await read(client, pw, Role.sysadmin, region_code="330106")).json()
    assert [c["node"]["name"] for c in county["children"]["items"]] == ["学校A"]
    school = (await read(client, pw, Role.sysadmin, school_id=pw.world.schools["A"])).json()
    assert [
        (c["node"]["class_id"], c["counts"]["students"]) for c in school["children"]["items"]
    ] == [
        (pw.world.classes["A1"], 4),
        (pw.world.classes["A2"], 2),
    ]
    klass = (await read(client, pw, Role.sysadmin, class_id=pw.world.classes["A1"])).json()
    assert klass["children"] == {"items": [], "page": 1, "page_size": 50, "total": 0}
    # a county's schools page
    paged = (await read(client, pw, Role.sysadmin, region_code="330100", page_size=1)).json()
    assert (len(paged["children"]["items"]), paged["children"]["total"]) == (1, 2)


async def _form_ids(student_ids: list[int]) -> list[str]:
    rows = await IssuedForm.select(IssuedForm.student, IssuedForm.form_id).where(
        IssuedForm.student.is_in(student_ids) & IssuedForm.superseded_at.is_null()
    )
    by_student = {r["student"]: r["form_id"] for r in rows}
    return [by_student[s] for s in student_ids]


async def test_forms_issued_and_paper_returned_ticked_and_unticked(
    client: httpx.AsyncClient, pw: ProgressWorld
) -> None:
    await issue_forms(client, pw.world, "A1")
    await issue_forms(client, pw.world, "A2")
    await refresh_progress()
    await _all_levels(client, pw, "forms_issued", {"A1": 4, "A2": 2})
    await _all_levels(client, pw, "paper_returned", {})

    teacher = await pw.headers(client, Role.teacher)  # A1's teacher
    forms = await _form_ids(pw.students["A1"])
    for form_id in forms[:3]:
        ticked = await client.post(f"/forms/{form_id}/paper-returned", headers=teacher)
        assert ticked.status_code == 200, ticked.text
        assert ticked.json()["paper_returned"] is True
    again = await client.post(f"/forms/{forms[0]}/paper-returned", headers=teacher)
    assert (
        again.json()["paper_returned_at"]
        == (await client.post(f"/forms/{forms[0]}/paper-returned", headers=teacher)).json()[
            "paper_returned_at"
        ]
    )  # a second tap changes nothing
    untick = await client.post(f"/forms/{forms[2]}/paper-not-returned", headers=teacher)
    assert untick.json()["paper_returned"] is False
    registrar = await pw.headers(client, Role.registrar)
    a2_form = (await _form_ids(pw.students["A2"]))[0]
    assert (
        await client.post(f"/forms/{a2_form}/paper-returned", headers=registrar)
    ).status_code == 200
    await refresh_progress()
    await _all_levels(client, pw, "paper_returned", {"A1": 2, "A2": 1})

    checklist = await client.get(
        f"/campaigns/{pw.campaign}/classes/{pw.world.classes['A1']}/paper-returns",
        headers=teacher,
    )
    assert checklist.status_code == 200, checklist.text
    returned = {i["student_id"]: i["form"]["paper_returned"] for i in checklist.json()["items"]}
    assert returned == dict(zip(pw.students["A1"], [True, True, False, False], strict=True))

    # printing the class again supersedes its forms: the new ones start unreturned
    await issue_forms(client, pw.world, "A1")
    superseded = await client.post(f"/forms/{forms[3]}/paper-returned", headers=teacher)
    assert (superseded.status_code, superseded.json()["code"]) == (409, "form_superseded")
    await refresh_progress()
    await _all_levels(client, pw, "forms_issued", {"A1": 4, "A2": 2})
    await _all_levels(client, pw, "paper_returned", {"A2": 1})


async def test_the_tick_is_the_class_desks_alone_and_audited(
    client: httpx.AsyncClient, pw: ProgressWorld
) -> None:
    from tests.records.requests import audit_rows

    await issue_forms(client, pw.world, "A1")
    await issue_forms(client, pw.world, "A2")
    form = (await _form_ids(pw.students["A1"]))[0]
    a2_form = (await _form_ids(pw.students["A2"]))[0]
    for role in (Role.school_leader, Role.county_reviewer, Role.parent):
        refused = await client.post(
            f"/forms/{form}/paper-returned", headers=await pw.headers(client, role)
        )
        assert (refused.status_code, refused.json()["code"]) == (403, "paper_return_desk_only")
    teacher = await pw.headers(client, Role.teacher)
    # another class's form answers like a missing one, and the attempt is audited
    outside = await client.post(f"/forms/{a2_form}/paper-returned", headers=teacher)
    assert (outside.status_code, outside.json()["code"]) == (404, "not_found")
    assert await audit_rows("access_denied", "issued_form", a2_form)
    missing = await client.post("/forms/NOSUCHFORM/paper-returned", headers=teacher)
    assert missing.status_code == 404
    done = await client.post(f"/forms/{form}/paper-returned", headers=teacher)
    assert done.status_code == 200
    row = await IssuedForm.select().where(IssuedForm.form_id == form).first()
    assert row is not None
    assert row["paper_returned_by"] == pw.world.accounts[Role.teacher]
    assert [r["entity_id"] for r in await audit_rows("paper_returned", "issued_form")] == [
        str(row["id"])
    ]
    await client.post(f"/forms/{form}/paper-not-returned", headers=teacher)
    assert len(await audit_rows("paper_return_cleared", "issued_form")) == 1
    await client.post(f"/forms/{form}/paper-not-returned", headers=teacher)  # nothing to undo
    assert len(await audit_rows("paper_return_cleared", "issued_form")) == 1


VERDICTS = ("matches", "differs", "corrections_written", "unsigned")


async def test_photos_count_each_familys_last_photo_by_its_verdict(
    client: httpx.AsyncClient, pw: ProgressWorld
) -> None:
    await issue_forms(client, pw.world, "A1")
    a1 = pw.students["A1"]
    start = datetime.now(UTC) - timedelta(hours=1)
    for i, (student, verdict) in enumerate(zip(a1, VERDICTS, strict=True)):
        await checked_photo(pw, student, verdict, at=start + timedelta(minutes=i))
    # B1's first child sent a photo to retake, then a good one; the second's is being checked
    b1 = pw.students["B1"]
    await checked_photo(pw, b1[0], "retake", at=start)
    await checked_photo(pw, b1[0], "matches", at=start + timedelta(minutes=5))
    await checked_photo(pw, b1[1], "uploaded", at=start)
    await refresh_progress()
    await _all_levels(client, pw, "photos_uploaded", {"A1": 4, "B1": 2})
    province = await counts(client, pw, region_code="330000")
    assert province["verdicts"] == {
        "matches": 2,
        "differs": 1,
        "corrections_written": 1,
        "unsigned": 1,
        "undated": 0,
        "retake": 0,  # B1's retake was followed by a photo that matched
        "not_this_form": 0,
        "record_changed": 0,
        "form_superseded": 0,
        "check_failed": 0,
        "checking": 1,
    }
    b = await counts(client, pw, class_id=pw.world.classes["B1"])
    assert (b["verdicts"]["matches"], b["verdicts"]["checking"]) == (1, 1)

    # a family whose matching photo is followed by one to retake is counted as retake
    await checked_photo(pw, a1[0], "retake", at=datetime.now(UTC))
    await refresh_progress()
    a = await counts(client, pw, class_id=pw.world.classes["A1"])
    assert (a["verdicts"]["matches"], a["verdicts"]["retake"], a["photos_uploaded"]) == (0, 1, 4)


async def test_corrections_pending_by_step_then_entered(
    client: httpx.AsyncClient, pw: ProgressWorld
) -> None:
    from tests.records.test_change_requests import create

    registrar = await as_role(client, pw.world, Role.registrar)
    student = pw.students["A1"][0]
    made = await create(client, registrar, student, "health", "2")
    assert made.status_code == 201, made.text
    other = await create(client, registrar, pw.students["A2"][0], "health", "3")
    assert other.status_code == 201, other.text
    await refresh_progress()
    pending = await counts(client, pw, region_code="330000")
    assert pending["pending_by_step"] == {
        "check": 0,
        "enter": 0,
        "approve": 2,  # the registrar's own entry is approved at once; a leader approves
        "review": 0,
        "arbitrate": 0,
    }
    assert pending["corrections_entered"] == 0
    leader = await as_role(client, pw.world, Role.school_leader)
    done = await decide(client, leader, made.json()["current_step"]["id"])
    assert done.status_code == 200, done.text
    await refresh_progress()
    await _all_levels(client, pw, "corrections_entered", {"A1": 1})
    after = await counts(client, pw, class_id=pw.world.classes["A2"])
    assert after["pending_by_step"]["approve"] == 1
    assert (await counts(client, pw, class_id=pw.world.classes["A1"]))["pending_by_step"][
        "approve"
    ] == 0


async def test_a_step_falls_overdue_when_its_day_passes_without_any_write(
    client: httpx.AsyncClient, pw: ProgressWorld
) -> None:
    from tests.records.test_change_requests import create

    registrar = await as_role(client, pw.world, Role.registrar)
    made = await create(client, registrar, pw.students["A1"][0], "health", "2")
    step = made.json()["current_step"]
    await refresh_progress()
    assert (await counts(client, pw, region_code="330106"))["steps_overdue"] == 0
    # The night after the due date: the nightly recount marks every school of the campaign
    # and the refresh, counting "today" as that day, finds the step overdue.
    due = date.fromisoformat(step["due_on"])
    night = datetime(due.year, due.month, due.day, 16, 30, tzinfo=UTC) + timedelta(days=1)
    assert not await ProgressMark.count()
    assert await progress_refresh.mark_live_regions(night) == 3  # schools A, B and C
    await progress_refresh.refresh(now=night)
    await _all_levels(client, pw, "steps_overdue", {"A1": 1})
    # deciding it takes it off
    leader = await as_role(client, pw.world, Role.school_leader)
    assert (await decide(client, leader, step["id"])).status_code == 200
    await progress_refresh.refresh(now=night)
    await _all_levels(client, pw, "steps_overdue", {})
    assert await ReviewStep.count().where(ReviewStep.state == "current") == 0


async def _write(pw: ProgressWorld, registry_number: str, birth: date, id_birth: date) -> int:
    from backend.accounts.tables import SchoolClass

    klass = await SchoolClass.select().where(SchoolClass.id == pw.world.classes["A2"]).first()
    assert klass is not None
    values = {
        "name": "问题学生",
        "sex": "1",
        "birth_date": birth.isoformat(),
        "ethnicity": "01",
        "nationality": "CN",
        "id_type": "1",
        "id_number": make_resident_id("330106", id_birth, 77, "1"),
        "current_address": "浙江省杭州市西湖区文三路1号",
        "guardian1_name": "家长",
        "guardian1_relation": "1",
        "guardian1_phone": "13922229999",
    }
    record = RecordIn(registry_number, klass["school"], klass["id"], klass["region_code"], values)
    async with transaction():
        summary = await write_records(SYSTEM, [record])
    return summary.student_ids[0]


async def test_problem_records_open_and_close(client: httpx.AsyncClient, pw: ProgressWorld) -> None:
    # an ID number whose birth date is not the record's: a problem record of school A
    await _write(pw, "J3301069999000001", date(2017, 3, 1), date(2017, 4, 2))
    await problems.refresh()
    await refresh_progress()
    await _all_levels(client, pw, "problems_open", {"A2": 1})
    await _all_levels(client, pw, "students", {**SIZES, "A2": 3})
    # the record corrected: the check passes, the case resolves
    await _write(pw, "J3301069999000001", date(2017, 4, 2), date(2017, 4, 2))
    await problems.refresh()
    await refresh_progress()
    await _all_levels(client, pw, "problems_open", {})


async def test_a_student_moving_school_moves_its_counts(
    client: httpx.AsyncClient, pw: ProgressWorld
) -> None:
    from backend.records.moves import move_student

    await issue_forms(client, pw.world, "A1")
    student = pw.students["A1"][0]
    await checked_photo(pw, student, "matches")
    await refresh_progress()
    await move_student(SYSTEM, student, pw.world.classes["B1"])
    await refresh_progress()
    # the photo follows the child; the old school's form is superseded (its paper names A)
    await _all_levels(client, pw, "students", {**SIZES, "A1": 3, "B1": 3})
    await _all_levels(client, pw, "photos_uploaded", {"B1": 1})
    await _all_levels(client, pw, "forms_issued", {"A1": 3})


async def test_the_series_gives_each_china_day_and_running_totals(
    client: httpx.AsyncClient, pw: ProgressWorld
) -> None:
    await issue_forms(client, pw.world, "A1")
    a1 = pw.students["A1"]
    # two days ago (China time) one photo; today, two more, one matching
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    await checked_photo(pw, a1[0], "differs", at=two_days_ago)
    await checked_photo(pw, a1[1], "matches")
    await checked_photo(pw, a1[2], "unsigned")
    await refresh_progress()
    response = await client.get(
        f"/campaigns/{pw.campaign}/progress/series",
        params={"region_code": "330100"},
        headers=await pw.headers(client, Role.city_admin),
    )
    assert response.status_code == 200, response.text
    days = response.json()["days"]
    china = timedelta(hours=8)
    first_day = (two_days_ago + china).date().isoformat()
    today = (datetime.now(UTC) + china).date().isoformat()
    assert [d["day"] for d in days] == [first_day, today]
    assert days[0]["events"]["photos_uploaded"] == 1
    assert days[1]["events"]["photos_uploaded"] == 2
    assert days[1]["events"]["photos_matches"] == 1
    assert days[1]["events"]["forms_issued"] == 4
    assert days[1]["totals"]["photos_uploaded"] == 3
    # the school's series is the same; a class (a teacher) has none
    school = await client.get(
        f"/campaigns/{pw.campaign}/progress/series",
        params={"school_id": pw.world.schools["A"]},
        headers=await pw.headers(client, Role.registrar),
    )
    assert school.json()["days"] == days
    teacher = await client.get(
        f"/campaigns/{pw.campaign}/progress/series", headers=await pw.headers(client, Role.teacher)
    )
    assert (teacher.status_code, teacher.json()["code"]) == (400, "no_class_series")


async def test_as_of_says_how_fresh_the_counts_are(
    client: httpx.AsyncClient, pw: ProgressWorld, app: Any, settings: Settings
) -> None:
    from tests.factories import run_jobs

    await refresh_progress()
    before = datetime.now(UTC)
    fresh = (await read(client, pw, Role.sysadmin, region_code="330106")).json()
    assert (fresh["schools_waiting"], datetime.fromisoformat(fresh["as_of"]) >= before) == (
        0,
        True,
    )
    await Student.update({Student.name: "改名"}).where(Student.id == pw.students["A1"][0])
    stale = (await read(client, pw, Role.sysadmin, region_code="330106")).json()
    assert stale["schools_waiting"] == 1
    assert datetime.fromisoformat(stale["refreshed_at"]) <= before
    assert datetime.fromisoformat(stale["as_of"]) <= datetime.now(UTC)
    # 宁波's counts are not waiting for 西湖区's change
    assert (await read(client, pw, Role.sysadmin, region_code="330200")).json()[
        "schools_waiting"
    ] == 0
    # the worker's job (as its cron runs it) counts the school again
    await app.state.arq.enqueue_job("refresh_progress_job", _job_id="progress-now")
    await run_jobs(app, settings)
    assert (await read(client, pw, Role.sysadmin, region_code="330106")).json()[
        "schools_waiting"
    ] == 0


async def test_the_export_helper_gives_the_nodes_table_within_the_callers_scope(
    client: httpx.AsyncClient, pw: ProgressWorld
) -> None:
    from backend.accounts.principal import Principal
    from backend.accounts.scope import Scope
    from backend.accounts.tables import Account
    from backend.errors import Forbidden, NotFound
    from backend.reports.progress import NodeQuery, progress_table

    await issue_forms(client, pw.world, "A1")
    await refresh_progress()

    async def principal(role: Role) -> Principal:
        row = await Account.select().where(Account.id == pw.world.accounts[role]).first()
        assert row is not None
        return Principal(
            row["id"], role, row["name"], row["phone"], Scope.of_account(row), None, False
        )  # type: ignore[arg-type]

    county = await principal(Role.county_reviewer)
    rows = await progress_table(county, SYSTEM, pw.campaign)
    assert [(r["level"], r["key"], r["students"], r["forms_issued"]) for r in rows] == [
        ("county", "330106", 6, 4),
        ("school", str(pw.world.schools["A"]), 6, 4),
    ]
    school = await progress_table(
        county, SYSTEM, pw.campaign, NodeQuery(school_id=pw.world.schools["A"])
    )
    assert [r["name"] for r in school] == ["学校A", "A1班", "A2班"]
    with pytest.raises(NotFound):
        await progress_table(county, SYSTEM, pw.campaign, NodeQuery(region_code="330100"))
    with pytest.raises(Forbidden):
        await progress_table(await principal(Role.parent), SYSTEM, pw.campaign)


async def test_writes_racing_refreshes_are_all_counted(
    client: httpx.AsyncClient, pw: ProgressWorld
) -> None:
    """Ticks committed while refreshes run (two at once, as two workers would) are never lost
    between a count and its mark: after the writes, one more refresh gives the truth."""
    import asyncio

    await issue_forms(client, pw.world, "A1")
    await issue_forms(client, pw.world, "A2")
    registrar = await pw.headers(client, Role.registrar)
    forms = await _form_ids(pw.students["A1"] + pw.students["A2"])
    stop = asyncio.Event()

    async def keep_refreshing() -> None:
        while not stop.is_set():
            await refresh_progress()
            await asyncio.sleep(0)

    async def tick_all() -> None:
        for form_id in forms:
            done = await client.post(f"/forms/{form_id}/paper-returned", headers=registrar)
            assert done.status_code == 200, done.text
        stop.set()

    await asyncio.gather(keep_refreshing(), keep_refreshing(), tick_all())
    await refresh_progress()
    await _all_levels(client, pw, "paper_returned", {"A1": 4, "A2": 2})
    assert await ProgressMark.count() == 0

"""The daily reminders with a frozen clock across the National Day holiday of 2026 (1–7
October; Sunday 20 September and Saturday 10 October are make-up workdays): the run happens
once per working day at or after 08:30 China time, never twice, and tells approvers what
waits on them, what is due soon, and what is overdue (to the level above as well), once per
step, kind and person; their pushes wait out quiet hours; a decided step is told nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.config import Settings, settings_from_env
from backend.db import transaction
from backend.notify import schedule
from backend.notify.schedule import Run, run_if_due
from backend.notify.tables import Notification, Preference
from backend.outbox import Outbox
from backend.parents.tables import Upload, UploadStatus
from backend.records import reminders
from backend.records.chains import CHECK, ENTER, Seat, StepSpec
from backend.records.review_tables import ReviewStep, StepKind, StepState, SubjectKind
from backend.records.reviews import open_round, place_of
from backend.records.tables import Campaign, GuardianLink, Student
from backend.workdays import CHINA
from tests.factories import World, add_direct_schools, build_world, make_account, make_students

APPROVE = StepSpec(StepKind.approve, Seat.school, Role.school_leader, True)
REVIEW = StepSpec(StepKind.review, Seat.authority)


def china(day: date, at: time = time(8, 35)) -> datetime:
    return datetime.combine(day, at, CHINA).astimezone(UTC)


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    await add_direct_schools(world, settings)
    world.students = await make_students(world, "A1", 2)
    world.students += await make_students(world, "E1", 1, start=10)
    return world


async def make_step(student_id: int, spec: StepSpec, due_on: date, subject_id: int) -> int:
    async with transaction():
        step = await open_round(
            SubjectKind.change_request, subject_id, 1, [spec], await place_of(student_id)
        )
    assert step is not None
    await ReviewStep.update({ReviewStep.due_on: due_on}).where(ReviewStep.id == step)
    return step


Told = tuple[int, str, int | None]  # account, category, step


async def told(after: int = 0) -> set[Told]:
    rows = await Notification.select(
        Notification.account, Notification.category, Notification.subject_id
    ).where(Notification.id > after)
    return {(row["account"], row["category"], row["subject_id"]) for row in rows}


async def run_on(app: Litestar, moment: datetime) -> set[Told]:
    """One tick of the worker at `moment`; what it newly told."""
    last = await Notification.select(Notification.id).order_by(Notification.id, ascending=False)
    await run_if_due(Outbox(app.state.arq), moment)
    return await told(last[0]["id"] if last else 0)


def aware(moment: Any) -> datetime | None:
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


async def test_once_per_working_day_at_the_hour_and_never_twice(
    app: Litestar, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox = Outbox(app.state.arq)
    ran: list[date] = []

    async def count(run: Run) -> int:
        ran.append(run.today)
        return 0

    monkeypatch.setitem(schedule._daily, "zz_count", count)
    assert await run_if_due(outbox, china(date(2026, 9, 30), time(8, 29))) is None
    assert await run_if_due(outbox, china(date(2026, 10, 1), time(9, 0))) is None  # 国庆
    assert await run_if_due(outbox, china(date(2026, 10, 11), time(9, 0))) is None  # Sunday
    # Two workers ticking at once: one runs the day.
    both = await asyncio.gather(
        run_if_due(outbox, china(date(2026, 9, 30), time(8, 31))),
        run_if_due(outbox, china(date(2026, 9, 30), time(8, 31))),
    )
    assert sorted(result is None for result in both) == [False, True]
    assert await run_if_due(outbox, china(date(2026, 9, 30), time(15, 0))) is None
    # The make-up Saturday is a working day; a worker down at 08:30 catches up that day.
    assert await run_if_due(outbox, china(date(2026, 10, 10), time(16, 40))) is not None
    assert ran == [date(2026, 9, 30), date(2026, 10, 10)]


async def test_a_run_that_crashed_half_way_runs_again_and_writes_nothing_twice(
    app: Litestar, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    registrar = world.accounts[Role.registrar]
    step = await make_step(world.students[0], ENTER, date(2026, 10, 9), 1)

    async def crash(run: Run) -> int:
        raise RuntimeError("the worker died here")

    monkeypatch.setitem(schedule._daily, "zz_crash", crash)  # runs after review_steps
    with pytest.raises(RuntimeError):
        await run_on(app, china(date(2026, 10, 8)))
    assert await told() == {
        (registrar, "review_digest", None),
        (registrar, "step_due_soon", step),
    }
    monkeypatch.delitem(schedule._daily, "zz_crash")
    assert await run_on(app, china(date(2026, 10, 8), time(8, 40))) == set()
    assert await Notification.count() == 2


async def test_across_the_holiday_the_right_people_are_told_once(
    app: Litestar, world: World
) -> None:
    accounts = world.accounts
    teacher, registrar, leader = (
        accounts[Role.teacher],
        accounts[Role.registrar],
        accounts[Role.school_leader],
    )
    county, city = accounts[Role.county_reviewer], accounts[Role.city_admin]
    county_2 = world.staff["county_reviewer_2"][0]
    leader_e = world.staff["leader_E"][0]
    a1, a2, e1 = world.students
    check = await make_step(a1, CHECK, date(2026, 10, 8), 1)  # the teacher's
    enter = await make_step(a2, ENTER, date(2026, 10, 9), 2)  # school A's registrar's
    review = await make_step(a1, REVIEW, date(2026, 10, 12), 3)  # the county's
    approve_e = await make_step(e1, APPROVE, date(2026, 10, 9), 4)  # city-run school E
    decided = await make_step(a2, ENTER, date(2026, 9, 29), 5)
    await ReviewStep.update({ReviewStep.state: StepState.approved.value}).where(
        ReviewStep.id == decided
    )

    # Wednesday 30 September: the teacher's check has 2 working days left (30th, 8th).
    assert await run_on(app, china(date(2026, 9, 30))) == {
        (teacher, "review_digest", None),
        (registrar, "review_digest", None),
        (leader_e, "review_digest", None),
        (county, "review_digest", None),
        (county_2, "review_digest", None),
        (teacher, "step_due_soon", check),
    }
    digest = await Notification.select().where(Notification.account == teacher).first()
    assert digest is not None
    assert digest["title"] == "您有 1 条待办，其中 1 条即将到期"
    # The holiday, and the worker ticking through it: nothing.
    for day in range(1, 8):
        assert await run_on(app, china(date(2026, 10, day), time(10, 0))) == set()
    # Thursday 8 October: the registrar's and school E's leader's steps are due soon.
    assert await run_on(app, china(date(2026, 10, 8))) == {
        (teacher, "review_digest", None),
        (registrar, "review_digest", None),
        (leader_e, "review_digest", None),
        (county, "review_digest", None),
        (county_2, "review_digest", None),
        (registrar, "step_due_soon", enter),
        (leader_e, "step_due_soon", approve_e),
    }
    # Friday 9th: the teacher's check is overdue: the teacher, and the school's registrar.
    new = await run_on(app, china(date(2026, 10, 9)))
    assert {item for item in new if item[1] != "review_digest"} == {
        (teacher, "step_overdue", check),
        (registrar, "step_escalated", check),
    }
    # Saturday 10th, a make-up workday: the registrar's entry → the school's leader; school
    # E's leader's approval → the city, which administers school E; the county's review has
    # two working days left (10th, 12th).
    new = await run_on(app, china(date(2026, 10, 10)))
    assert {item for item in new if item[1] != "review_digest"} == {
        (county, "step_due_soon", review),
        (county_2, "step_due_soon", review),
        (registrar, "step_overdue", enter),
        (leader, "step_escalated", enter),
        (leader_e, "step_overdue", approve_e),
        (city, "step_escalated", approve_e),
    }
    assert await run_on(app, china(date(2026, 10, 11))) == set()  # Sunday
    # Tuesday 13th: the county's review → the city.
    new = await run_on(app, china(date(2026, 10, 13)))
    assert {item for item in new if item[1] != "review_digest"} == {
        (county, "step_overdue", review),
        (county_2, "step_overdue", review),
        (city, "step_escalated", review),
    }
    assert decided not in {item[2] for item in await told()}
    # The day's run again, however late (its done mark lost): no second notice of anything.
    await app.state.arq.delete(schedule.done_key(date(2026, 10, 13)))
    assert await run_on(app, china(date(2026, 10, 13), time(18, 0))) == set()
    # No names, ID numbers or phones in what was written.
    rows = await Notification.select(Notification.title, Notification.body)
    text = " ".join(row["title"] + row["body"] for row in rows)
    assert "学生" not in text
    assert "registrar" not in text
    assert "1380000" not in text


async def test_pushes_wait_out_quiet_hours_and_an_overdue_notice_cannot_be_turned_off(
    app: Litestar, world: World
) -> None:
    teacher, registrar = world.accounts[Role.teacher], world.accounts[Role.registrar]
    a1, a2, _ = world.students
    check = await make_step(a1, CHECK, date(2026, 10, 9), 1)
    enter = await make_step(a2, ENTER, date(2026, 10, 9), 2)
    await Preference.insert(
        Preference(
            account=teacher,
            muted=["step_overdue", "step_due_soon", "review_digest"],
            updated_at=datetime.now(UTC),
        )
    )
    # The worker was down all day: it catches up at 22:10, inside the quiet hours.
    late = china(date(2026, 10, 10), time(22, 10))
    await run_on(app, late)
    rows = {
        (row["account"], row["category"]): row
        for row in await Notification.select().where(Notification.subject_id.is_in([check, enter]))
    }
    next_morning = china(date(2026, 10, 11), time(7, 30))
    assert aware(rows[(registrar, "step_overdue")]["push_at"]) == next_morning
    assert aware(rows[(registrar, "step_overdue")]["created_at"]) == late  # the inbox at once
    assert aware(rows[(teacher, "step_overdue")]["push_at"]) == next_morning  # muted: still
    digest = (
        await Notification.select()
        .where((Notification.account == teacher) & (Notification.category == "review_digest"))
        .first()
    )
    assert digest is not None
    assert digest["push_at"] is None
    # At the hour, on time; what the teacher turned off goes to the inbox only.
    soon = await make_step(a1, CHECK, date(2026, 10, 13), 3)
    morning = china(date(2026, 10, 12))
    await run_on(app, morning)
    due = await Notification.select().where(Notification.subject_id == soon).first()
    assert due is not None
    assert due["category"] == "step_due_soon"
    assert due["push_at"] is None
    digest = (
        await Notification.select()
        .where((Notification.account == registrar) & (Notification.category == "review_digest"))
        .order_by(Notification.id, ascending=False)
        .first()
    )
    assert digest is not None
    assert aware(digest["push_at"]) == morning
    assert digest["title"] == "您有 1 条待办，其中 0 条即将到期"
    assert digest["body"] == "已逾期 1 条，请尽快处理"


def test_due_soon_until_counts_working_days() -> None:
    assert reminders.due_soon_until(date(2026, 9, 30)) == date(2026, 10, 8)
    assert reminders.due_soon_until(date(2026, 10, 9)) == date(2026, 10, 11)  # make-up Sat
    assert reminders.due_soon_until(date(2026, 10, 10)) == date(2026, 10, 12)


@pytest.mark.parametrize("transfer_open", [False, True])
async def test_before_the_window_closes_families_and_class_teachers_are_told_once(
    app: Litestar, world: World, settings: Settings, transfer_open: bool
) -> None:
    """With a transfer open on a1 (no form printed for it, checked once it is done), its
    family is not told and its class has no family left to chase."""
    a1, a2, _ = world.students
    if transfer_open:
        await Student.update({Student.open_change: 1}).where(Student.id == a1)
    parent = world.accounts[Role.parent]
    other_parent = await make_account(settings, Role.parent, "13500000009", name="家长乙")
    teacher_a1, teacher_e1 = world.accounts[Role.teacher], world.staff["teacher_E1"][0]
    now = datetime.now(UTC)
    [campaign] = await Campaign.insert(
        Campaign(
            region_code="330000",
            name="核查",
            starts_at=china(date(2026, 9, 1), time(0, 0)),
            ends_at=china(date(2026, 10, 13), time(0, 0)),  # the last day: Monday 12th
            created_by=world.accounts[Role.province_admin],
            created_at=now,
        )
    ).returning(Campaign.id)
    await GuardianLink.insert(
        GuardianLink(account=parent, student=a1, created_at=now),
        GuardianLink(account=other_parent, student=a2, created_at=now),
    )
    student = await Student.select().where(Student.id == a2).first()
    assert student is not None
    await Upload.insert(  # a2's family uploaded a photo that matched
        Upload(
            student=a2,
            campaign=campaign["id"],
            school=student["school"],
            school_class=student["school_class"],
            region_code=student["region_code"],
            uploaded_by=other_parent,
            storage_key="x",
            content_hash="0" * 64,
            width=1,
            height=1,
            status=UploadStatus.matches.value,
            created_at=now,
        )
    )
    # Friday 9th: three working days left (9th, the make-up Saturday, 12th): not yet.
    new = await run_on(app, china(date(2026, 10, 9)))
    assert {item for item in new if item[1] in ("campaign_closing", "upload_nudge")} == set()
    # Saturday 10th (make-up workday): two left.
    new = await run_on(app, china(date(2026, 10, 10)))
    if transfer_open:
        assert new == {(teacher_e1, "upload_nudge", world.classes["E1"])}
        return
    assert new == {
        (parent, "campaign_closing", campaign["id"]),
        (teacher_a1, "upload_nudge", world.classes["A1"]),
        (teacher_e1, "upload_nudge", world.classes["E1"]),
    }
    nudge = await Notification.select().where(Notification.account == teacher_a1).first()
    assert nudge is not None
    assert nudge["title"] == "本班还有 1 户家庭未上传确认表"
    assert nudge["subject_kind"] == "class"
    # Monday 12th, the last day: nothing twice.
    new = await run_on(app, china(date(2026, 10, 12)))
    assert {item for item in new if item[1] in ("campaign_closing", "upload_nudge")} == set()


def test_the_digest_hour_is_a_setting_read_as_china_time() -> None:
    env = {"JWT_KEYS": "k:" + "x" * 40, "AUDIT_KEY": "a:" + "y" * 40, "FORM_TOKEN_KEY": "f"}
    assert settings_from_env(env).digest_at == "08:30"
    later = settings_from_env({**env, "DIGEST_AT": "09:15"})
    assert schedule.digest_time(later.digest_at) == time(9, 15)
    assert not schedule.is_run_time(china(date(2026, 10, 9), time(9, 0)), time(9, 15))
    assert schedule.is_run_time(china(date(2026, 10, 9), time(9, 15)), time(9, 15))
    for wrong in ("8:30", "24:00", "morning"):
        with pytest.raises(ValueError, match="DIGEST_AT"):
            settings_from_env({**env, "DIGEST_AT": wrong})

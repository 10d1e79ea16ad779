"""Transfers written straight to the tables (`StatusChange` and its `ReviewStep` rows) as the
foundation defines them, for the bulletin's and the queue's tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from backend.accounts.tables import School
from backend.records.review_tables import ReviewStep, SubjectKind
from backend.records.tables import Student
from backend.transfers.tables import StatusChange
from backend.workdays import CHINA, due_date


def at(day: str, hour: int = 9) -> datetime:
    """A moment of a China date."""
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), CHINA).replace(hour=hour)


@dataclass(frozen=True)
class Step:
    """One step: `kind`, whose side (`receiving` or not), its role and seat, when it became
    current and when it was decided (None: still current; `became` None: still waiting)."""

    kind: str
    receiving: bool
    role: str
    seat_region: str | None = None
    became: datetime | None = None
    decided: datetime | None = None
    state: str | None = None  # default: approved when decided, current when became


async def place(school_id: int) -> dict[str, Any]:
    row = await School.select(School.id, School.region_code).where(School.id == school_id).first()
    assert row is not None
    return row


async def add_change(
    *,
    kind: str,
    student: int,
    applicant: int,
    to_school: int | None = None,
    to_class: int | None = None,
    span: str | None = None,
    state: str = "in_review",
    started_on: str | None = None,
    completed: datetime | None = None,
    reason: str = "随父母工作调动",
    steps: tuple[Step, ...] = (),
) -> int:
    s = await Student.select().where(Student.id == student).first()
    assert s is not None
    to = await place(to_school) if to_school is not None else None
    now = datetime.now(CHINA)
    change = await StatusChange.insert(
        StatusChange(
            kind=kind,
            student=student,
            from_school=s["school"],
            from_class=s["school_class"],
            from_region=s["region_code"],
            to_school=to_school,
            to_class=to_class,
            to_region=to["region_code"] if to else None,
            span=span,
            state=state,
            reason=reason,
            applicant=applicant,
            started_on=date.fromisoformat(started_on) if started_on else None,
            completed_at=completed,
            created_at=now,
            updated_at=now,
        )
    ).returning(StatusChange.id)
    change_id: int = change[0]["id"]
    for position, step in enumerate(steps, start=1):
        side_school = to_school if step.receiving and to_school else s["school"]
        side_class = to_class if step.receiving and to_class else s["school_class"]
        side_region = to["region_code"] if step.receiving and to else s["region_code"]
        state = step.state or (
            "approved" if step.decided else "current" if step.became else "waiting"
        )
        await ReviewStep.insert(
            ReviewStep(
                subject_kind=SubjectKind.status_change.value,
                subject_id=change_id,
                round=1,
                position=position,
                kind=step.kind,
                role=step.role,
                seat_school=None if step.seat_region else side_school,
                seat_region=step.seat_region,
                student=student,
                school=side_school,
                school_class=side_class,
                region_code=side_region,
                state=state,
                became_current_at=step.became,
                due_on=due_date(step.became) if step.became else None,
                decided_at=step.decided,
                decided_by=applicant if step.decided else None,
                created_at=step.became or now,
            )
        )
    return change_id

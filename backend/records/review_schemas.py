"""What the review endpoints take and answer."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec

from backend.accounts.roles import Role
from backend.records.review_tables import StepKind, StepState, SubjectKind
from backend.records.reviews import Decision
from backend.workdays import china_today


class DecisionWrite(msgspec.Struct, forbid_unknown_fields=True):
    decision: Decision
    # why, in Chinese: required to reject or send back, shown to the author (and the parent)
    reason: str = ""


class StepRead(msgspec.Struct):
    id: int
    subject_kind: SubjectKind
    subject_id: int
    round: int
    position: int
    kind: StepKind
    role: Role
    state: StepState
    student_id: int
    due_on: date | None
    overdue: bool
    decided_at: datetime | None
    reason: str


def step_read(row: dict[str, Any]) -> StepRead:
    """A `review_step` row as the API shows it (overdue: China date past its due date)."""
    due = row["due_on"]
    return StepRead(
        id=row["id"],
        subject_kind=row["subject_kind"],
        subject_id=row["subject_id"],
        round=row["round"],
        position=row["position"],
        kind=row["kind"],
        role=row["role"],
        state=row["state"],
        student_id=row["student"],
        due_on=due,
        overdue=due is not None and row["state"] == "current" and china_today() > due,
        decided_at=row["decided_at"],
        reason=row["reason"],
    )

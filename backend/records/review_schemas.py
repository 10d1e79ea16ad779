"""What the review endpoints take and answer."""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from backend.accounts.roles import Role
from backend.records.review_tables import StepKind, StepState, SubjectKind
from backend.records.reviews import Decision


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

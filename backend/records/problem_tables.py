"""Tables of problem records (问题学籍): a case per (student, kind) the school must act on,
from the local checks (`ProblemFlag`) or the national system's list, and the school's actions
on it, each reviewed through `records.reviews` (SubjectKind.problem_action)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from piccolo.columns import (
    Date,
    ForeignKey,
    Serial,
    SmallInt,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from backend.accounts.scope_rules import (
    OnMove,
    Scope,
    ScopedColumns,
    declare_related,
    declare_scoped,
    national_arbiter,
)
from backend.accounts.tables import Account, School, SchoolClass
from backend.records.review_tables import ChangeRequest
from backend.records.tables import Student
from backend.statuses import Lifecycle


class CaseKind(StrEnum):
    """The local checks (`records.ids.ProblemKind`) and the national system's kinds."""

    id_invalid = "id_invalid"
    id_birth_mismatch = "id_birth_mismatch"
    id_sex_mismatch = "id_sex_mismatch"
    duplicate_id = "duplicate_id"
    duplicate_id_in_school = "duplicate_id_in_school"
    id_not_found = "id_not_found"  # 身份证号不存在 (national list)
    name_id_mismatch = "name_id_mismatch"  # 姓名与身份证号不匹配 (national list)
    national_duplicate = "national_duplicate"  # 重复 (national list)
    roll_not_here = "roll_not_here"  # 在籍不在班: the class roll found no child (`records.roll`)


class CaseSource(StrEnum):
    local = "local"  # the registry's own checks, recomputed when a record is written
    national = "national"  # the national system's list, imported by an authority
    roll = "roll"  # the registrar deleting a record the class roll found no child for


class CaseState(StrEnum):
    """Where a case stands (`CASE_STATE`)."""

    open = "open"  # the school must act
    in_review = "in_review"  # an action waits for the administering authority
    sent_back = "sent_back"  # the authority sent the action back: the school amends it
    corroborated = "corroborated"  # the record is right, evidence accepted (not counted open)
    arbitration = "arbitration"  # a duplicate both schools corroborated: 教育部仲裁
    resolved = "resolved"  # the problem is gone (deleted, changed, or the check passes)


OPEN_STATES = (CaseState.open, CaseState.in_review, CaseState.sent_back, CaseState.arbitration)


class ProblemCase(Table, tablename="problem_case"):
    id = Serial(primary_key=True)
    student = ForeignKey(references=Student, index=True, on_delete=OnDelete.cascade)
    school = ForeignKey(references=School, index=True, on_delete=OnDelete.restrict)
    school_class = ForeignKey(references=SchoolClass, index=True, on_delete=OnDelete.restrict)
    region_code = Varchar(length=6, index=True)
    kind = Varchar(length=24, index=True)  # CaseKind
    source = Varchar(length=10)  # CaseSource
    state = Varchar(length=14, default=CaseState.open.value, index=True)
    detail = Text(default="")  # what the check or the national list said
    reason = Text(default="")  # the reviewer's last reason (rejected, sent back, arbitrated)
    # The ID number the case is about, for duplicates (kept as the record had it then).
    id_number = Varchar(length=30, null=True, default=None, index=True)
    due_on = Date(null=True, default=None)  # the school's own deadline to act
    created_at = Timestamptz()
    updated_at = Timestamptz()
    resolved_at = Timestamptz(null=True, default=None)


CASE_STATE = Lifecycle(
    ProblemCase.state,
    {
        CaseState.open: {CaseState.in_review, CaseState.resolved},
        CaseState.in_review: {
            CaseState.open,
            CaseState.sent_back,
            CaseState.corroborated,
            CaseState.arbitration,
            CaseState.resolved,
        },
        CaseState.sent_back: {CaseState.in_review, CaseState.resolved},
        CaseState.corroborated: {CaseState.arbitration, CaseState.resolved, CaseState.open},
        CaseState.arbitration: {CaseState.resolved, CaseState.open},
        # the problem came back: the check fails again, or the national list names it again
        CaseState.resolved: {CaseState.open},
    },
)

# Follows the student: a case is about the record, and whoever holds it now acts on it.
declare_scoped(
    ProblemCase,
    ScopedColumns(
        region=ProblemCase.region_code,
        school=ProblemCase.school,
        school_class=ProblemCase.school_class,
        student=ProblemCase.student,
        on_move=OnMove.follows,
    ),
)


def _arbitrated_by_the_nation(scope: Scope) -> Any:
    """A duplicate in national arbitration is read by the nation's arbiter without a support
    grant: the cases waiting for it, and the one that carries its decision afterwards."""
    if national_arbiter(scope):
        decided = ProblemAction.select(ProblemAction.case).where(
            ProblemAction.action == ActionKind.arbitrate.value
        )
        return (ProblemCase.state == CaseState.arbitration.value) | ProblemCase.id.is_in(decided)
    return None


class ActionKind(StrEnum):
    delete = "delete"  # the student is not at this school: leaves the roll, kept for history
    corroborate = "corroborate"  # 佐证: the record is right, with evidence
    change = "change"  # 变更: a key-data change request with the same evidence
    arbitrate = "arbitrate"  # national arbitration of a duplicate (made by the system)


class ActionState(StrEnum):
    """Where an action stands (`ACTION_STATE`)."""

    in_review = "in_review"
    approved = "approved"
    rejected = "rejected"
    sent_back = "sent_back"


class ProblemAction(Table, tablename="problem_action"):
    """What the school did about a case; reviewed by the authority administering the school
    (a change: through its change request's own review)."""

    id = Serial(primary_key=True)
    case = ForeignKey(references=ProblemCase, index=True, on_delete=OnDelete.cascade)
    action = Varchar(length=12)  # ActionKind
    state = Varchar(length=10, default=ActionState.in_review.value, index=True)
    note = Text(default="")  # the school's explanation
    change_request = ForeignKey(
        references=ChangeRequest, null=True, default=None, on_delete=OnDelete.set_null
    )
    keep_school = ForeignKey(  # arbitration: the school that keeps the record
        references=School, null=True, default=None, on_delete=OnDelete.restrict
    )
    round = SmallInt(default=1)
    student = ForeignKey(references=Student, index=True, on_delete=OnDelete.cascade)
    school = ForeignKey(references=School, index=True, on_delete=OnDelete.restrict)
    school_class = ForeignKey(references=SchoolClass, index=True, on_delete=OnDelete.restrict)
    region_code = Varchar(length=6, index=True)
    author = ForeignKey(references=Account, null=True, default=None, on_delete=OnDelete.restrict)
    decided_reason = Text(default="")
    created_at = Timestamptz()
    updated_at = Timestamptz()


ACTION_STATE = Lifecycle(
    ProblemAction.state,
    {
        ActionState.in_review: {ActionState.approved, ActionState.rejected, ActionState.sent_back},
        ActionState.approved: (),
        ActionState.rejected: (),
        ActionState.sent_back: (),
    },
)

declare_scoped(
    ProblemAction,
    ScopedColumns(
        region=ProblemAction.region_code,
        school=ProblemAction.school,
        school_class=ProblemAction.school_class,
        student=ProblemAction.student,
        on_move=OnMove.follows,
    ),
)

declare_related(ProblemCase, _arbitrated_by_the_nation)

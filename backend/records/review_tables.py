"""Tables of changes and their review: change requests, the evidence attached to what is
reviewed, and the review steps every reviewed thing goes through (`records.reviews`).

A review step belongs to a *subject* (a change request, a problem-record action, later a
transfer) by kind and id, so one queue and one way of deciding serve them all.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from piccolo.columns import (
    Date,
    ForeignKey,
    Integer,
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
from backend.records.tables import Student, confirmed_children
from backend.statuses import Lifecycle


class SubjectKind(StrEnum):
    """What a review step, or a piece of evidence, belongs to."""

    change_request = "change_request"
    problem_action = "problem_action"
    # a piece of evidence only: the proof a record without a resident ID number needs
    # (`records.proofs`), its subject the student
    student_proof = "student_proof"
    # a queue item only: a class-roll mismatch waiting on the school's registrar (no review
    # step: `records.roll_waiting`)
    roll_entry = "roll_entry"
    # a transfer or another status change (学籍异动, `backend.transfers`)
    status_change = "status_change"


class StepKind(StrEnum):
    check = "check"  # the class teacher checks a parent's request first (班主任核对)
    enter = "enter"  # the school's registrar enters it (录入)
    approve = "approve"  # a school leader approves an ordinary change (审核)
    review = "review"  # the administering authority reviews, one by one (审核)
    arbitrate = "arbitrate"  # national arbitration of a duplicate both schools corroborated
    settle = "settle"  # a queue item only: the registrar settles a class-roll mismatch
    # a transfer's steps (第十五条): the receiving school starts it (转入学校启动), the
    # sending school releases it (转出学校核办), then each side's authority reviews it
    start = "start"
    release = "release"
    review_out = "review_out"  # the sending school's authority (转出地学籍主管部门)
    review_in = "review_in"  # the receiving school's authority (转入地学籍主管部门)


class StepState(StrEnum):
    """Where one step stands (`STEP_STATE`): created waiting, current when it is someone's to
    decide (its due date runs from then), then decided once."""

    waiting = "waiting"
    current = "current"
    approved = "approved"
    rejected = "rejected"
    sent_back = "sent_back"  # to the author (or the parent) for evidence or confirmation
    cancelled = "cancelled"  # the subject was withdrawn or replaced before this step decided


class ReviewStep(Table, tablename="review_step"):
    id = Serial(primary_key=True)
    subject_kind = Varchar(length=20)  # SubjectKind
    subject_id = Integer()
    round = SmallInt(default=1)  # a resubmission after a rejection starts a new round
    position = SmallInt()  # 1, 2, … within the round
    kind = Varchar(length=12)  # StepKind
    role = Varchar(length=20)  # the Role that decides it
    # Where the decider sits: the student's class (a teacher), the student's school (a
    # registrar or leader), or an authority's region (a reviewer, a city or province admin).
    seat_school = ForeignKey(
        references=School, null=True, default=None, on_delete=OnDelete.restrict
    )
    seat_class = ForeignKey(
        references=SchoolClass, null=True, default=None, on_delete=OnDelete.restrict
    )
    seat_region = Varchar(length=6, null=True, default=None)
    # Where the student is, for scopes (and for moves)
    student = ForeignKey(references=Student, index=True, on_delete=OnDelete.cascade)
    school = ForeignKey(references=School, index=True, on_delete=OnDelete.restrict)
    school_class = ForeignKey(references=SchoolClass, index=True, on_delete=OnDelete.restrict)
    region_code = Varchar(length=6, index=True)
    state = Varchar(length=12, default=StepState.waiting.value)
    became_current_at = Timestamptz(null=True, default=None)
    due_on = Date(null=True, default=None)  # the last working day to decide it (China time)
    # How many working days its decider has once it becomes current: 10 (第十五条), 60 for a
    # cancellation after death (第二十一条)
    due_days = SmallInt(default=10)
    decided_by = ForeignKey(
        references=Account, null=True, default=None, on_delete=OnDelete.restrict
    )
    decided_at = Timestamptz(null=True, default=None)
    reason = Text(default="")
    created_at = Timestamptz()


STEP_STATE = Lifecycle(
    ReviewStep.state,
    {
        StepState.waiting: {StepState.current, StepState.cancelled},
        StepState.current: {
            StepState.approved,
            StepState.rejected,
            StepState.sent_back,
            StepState.cancelled,
        },
        StepState.approved: (),
        StepState.rejected: (),
        StepState.sent_back: (),
        StepState.cancelled: (),
    },
)


# Follows the student: what is still to decide goes to whoever holds the record now.
declare_scoped(
    ReviewStep,
    ScopedColumns(
        region=ReviewStep.region_code,
        school=ReviewStep.school,
        school_class=ReviewStep.school_class,
        student=ReviewStep.student,
        on_move=OnMove.follows,
    ),
)


def _national_seats(scope: Scope) -> Any:
    """The steps of the nation's own seat (arbitration) are in its arbiter's scope."""
    if national_arbiter(scope):
        return (
            ReviewStep.seat_region.is_null()
            & ReviewStep.seat_school.is_null()
            & ReviewStep.seat_class.is_null()
        )
    return None


declare_related(ReviewStep, _national_seats)


class RequestSource(StrEnum):
    parent = "parent"  # typed by a parent in the app
    transcribed = "transcribed"  # a teacher or registrar transcribing a draft's crop
    registrar = "registrar"  # entered by the registrar directly
    import_file = "import"  # a re-import changing a key field of an existing student
    problem = "problem"  # a problem record's "change" action


class RequestState(StrEnum):
    """Where a change request stands (`REQUEST_STATE`)."""

    in_review = "in_review"  # a step of its chain is current
    returned = "returned"  # sent back to its author (or the parent) to amend or confirm
    rejected = "rejected"  # its author may amend it and submit it again
    withdrawn = "withdrawn"  # by its author, before it was entered
    applied = "applied"  # the last step approved it: the record holds the new value


class ChangeRequest(Table, tablename="change_request"):
    """A request to change one field of one student's record (a guardian's fields included)
    from the value it had when the request was made to a new one."""

    id = Serial(primary_key=True)
    student = ForeignKey(references=Student, index=True, on_delete=OnDelete.cascade)
    school = ForeignKey(references=School, index=True, on_delete=OnDelete.restrict)
    school_class = ForeignKey(references=SchoolClass, index=True, on_delete=OnDelete.restrict)
    region_code = Varchar(length=6, index=True)
    field_code = Varchar(length=40)
    chain = Varchar(length=12)  # catalog.Chain, from the field when it was made
    old_value = Text(default="")
    new_value = Text(default="")
    reason = Text(default="")
    source = Varchar(length=12)  # RequestSource
    state = Varchar(length=12, default=RequestState.in_review.value, index=True)
    round = SmallInt(default=1)
    author = ForeignKey(references=Account, index=True, on_delete=OnDelete.restrict)
    entered_at = Timestamptz(null=True, default=None)  # no withdrawing after this
    applied_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()


REQUEST_STATE = Lifecycle(
    ChangeRequest.state,
    {
        RequestState.in_review: {
            RequestState.returned,
            RequestState.rejected,
            RequestState.withdrawn,
            RequestState.applied,
        },
        RequestState.returned: {RequestState.in_review, RequestState.withdrawn},
        RequestState.rejected: {RequestState.in_review},
        RequestState.withdrawn: (),
        RequestState.applied: (),
    },
)


declare_scoped(
    ChangeRequest,
    ScopedColumns(
        region=ChangeRequest.region_code,
        school=ChangeRequest.school,
        school_class=ChangeRequest.school_class,
        guardian=lambda account_id: ChangeRequest.student.is_in(confirmed_children(account_id)),
        student=ChangeRequest.student,
        on_move=OnMove.follows,
    ),
)


class EvidenceKind(StrEnum):
    id_scan = "id_scan"  # the ID document (both sides): mandatory for a key-data change
    household_register = "household_register"  # 户口簿
    enrolment_proof = "enrolment_proof"  # the school-stamped proof of enrolment (在校证明)
    registration_receipt = "registration_receipt"  # the household registration office's 回执
    residence_proof = "residence_proof"  # 居住证或居住证明 (besides 户口簿, for a transfer)
    transfer_application = "transfer_application"  # 转学申请表, signed by the guardian
    medical_certificate = "medical_certificate"  # 医疗机构诊断证明 (a suspension for illness)
    other = "other"


class Evidence(Table, tablename="evidence"):
    """A photo or scan attached to what is reviewed (same upload rules as the form photos)."""

    id = Serial(primary_key=True)
    subject_kind = Varchar(length=20)  # SubjectKind
    subject_id = Integer()
    kind = Varchar(length=24)  # EvidenceKind
    storage_key = Varchar(length=200)
    content_type = Varchar(length=40)
    size_bytes = Integer()
    student = ForeignKey(references=Student, index=True, on_delete=OnDelete.cascade)
    school = ForeignKey(references=School, index=True, on_delete=OnDelete.restrict)
    school_class = ForeignKey(references=SchoolClass, index=True, on_delete=OnDelete.restrict)
    region_code = Varchar(length=6, index=True)
    uploaded_by = ForeignKey(references=Account, on_delete=OnDelete.restrict)
    created_at = Timestamptz()


declare_scoped(
    Evidence,
    ScopedColumns(
        region=Evidence.region_code,
        school=Evidence.school,
        school_class=Evidence.school_class,
        guardian=lambda account_id: Evidence.student.is_in(confirmed_children(account_id)),
        student=Evidence.student,
        on_move=OnMove.follows,
    ),
)

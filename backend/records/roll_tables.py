"""Tables of the class roll (人籍一致, `records.roll`), of what a province controls in the field
catalog (受控字段, `records.controls`), and of the registry numbers a record has had.

A roll entry is one child of one class in one campaign as its teacher found them: a record
marked *here* or *not here*, or a child sitting in the room with no record (*unregistered*,
no student row yet). What is not *here* waits on the school's registrar until decided.
"""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from backend.accounts.scope_rules import OnMove, Reach, ScopedColumns, declare_scoped
from backend.accounts.tables import Account, School, SchoolClass
from backend.records.problem_tables import ProblemCase
from backend.records.tables import Campaign, Student
from backend.statuses import Lifecycle


class RollMark(StrEnum):
    here = "here"  # the record is a child sitting in the room
    not_here = "not_here"  # a record with no child: the registrar decides what becomes of it
    unregistered = "unregistered"  # a child with no record: the registrar registers them


class AbsenceReason(StrEnum):
    """Why a record's child is not in the room, as the teacher knows it."""

    left = "left"  # 已离校（辍学、出国等）
    transferred = "transferred"  # 已转学
    suspended = "suspended"  # 休学
    never_came = "never_came"  # 从未到校就读
    other = "other"


class RollState(StrEnum):
    """Where an entry stands (`ROLL_STATE`): *here* needs nothing; a mismatch waits on the
    registrar, who records a decision (not here), registers the child or rejects (unregistered)."""

    settled = "settled"
    waiting = "waiting"
    handled = "handled"
    registered = "registered"
    rejected = "rejected"


class RollOutcome(StrEnum):
    """The registrar's decision on a mismatch. On a record whose child is not here, `delete`
    starts the problem-record deletion (a `roll_not_here` case, `RollEntry.problem_case`); the
    others are recorded (transfers and suspensions have no procedure in the service yet). An
    unregistered child is registered (`RollState.registered`, no outcome) or rejected."""

    delete = "delete"  # 删除学籍: starts the problem-record deletion (reviewed by the authority)
    transfer = "transfer"  # 办理转出
    suspend = "suspend"  # 办理休学
    keep = "keep"  # the child does study here after all (a wrong mark, a long absence)
    reject = "reject"  # an unregistered child the school does not register (with a reason)


class RollEntry(Table, tablename="roll_entry"):
    id = Serial(primary_key=True)
    campaign = ForeignKey(references=Campaign, index=True, on_delete=OnDelete.restrict)
    school = ForeignKey(references=School, index=True, on_delete=OnDelete.restrict)
    school_class = ForeignKey(references=SchoolClass, index=True, on_delete=OnDelete.restrict)
    region_code = Varchar(length=6, index=True)
    # The record marked; None for an unregistered child. One entry per record and campaign
    # (unique index in the migration).
    student = ForeignKey(
        references=Student, null=True, default=None, index=True, on_delete=OnDelete.cascade
    )
    mark = Varchar(length=12)  # RollMark
    reason = Varchar(length=12, default="")  # AbsenceReason, for not_here
    note = Text(default="")
    # An unregistered child, as the teacher typed them (checked by the field catalog)
    name = Varchar(length=50, default="")
    sex = Varchar(length=2, default="")
    birth_date = Varchar(length=10, default="")
    state = Varchar(length=12, default=RollState.settled.value, index=True)
    outcome = Varchar(length=12, null=True, default=None)  # RollOutcome, for not_here
    decided_reason = Text(default="")
    decided_by = ForeignKey(
        references=Account, null=True, default=None, on_delete=OnDelete.restrict
    )
    decided_at = Timestamptz(null=True, default=None)
    registered_student = ForeignKey(
        references=Student, null=True, default=None, on_delete=OnDelete.set_null
    )
    marked_by = ForeignKey(references=Account, on_delete=OnDelete.restrict)
    marked_at = Timestamptz()
    updated_at = Timestamptz()
    # The registrar's last working day to decide a mismatch (China time): 10 working days
    # from when it began waiting (a teacher marking it again does not move it).
    due_on = Date(null=True, default=None)
    # A `delete` decided on a record not here: the problem-record case whose deletion the
    # authority reviews (`records.problems`), and whose state the entry shows.
    problem_case = ForeignKey(
        references=ProblemCase, null=True, default=None, on_delete=OnDelete.set_null
    )


ROLL_STATE = Lifecycle(
    RollEntry.state,
    {
        # a teacher may mark a child again until the registrar decided
        RollState.settled: {RollState.settled, RollState.waiting},
        RollState.waiting: {
            RollState.settled,
            RollState.waiting,
            RollState.handled,
            RollState.registered,
            RollState.rejected,
        },
        RollState.handled: (),
        RollState.registered: (),
        RollState.rejected: (),
    },
)

# History: what one class's teacher found in one campaign stays with that class.
declare_scoped(
    RollEntry,
    ScopedColumns(
        region=RollEntry.region_code,
        school=RollEntry.school,
        school_class=RollEntry.school_class,
        student=RollEntry.student,
        on_move=OnMove.stays,
    ),
)


class FieldControl(Table, tablename="field_control"):
    """A province's control of one catalog field, above the national floor: whether a change
    to it is key data (reviewed one by one by the authority) and whether parents may propose
    one. One row per (province, field) that the province set (unique index in the migration);
    a field without a row keeps the national catalog's controls."""

    id = Serial(primary_key=True)
    province_code = Varchar(length=6, index=True)
    field_code = Varchar(length=40)
    key = Boolean(default=False)
    parents_may_propose = Boolean(default=True)
    updated_by = ForeignKey(references=Account, on_delete=OnDelete.restrict)
    updated_at = Timestamptz()


# A county or school reads the controls of its province.
declare_scoped(
    FieldControl, ScopedColumns(region=FieldControl.province_code, reach=Reach.overlapping)
)


class RegistryNumberChange(Table, tablename="registry_number_change"):
    """A registry number a record gave up for another (J → G + ID number when a child without a
    resident ID number gets one): the record's registry-number history."""

    id = Serial(primary_key=True)
    student = ForeignKey(references=Student, index=True, on_delete=OnDelete.cascade)
    old_number = Varchar(length=32)
    new_number = Varchar(length=32)
    change_request = Integer(null=True, default=None)  # the change request that caused it
    changed_at = Timestamptz()

"""What the class-roll endpoints take and answer, every mark, reason, state and outcome with
its Chinese label beside it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec

from backend.records.problem_schemas import CASE_STATE_LABEL
from backend.records.problem_tables import CaseState
from backend.records.roll_tables import AbsenceReason, RollMark, RollOutcome, RollState

MARK_LABEL = {
    RollMark.here: "在班",
    RollMark.not_here: "不在班",
    RollMark.unregistered: "在班未建学籍",
}
REASON_LABEL = {
    AbsenceReason.left: "已离校",
    AbsenceReason.transferred: "已转学",
    AbsenceReason.suspended: "休学",
    AbsenceReason.never_came: "从未到校",
    AbsenceReason.other: "其他",
}
STATE_LABEL = {
    RollState.settled: "无需处理",
    RollState.waiting: "待学籍管理员处理",
    RollState.handled: "已处理",
    RollState.registered: "已建学籍",
    RollState.rejected: "不予登记",
}
OUTCOME_LABEL = {
    RollOutcome.delete: "删除学籍",
    RollOutcome.transfer: "办理转出",
    RollOutcome.suspend: "办理休学",
    RollOutcome.keep: "核实在校，保留学籍",
    RollOutcome.reject: "不予登记",
}

Note = Annotated[
    str,
    msgspec.Meta(max_length=500, description="The teacher's note", examples=["已随父母去外省"]),
]
Reason = Annotated[
    str,
    msgspec.Meta(
        max_length=500,
        description="Why (required to reject an unregistered child)",
        examples=["该生为借读，学籍在原校"],
    ),
]


class MarkWrite(msgspec.Struct):
    """A record marked `here` or `not_here`; `not_here` needs a `reason`."""

    mark: RollMark
    reason: AbsenceReason | None = None
    note: Note = ""


class UnregisteredWrite(msgspec.Struct):
    """A child in the room without a record, as the teacher knows them (checked by the field
    catalog: name up to 50 characters, sex 1 male / 2 female, birth date YYYY-MM-DD)."""

    name: Annotated[str, msgspec.Meta(max_length=50, examples=["王小明"])]
    sex: Annotated[str, msgspec.Meta(max_length=4, examples=["1"])]
    birth_date: Annotated[str, msgspec.Meta(max_length=20, examples=["2018-03-05"])]
    note: Note = ""


class RollDecisionWrite(msgspec.Struct):
    outcome: RollOutcome
    reason: Reason = ""


class RegistrationWrite(msgspec.Struct):
    """The record's other fields by catalog code (the required ones: `ethnicity`,
    `nationality`, `id_type`); name, sex and birth date are the entry's."""

    fields: Annotated[
        dict[
            Annotated[str, msgspec.Meta(max_length=40)],
            Annotated[str, msgspec.Meta(max_length=200)],
        ],
        msgspec.Meta(
            max_length=80,
            examples=[{"ethnicity": "01", "nationality": "CN", "id_type": "9"}],
        ),
    ]


class RollEntryRead(msgspec.Struct):
    id: int
    campaign_id: int
    school_id: int
    school_name: str
    class_id: int
    class_name: str
    student_id: int | None  # None for an unregistered child
    name: str  # the record's name, or the unregistered child's
    mark: RollMark
    mark_label: str
    reason: AbsenceReason | None
    reason_label: str
    note: str
    sex: str  # an unregistered child's (the catalog's code)
    birth_date: str
    state: RollState
    state_label: str
    outcome: RollOutcome | None
    outcome_label: str
    registrar_note: str  # why the registrar decided so (a rejection)
    registered_student_id: int | None  # the record the registrar created for the child
    marked_at: datetime
    decided_at: datetime | None
    due_on: date | None  # the registrar's last working day to decide a mismatch (China time)
    # A `delete`: the problem-record case whose deletion the authority reviews
    # (`GET /problem-cases/{id}`), its state (`resolved` once the record is removed; `open`
    # again, with the reviewer's reason, when the deletion was rejected)
    problem_case_id: int | None
    problem_case_state: CaseState | None
    problem_case_state_label: str
    review_note: str  # the authority's reason on the deletion (rejected, sent back)


class RollRecordRead(msgspec.Struct):
    student_id: int
    name: str
    sex: str
    birth_date: str
    mark: RollMark | None  # None: not marked yet
    entry: RollEntryRead | None


class RollChangingRead(msgspec.Struct):
    """A record of the class in the middle of a status change (a transfer …): checked once
    the change is done, so neither marked nor counted as missing."""

    student_id: int
    name: str
    sex: str
    birth_date: str
    label: str  # 异动办理中


class ClassRollRead(msgspec.Struct):
    campaign_id: int
    class_id: int
    class_name: str
    school_id: int
    records: int  # records of the class on the roll
    marked: int
    checked: bool  # every record marked
    roll: list[RollRecordRead]
    unregistered: list[RollEntryRead]
    # listed apart under their own heading (`changing_label`), not as "not here"
    changing: list[RollChangingRead] = msgspec.field(default_factory=list)
    changing_label: str = "异动办理中"


class RollProgressRead(msgspec.Struct):
    classes: int  # classes with records on the roll
    classes_checked: int
    records: int
    marked: int
    not_here: int
    unregistered: int
    waiting: int  # mismatches the registrar has not decided


class SchoolRollProgressRead(RollProgressRead):
    school_id: int
    school_name: str
    region_code: str


def entry_read(row: dict[str, Any]) -> RollEntryRead:
    mark = RollMark(row["mark"])
    reason = AbsenceReason(row["reason"]) if row["reason"] else None
    state = RollState(row["state"])
    outcome = RollOutcome(row["outcome"]) if row["outcome"] else None
    case_state = CaseState(row["problem_case_state"]) if row["problem_case_state"] else None
    return RollEntryRead(
        id=row["id"],
        campaign_id=row["campaign"],
        school_id=row["school"],
        school_name=row["school_name"],
        class_id=row["school_class"],
        class_name=row["class_name"],
        student_id=row["student"],
        name=row["student_name"] or row["name"],
        mark=mark,
        mark_label=MARK_LABEL[mark],
        reason=reason,
        reason_label=REASON_LABEL[reason] if reason else "",
        note=row["note"],
        sex=row["sex"],
        birth_date=row["birth_date"],
        state=state,
        state_label=STATE_LABEL[state],
        outcome=outcome,
        outcome_label=OUTCOME_LABEL[outcome] if outcome else "",
        registrar_note=row["decided_reason"],
        registered_student_id=row["registered_student"],
        marked_at=row["marked_at"],
        decided_at=row["decided_at"],
        due_on=row["due_on"],
        problem_case_id=row["problem_case"],
        problem_case_state=case_state,
        problem_case_state_label=CASE_STATE_LABEL[case_state] if case_state else "",
        review_note=row["problem_case_reason"] or "",
    )

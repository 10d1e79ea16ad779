"""The status changes of a student's record (学籍异动) and where each stands.

A change is filed at the student's school (`from_*`: where the student is when it starts);
a transfer also names where the student goes (`to_*`). Both sides read it: the sending side
by the table's own columns, the receiving side as related rows (`declare_related`), so the
receiving school and its authority see the transfers coming to them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from piccolo.columns import (
    JSONB,
    Date,
    ForeignKey,
    Serial,
    SmallInt,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.combination import WhereRaw
from piccolo.table import Table

from backend.accounts.roles import ScopeKind
from backend.accounts.scope_rules import (
    OnMove,
    Scope,
    ScopedColumns,
    declare_related,
    declare_scoped,
)
from backend.accounts.tables import Account, School, SchoolClass
from backend.parents.tables import Upload
from backend.records.review_tables import Evidence, SubjectKind
from backend.records.tables import Student, confirmed_children
from backend.statuses import Lifecycle


class ChangeKind(StrEnum):
    """What a status change does to the record when its last step approves."""

    transfer = "transfer"  # 转学: the record moves to the receiving school's class
    suspend = "suspend"  # 休学: status `suspended`
    resume = "resume"  # 复学 (and back from leaving or abroad): status `enrolled` again
    leave = "leave"  # 离校 / 辍学: status `left`, followed up (控辍保学)
    skip = "skip"  # 跳级: into a class of a higher grade of the same school
    repeat = "repeat"  # 留级 / 降级: into a class of a lower grade (special education: 第十四条)
    abroad = "abroad"  # 境外就读: status `abroad`
    cancel = "cancel"  # 注销 after death: status `cancelled`, 60 working days (第二十一条)


class Span(StrEnum):
    """How far a transfer goes: the same chain, with different authorities."""

    county = "county"  # both schools administered by the same authority
    province = "province"  # another authority of the same province
    country = "country"  # another province (跨省转学: the simplified 一网通办 documents)


class ChangeState(StrEnum):
    """Where a change stands (`CHANGE_STATE`)."""

    # a step of its chain is current (a parent's application too: its first step waits on the
    # school that acts first, the receiving school for a transfer)
    in_review = "in_review"
    returned = "returned"  # sent back to whoever applied, for documents; resubmitted
    refused = "refused"  # a step refused it, with a reason: it ends here
    withdrawn = "withdrawn"  # by whoever applied, before it completed
    completed = "completed"  # the last step approved: the record changed


class StatusChange(Table, tablename="status_change"):
    id = Serial(primary_key=True)
    kind = Varchar(length=12)  # ChangeKind
    student = ForeignKey(references=Student, index=True, on_delete=OnDelete.cascade)
    # Where the student is when the change starts: the sending side of a transfer
    from_school = ForeignKey(references=School, index=True, on_delete=OnDelete.restrict)
    from_class = ForeignKey(references=SchoolClass, on_delete=OnDelete.restrict)
    from_region = Varchar(length=6, index=True)
    # Where the student goes: a transfer's receiving school, a skip's or repeat's class
    to_school = ForeignKey(
        references=School, null=True, default=None, index=True, on_delete=OnDelete.restrict
    )
    to_class = ForeignKey(
        references=SchoolClass, null=True, default=None, on_delete=OnDelete.restrict
    )
    to_region = Varchar(length=6, null=True, default=None, index=True)
    span = Varchar(length=8, null=True, default=None)  # Span, transfers only
    state = Varchar(length=12, default=ChangeState.in_review.value, index=True)
    round = SmallInt(default=1)
    reason = Text(default="")  # why the change is asked for (转学原因 …)
    details = JSONB(default="{}")  # what the kind asks for beside the reason (dates, country …)
    refusal = Text(default="")  # the reason of the step that refused or returned it
    applicant = ForeignKey(references=Account, index=True, on_delete=OnDelete.restrict)
    started_by = ForeignKey(
        references=Account, null=True, default=None, on_delete=OnDelete.restrict
    )
    started_on = Date(null=True, default=None)  # China date the chain opened
    completed_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()


CHANGE_STATE = Lifecycle(
    StatusChange.state,
    {
        ChangeState.in_review: {
            ChangeState.returned,
            ChangeState.refused,
            ChangeState.withdrawn,
            ChangeState.completed,
        },
        ChangeState.returned: {ChangeState.in_review, ChangeState.withdrawn},
        ChangeState.refused: (),
        ChangeState.withdrawn: (),
        ChangeState.completed: (),
    },
)

OPEN_STATES = frozenset({ChangeState.in_review, ChangeState.returned})


# History of what the sending school did: it stays with the school it was filed at (the
# receiving side reads it as related rows, below).
declare_scoped(
    StatusChange,
    ScopedColumns(
        region=StatusChange.from_region,
        school=StatusChange.from_school,
        school_class=StatusChange.from_class,
        guardian=lambda account_id: StatusChange.student.is_in(confirmed_children(account_id)),
        student=StatusChange.student,
        on_move=OnMove.stays,
    ),
)


def _receiving_side(scope: Scope) -> Any:
    """A transfer lies in the scope of the school it goes to and of its authorities."""
    if scope.kind is ScopeKind.school and scope.school_id is not None:
        return StatusChange.to_school == scope.school_id
    if scope.kind is ScopeKind.school_class and scope.class_id is not None:
        return StatusChange.to_class == scope.class_id
    if scope.kind is ScopeKind.region and scope.region_code is not None:
        prefix = scope.region_prefix
        return (StatusChange.to_region >= prefix.ljust(6, "0")) & (
            StatusChange.to_region <= prefix.ljust(6, "9")
        )
    return None


declare_related(StatusChange, _receiving_side)


def _receiving_evidence(scope: Scope) -> Any:
    """A transfer's documents (a parent's application) lie in the receiving side's scope too:
    the receiving school and its authority decide on them before the record moves."""
    side = _receiving_side(scope)
    if side is None:
        return None
    return (Evidence.subject_kind == SubjectKind.status_change.value) & Evidence.subject_id.is_in(
        StatusChange.select(StatusChange.id).where(side)
    )


declare_related(Evidence, _receiving_evidence)


# The sending school keeps its electronic archive copy (转出学校须对电子学籍档案备份保留): the
# form photos taken while the child was its student stay readable to it (and to its
# authorities) by id after the transfer, though the uploads follow the record and the old
# school loses sight of the record's current data.
_SENT_AWAY = (
    "EXISTS (SELECT 1 FROM status_change sent WHERE sent.student = upload.student "
    "AND sent.kind = 'transfer' AND sent.state = 'completed' "
    "AND upload.created_at <= sent.completed_at AND {where})"
)


def _archive_kept(scope: Scope) -> Any:
    if scope.kind is ScopeKind.school and scope.school_id is not None:
        return WhereRaw(_SENT_AWAY.format(where="sent.from_school = {}"), scope.school_id)
    if scope.kind is ScopeKind.region and scope.region_code is not None:
        prefix = scope.region_prefix
        return WhereRaw(
            _SENT_AWAY.format(where="sent.from_region >= {} AND sent.from_region <= {}"),
            prefix.ljust(6, "0"),
            prefix.ljust(6, "9"),
        )
    return None


declare_related(Upload, _archive_kept)


class ChangeDocuments(Table, tablename="change_documents"):
    """The documents a province asks for with a status change of one kind (a transfer: of
    one span; the other kinds: `span` ''), as document codes joined by commas
    (`documents.Document`). One row per (province, kind, span) it set (unique index in the
    migration); without one the defaults of `documents.DEFAULTS` apply."""

    id = Serial(primary_key=True)
    province_code = Varchar(length=6, index=True)
    kind = Varchar(length=12)  # ChangeKind
    span = Varchar(length=12, default="")  # Span, or '' for a kind that is not a transfer
    documents = Varchar(length=200, default="")
    updated_by = ForeignKey(references=Account, on_delete=OnDelete.restrict)
    updated_at = Timestamptz()


class RepeatRule(Table, tablename="repeat_rule"):
    """A province's rule on repeating a grade in senior high (compulsory education's is the
    nation's: special education only). One row per province that set one (unique)."""

    id = Serial(primary_key=True)
    province_code = Varchar(length=6, unique=True)
    senior_high = Varchar(length=16)  # repeats.SeniorRule
    updated_by = ForeignKey(references=Account, on_delete=OnDelete.restrict)
    updated_at = Timestamptz()

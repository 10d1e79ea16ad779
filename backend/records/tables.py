"""Tables of the records domain.

A student's record lives in `fields`: one JSON object keyed by the field catalog's codes
(guardians included), so no table repeats the catalog. The few values that queries filter on
are copied into indexed columns by `records.service` whenever `fields` is written.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from piccolo.columns import (
    JSONB,
    BigSerial,
    Boolean,
    Bytea,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.reference import LazyTableReference
from piccolo.table import Table

from backend.accounts.roles import ScopeKind
from backend.accounts.scope_rules import (
    OnMove,
    Reach,
    Scope,
    ScopedColumns,
    declare_related,
    declare_scoped,
    in_scope,
)
from backend.accounts.tables import Account, School, SchoolClass
from backend.statuses import Lifecycle


class StudentStatus(StrEnum):
    """Where a student stands on the roll. The status changes of `backend.transfers` (异动)
    move a record between these; a transfer moves the record and keeps it `enrolled`."""

    enrolled = "enrolled"
    # Off the roll by an approved problem-record "delete" (the student is not at this school)
    # or by national arbitration: kept for history, left out of every list of the roll.
    removed = "removed"
    suspended = "suspended"  # 休学: back by a 复学 (return)
    left = "left"  # 离校 (辍学 among them): followed up for 控辍保学, back by a return
    abroad = "abroad"  # 境外就读
    cancelled = "cancelled"  # 注销 after death: kept for history, never back


class Student(Table, tablename="student"):
    id = Serial(primary_key=True)
    # 学籍号: G + ID number, or J + …; unique per school (see the migration), since the same
    # ID number at two schools is a problem to flag, not an error to refuse.
    registry_number = Varchar(length=32, index=True)
    school = ForeignKey(references=School, index=True, on_delete=OnDelete.restrict)
    school_class = ForeignKey(references=SchoolClass, index=True, on_delete=OnDelete.restrict)
    region_code = Varchar(length=6, index=True)
    status = Varchar(length=12, default=StudentStatus.enrolled.value, index=True)
    # The status change (`backend.transfers`: a transfer, a suspension …) open on this record:
    # while it is set the record accepts no other change, and a check campaign lists the
    # student apart (not printed, not counted as missing). The change's id; None when none.
    open_change = Integer(null=True, default=None)
    name = Varchar(length=50, index=True)
    id_number = Varchar(length=30, null=True, default=None, index=True)
    fields = JSONB()
    created_at = Timestamptz()
    updated_at = Timestamptz()


STUDENT_STATUS = Lifecycle(
    Student.status,
    {
        StudentStatus.enrolled: {
            StudentStatus.removed,
            StudentStatus.suspended,
            StudentStatus.left,
            StudentStatus.abroad,
            StudentStatus.cancelled,
        },
        StudentStatus.suspended: {StudentStatus.enrolled, StudentStatus.cancelled},
        StudentStatus.left: {StudentStatus.enrolled, StudentStatus.cancelled},
        StudentStatus.abroad: {StudentStatus.enrolled, StudentStatus.cancelled},
        StudentStatus.removed: (),
        StudentStatus.cancelled: (),
    },
)


def confirmed_children(account_id: int) -> Any:
    """The ids of a parent's children: confirmed links only. A pending or rejected link opens
    nothing; every guardian scope (records, uploads, photos) is built on this."""
    return GuardianLink.select(GuardianLink.student).where(
        (GuardianLink.account == account_id) & (GuardianLink.status == LinkStatus.confirmed.value)
    )


# The record is what moves (`records.moves.move_student`).
declare_scoped(
    Student,
    ScopedColumns(
        region=Student.region_code,
        school=Student.school,
        school_class=Student.school_class,
        guardian=lambda account_id: Student.id.is_in(confirmed_children(account_id)),
        student=Student.id,
        on_move=OnMove.follows,
    ),
)


class ProblemFlag(Table, tablename="problem_flag"):
    """问题学籍: one row per problem a record has now; recomputed when the record changes."""

    id = Serial(primary_key=True)
    student = ForeignKey(references=Student, index=True, on_delete=OnDelete.cascade)
    kind = Varchar(length=24, index=True)  # ProblemKind
    detail = Text(default="")
    created_at = Timestamptz()


class LinkStatus(StrEnum):
    """A parent's link to a child (`LINK_STATUS`: the class decides a pending one, once)."""

    pending = "pending"  # the phone is none of the record's guardians: the class decides
    confirmed = "confirmed"  # the only state that opens the record to the parent
    rejected = "rejected"


class GuardianLink(Table, tablename="guardian_link"):
    """A parent's account linked to a child (made with the form's code, at sign-up or from
    the signed-in account). Only a confirmed link lets the parent see or act for the child."""

    id = Serial(primary_key=True)
    account = ForeignKey(references=Account, index=True, on_delete=OnDelete.cascade)
    student = ForeignKey(references=Student, index=True, on_delete=OnDelete.cascade)
    guardian_slot = Integer(default=1)  # which guardian of the record: 1 or 2
    status = Varchar(length=12, default=LinkStatus.confirmed.value, index=True)  # LinkStatus
    # The form whose code made the link: a rejected link gives its use back.
    form: ForeignKey[IssuedForm] = ForeignKey(
        references=LazyTableReference("IssuedForm", module_path=__name__),
        null=True,
        default=None,
        on_delete=OnDelete.set_null,
    )
    created_at = Timestamptz()


LINK_STATUS = Lifecycle(
    GuardianLink.status,
    {
        LinkStatus.pending: {LinkStatus.confirmed, LinkStatus.rejected},
        LinkStatus.confirmed: (),
        LinkStatus.rejected: (),
    },
)


class ImportStatus(StrEnum):
    """An import's job (`IMPORT_STATUS`)."""

    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


_SCHOOL_OF_STUDENT = ScopedColumns(region=Student.region_code, school=Student.school)


def _parents_of_schools_in(scope: Scope) -> Any:
    """A parent's account lies in the scope of each school where it has a linked child
    (pending and rejected links too, so the school can stop an account that asks for its
    children) and of the regions above; a class scope holds no parent accounts."""
    if scope.kind not in (ScopeKind.school, ScopeKind.region):
        return None
    students = Student.select(Student.id).where(in_scope(scope, Student, _SCHOOL_OF_STUDENT))
    return Account.id.is_in(
        GuardianLink.select(GuardianLink.account).where(GuardianLink.student.is_in(students))
    )


declare_related(Account, _parents_of_schools_in)


class ImportJob(Table, tablename="import_job"):
    id = Serial(primary_key=True)
    account = ForeignKey(references=Account, on_delete=OnDelete.restrict)
    school = ForeignKey(references=School, null=True, default=None, on_delete=OnDelete.restrict)
    region_code = Varchar(length=6, null=True, default=None, index=True)
    filename = Varchar(length=200)
    dry_run = Boolean(default=False)
    status = Varchar(length=12, default=ImportStatus.queued.value, index=True)
    total_rows = Integer(default=0)
    error_count = Integer(default=0)
    errors = JSONB(default=[])  # the first errors, with row, column and a Chinese message
    summary = JSONB(default={})
    created_at = Timestamptz()
    finished_at = Timestamptz(null=True, default=None)


# A running import whose worker died runs again from the start (its write is one
# transaction): running → running.
IMPORT_STATUS = Lifecycle(
    ImportJob.status,
    {
        ImportStatus.queued: {ImportStatus.running, ImportStatus.failed},
        ImportStatus.running: {ImportStatus.running, ImportStatus.done, ImportStatus.failed},
        ImportStatus.done: (),
        ImportStatus.failed: (),
    },
)
# History: an import is the school's (or region's) act on its own file, about many students;
# its report stays where it was made when one of them moves.
declare_scoped(ImportJob, ScopedColumns(region=ImportJob.region_code, school=ImportJob.school))


class ImportFile(Table, tablename="import_file"):
    """The uploaded bytes, kept in the database so any worker process can read them."""

    id = BigSerial(primary_key=True)
    job = ForeignKey(references=ImportJob, unique=True, on_delete=OnDelete.cascade)
    content = Bytea()


class Campaign(Table, tablename="campaign"):
    """A data-quality check (数据质量核查), opened by a province for itself or a region of it,
    with the window and the two switches that hold wherever no level below narrowed them
    (`CampaignSetting`). Two campaigns of one region, or of a region and one inside it,
    never overlap in time. See docs/campaigns.md."""

    id = Serial(primary_key=True)
    region_code = Varchar(length=6, index=True)
    name = Varchar(length=100)
    starts_at = Timestamptz()
    ends_at = Timestamptz()  # exclusive; closing sets it to the moment of closing
    forms_open = Boolean(default=False)  # forms may be issued
    corrections_open = Boolean(default=False)  # corrections may be entered
    created_by = ForeignKey(references=Account, on_delete=OnDelete.restrict)
    created_at = Timestamptz()
    closed_at = Timestamptz(null=True, default=None)  # closed early, for good


declare_scoped(
    Campaign,
    ScopedColumns(region=Campaign.region_code, reach=Reach.overlapping, personal=False),
)


class CampaignSetting(Table, tablename="campaign_setting"):
    """What one level (the province, or a city) set for one of its sub-regions in a campaign.
    Each value only narrows: what applies to a county is the campaign's window and switches
    narrowed by every row on its chain (province → city → county), whoever wrote it. A null
    value leaves the level above's. One row per (campaign, region, level): see the migration."""

    id = Serial(primary_key=True)
    campaign = ForeignKey(references=Campaign, index=True, on_delete=OnDelete.cascade)
    region_code = Varchar(length=6)
    set_by = Varchar(length=10)  # SetBy: province or city
    starts_at = Timestamptz(null=True, default=None)
    ends_at = Timestamptz(null=True, default=None)
    forms_open = Boolean(null=True, default=None)
    corrections_open = Boolean(null=True, default=None)
    updated_by = ForeignKey(references=Account, on_delete=OnDelete.restrict)
    updated_at = Timestamptz()


# A caller sees the settings of its own region, of the regions above and (a region) below.
declare_scoped(
    CampaignSetting,
    ScopedColumns(region=CampaignSetting.region_code, reach=Reach.overlapping, personal=False),
)


class IssuedForm(Table, tablename="issued_form"):
    """One printed confirmation form: what it printed, and the code that lets a parent in."""

    id = Serial(primary_key=True)
    form_id = Varchar(length=24, unique=True)  # carried, signed, in the QR code
    campaign = ForeignKey(references=Campaign, index=True, on_delete=OnDelete.restrict)
    student = ForeignKey(references=Student, index=True, on_delete=OnDelete.cascade)
    school = ForeignKey(references=School, index=True, on_delete=OnDelete.restrict)
    school_class = ForeignKey(references=SchoolClass, index=True, on_delete=OnDelete.restrict)
    region_code = Varchar(length=6, index=True)
    snapshot = JSONB()  # catalog code → stored value, as printed
    registration_code_hash = Varchar(length=64, unique=True)
    registration_uses = Integer(default=0)
    issued_by = ForeignKey(references=Account, on_delete=OnDelete.restrict)
    issued_at = Timestamptz()
    superseded_at = Timestamptz(null=True, default=None)
    # 回收: the signed paper came back to school, ticked off by its teacher or registrar
    # (`records.paper_returns`); cleared by an untick.
    paper_returned_at = Timestamptz(null=True, default=None)
    paper_returned_by = ForeignKey(
        references=Account, null=True, default=None, on_delete=OnDelete.restrict
    )


class BatchStatus(StrEnum):
    """A form batch's PDF (`BATCH_STATUS`): queued, being rendered under a lease, rendered,
    or failed for good (the registrar prints the class again)."""

    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


# History: the paper the old school printed names the old school and class. A move
# supersedes the child's live form (a photo of it is answered `form_superseded`, its code no
# longer links) and the new school prints its own; the old form stays in the old school's
# archive of what it issued.
declare_scoped(
    IssuedForm,
    ScopedColumns(
        region=IssuedForm.region_code,
        school=IssuedForm.school,
        school_class=IssuedForm.school_class,
        student=IssuedForm.student,
        on_move=OnMove.stays,
    ),
)


class FormBatch(Table, tablename="form_batch"):
    """Forms issued for a class in one go, and the printable PDF a job renders for them."""

    id = Serial(primary_key=True)
    campaign = ForeignKey(references=Campaign, on_delete=OnDelete.restrict)
    school = ForeignKey(references=School, index=True, on_delete=OnDelete.restrict)
    school_class = ForeignKey(references=SchoolClass, index=True, on_delete=OnDelete.restrict)
    region_code = Varchar(length=6, index=True)
    form_ids = JSONB(default=[])  # IssuedForm ids, in print order
    status = Varchar(length=12, default=BatchStatus.queued.value)
    render_attempts = Integer(default=0)
    render_started_at = Timestamptz(null=True, default=None)  # the lease's start
    pdf_key = Varchar(length=200, null=True, default=None)
    issued_by = ForeignKey(references=Account, on_delete=OnDelete.restrict)
    created_at = Timestamptz()
    finished_at = Timestamptz(null=True, default=None)


# running → running: a render whose lease ran out (its worker died) is taken over;
# running → queued: a transient failure gives the batch back for its next try.
BATCH_STATUS = Lifecycle(
    FormBatch.status,
    {
        BatchStatus.queued: {BatchStatus.running, BatchStatus.failed},
        BatchStatus.running: {
            BatchStatus.running,
            BatchStatus.queued,
            BatchStatus.done,
            BatchStatus.failed,
        },
        BatchStatus.done: (),
        BatchStatus.failed: (),
    },
)


# History: a whole class's printing by the old school; it names no one student.
declare_scoped(
    FormBatch,
    ScopedColumns(
        region=FormBatch.region_code, school=FormBatch.school, school_class=FormBatch.school_class
    ),
)

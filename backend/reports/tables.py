"""Tables of the reports domain: exports (who asked for which file, its job, where the file is
kept and until when) and the approvals that let full student records leave (an authorising
document recorded by one admin and confirmed by a second)."""

from __future__ import annotations

from enum import StrEnum

from piccolo.columns import (
    JSONB,
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.table import Table

from backend.accounts.scope_rules import ScopedColumns, declare_scoped
from backend.accounts.tables import Account
from backend.statuses import Lifecycle


class ApprovalState(StrEnum):
    """An authorising document's approval (`APPROVAL_STATE`). Expiry is a time, not a state:
    a confirmed approval is in force until `expires_at`."""

    pending = "pending"  # recorded by one admin; a second must confirm it
    confirmed = "confirmed"  # confirmed by a second admin: exports allowed until expires_at
    revoked = "revoked"  # withdrawn by either admin before it expired


class ExportApproval(Table, tablename="export_approval"):
    """The authority for a bulk export of full student records (regulation 002: 法律规定 or
    经县级以上人民政府批准): the document's number and issuing authority, and the region it
    covers, inside the recording admin's own scope."""

    id = Serial(primary_key=True)
    document_number = Varchar(length=100)  # 文号
    issuing_authority = Varchar(length=100)  # 发文机关
    region_code = Varchar(length=6, index=True)  # the approved scope
    purpose = Text(default="")
    state = Varchar(length=10, default=ApprovalState.pending.value, index=True)
    recorded_by = ForeignKey(references=Account, on_delete=OnDelete.restrict)
    recorded_at = Timestamptz()
    confirmed_by = ForeignKey(
        references=Account, null=True, default=None, on_delete=OnDelete.restrict
    )
    confirmed_at = Timestamptz(null=True, default=None)
    expires_at = Timestamptz(null=True, default=None)  # confirmed_at + 24 h
    revoked_at = Timestamptz(null=True, default=None)


APPROVAL_STATE = Lifecycle(
    ExportApproval.state,
    {
        ApprovalState.pending: {ApprovalState.confirmed, ApprovalState.revoked},
        ApprovalState.confirmed: {ApprovalState.revoked},
        ApprovalState.revoked: (),
    },
)

# An approval is seen (and confirmed) by the admins whose region holds the approved one.
declare_scoped(ExportApproval, ScopedColumns(region=ExportApproval.region_code))


class ExportKind(StrEnum):
    problem_cases = "problem_cases"  # 问题学籍名单, masked
    progress = "progress"  # 核查进度表 (counts only)
    student_records = "student_records"  # full records, unmasked: under an approval only


class ExportStatus(StrEnum):
    """An export's file (`EXPORT_STATUS`)."""

    queued = "queued"
    running = "running"
    done = "done"  # the file is stored; its requester may download it until expires_at
    failed = "failed"
    expired = "expired"  # past its time: the file is deleted from storage


class ExportJob(Table, tablename="export_job"):
    """One export a person asked for. Only its requester reads it or downloads the file;
    the scope it covers is the requester's at the time (`scope_label`, and `params`)."""

    id = Serial(primary_key=True)
    account = ForeignKey(references=Account, index=True, on_delete=OnDelete.restrict)
    kind = Varchar(length=20)  # ExportKind
    format = Varchar(length=4)  # FileFormat
    params = JSONB(default={})  # the filters asked for (ids and codes only)
    approval = ForeignKey(
        references=ExportApproval, null=True, default=None, on_delete=OnDelete.restrict
    )
    status = Varchar(length=10, default=ExportStatus.queued.value, index=True)
    scope_label = Varchar(length=200, default="")
    row_count = Integer(default=0)
    storage_key = Varchar(length=200, null=True, default=None)
    file_name = Varchar(length=200, default="")
    sha256 = Varchar(length=64, default="")
    size = Integer(default=0)
    message = Text(default="")  # why it failed, for the person
    created_at = Timestamptz()
    finished_at = Timestamptz(null=True, default=None)
    expires_at = Timestamptz(null=True, default=None, index=True)


# A running export whose worker died runs again from the start: running → running.
EXPORT_STATUS = Lifecycle(
    ExportJob.status,
    {
        ExportStatus.queued: {ExportStatus.running, ExportStatus.failed},
        ExportStatus.running: {ExportStatus.running, ExportStatus.done, ExportStatus.failed},
        ExportStatus.done: {ExportStatus.expired},
        ExportStatus.failed: (),
        ExportStatus.expired: (),
    },
)

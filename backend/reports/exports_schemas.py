"""What the export and approval endpoints take and answer."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import msgspec

from backend.accounts.schemas import DbId, RegionCode
from backend.records.problem_tables import CaseKind, CaseState
from backend.reports.exports_files import FileFormat
from backend.reports.tables import ApprovalState, ExportKind, ExportStatus

EXPORT_STATUS_LABEL = {
    ExportStatus.queued: "排队中",
    ExportStatus.running: "生成中",
    ExportStatus.done: "可下载",
    ExportStatus.failed: "生成失败",
    ExportStatus.expired: "已过期",
}
APPROVAL_STATE_LABEL = {
    ApprovalState.pending: "待另一位管理员确认",
    ApprovalState.confirmed: "已确认",
    ApprovalState.revoked: "已撤销",
}


class ExportPhase(StrEnum):
    reading = "reading"
    writing = "writing"
    done = "done"


class ExportCreate(msgspec.Struct, forbid_unknown_fields=True):
    """`kind` says what: `problem_cases` takes the list's filters (`problem_kind`, `state`,
    `open_only`, `school_id`); `progress` takes `campaign_id` and at most one node
    (`region_code`, `school_id` or `class_id`; none: the caller's own); `student_records`
    takes `approval_id` (and `region_code` inside the approved region, default all of it)."""

    kind: ExportKind
    format: FileFormat = FileFormat.xlsx
    problem_kind: CaseKind | None = None
    state: CaseState | None = None
    open_only: bool = False
    school_id: DbId | None = None
    region_code: RegionCode | None = None
    approval_id: DbId | None = None
    campaign_id: DbId | None = None
    class_id: DbId | None = None


class ExportRead(msgspec.Struct):
    id: int
    kind: ExportKind
    format: FileFormat
    status: ExportStatus
    status_label: str
    phase: ExportPhase | None  # while queued or running: what the job is doing
    done: int  # rows read so far
    total: int  # rows counted when it started
    row_count: int  # rows in the file (done)
    scope_label: str  # 浙江省杭州市西湖区
    file_name: str
    size: int  # bytes
    sha256: str
    message: str  # why it failed
    download_url: str | None  # while done and not expired
    approval_id: int | None
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None  # the file is downloadable until then


DocumentText = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class ApprovalCreate(msgspec.Struct, forbid_unknown_fields=True):
    document_number: Annotated[DocumentText, msgspec.Meta(examples=["西教〔2026〕12号"])]
    issuing_authority: Annotated[DocumentText, msgspec.Meta(examples=["杭州市西湖区人民政府"])]
    region_code: RegionCode
    purpose: Annotated[str, msgspec.Meta(max_length=500, examples=["学生资助核对"])] = ""


class ApprovalRead(msgspec.Struct):
    id: int
    document_number: str
    issuing_authority: str
    region_code: str
    purpose: str
    state: ApprovalState
    state_label: str
    in_force: bool  # confirmed and not expired: exports allowed now
    recorded_by_id: int
    recorded_by_name: str
    recorded_at: datetime
    confirmed_by_id: int | None
    confirmed_by_name: str | None
    confirmed_at: datetime | None
    expires_at: datetime | None

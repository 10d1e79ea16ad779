"""What the review queues answer: "what waits on me", its counts, and bulk approval."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

import msgspec

from backend.accounts.roles import Role
from backend.records.review_tables import (
    EvidenceKind,
    RequestSource,
    RequestState,
    StepKind,
    SubjectKind,
)

MAX_BULK = 200


class FieldChange(msgspec.Struct):
    """One field of the record, from its value when the request was made to the new one, as
    every response shows them (sensitive values masked: `backend.masking`)."""

    code: str  # the field catalog's code, e.g. "health"
    label: str  # 健康状况
    old_value: str | None
    new_value: str | None
    old_text: str | None  # what the form prints (a choice's label), masked alike
    new_text: str | None
    masked: bool  # the values are masked (an ID number, a phone, an address)


class QueuedChangeKind(StrEnum):
    """The kinds of status change, as the queue shows them: `backend.transfers.tables.ChangeKind`
    (records may not import transfers; tests/transfers/test_transfer_queue.py keeps the two
    the same)."""

    transfer = "transfer"
    suspend = "suspend"
    resume = "resume"
    leave = "leave"
    skip = "skip"
    repeat = "repeat"
    abroad = "abroad"
    cancel = "cancel"


class ChangeSummary(msgspec.Struct):
    """A transfer or another status change (学籍异动) waiting on its approver: what it does,
    from which school to which, and how far it goes."""

    kind: QueuedChangeKind
    kind_label: str  # 转学, 休学, …
    from_school_name: str  # where the student is (the sending school)
    to_school_name: str | None  # a transfer's receiving school
    span: str | None  # a transfer's Span: county, province, country
    span_label: str | None  # 县内, 省内跨县, 跨省


class SubjectSummary(msgspec.Struct):
    """What the reviewer decides on, without another request. A change request fills every
    field; another kind of subject fills what it has (`queues.summarize`)."""

    title: str  # one Chinese line: 更正「健康状况」
    field: FieldChange | None
    source: RequestSource | None
    reason: str  # the author's reason for the change
    has_document: bool  # the ID document (id_scan) is attached
    evidence: list[EvidenceKind]
    round: int  # 2, 3, … after a rejection and resubmission
    change: ChangeSummary | None = None  # a status change's (subject_kind `status_change`)


class QueueItem(msgspec.Struct):
    # None for what waits beside the review steps (a class-roll mismatch, `subject_kind`
    # `roll_entry`, `step_kind` `settle`): decided through its own subject (`subject_id`)
    step_id: int | None
    subject_kind: SubjectKind
    subject_id: int
    step_kind: StepKind
    role: Role
    student_id: int | None  # None for a child without a record (a roll mismatch)
    student_name: str
    school_id: int
    school_name: str
    class_id: int
    class_name: str
    became_current_at: datetime | None
    due_on: date  # the last working day to decide it (China time)
    overdue: bool  # China's date is past `due_on`
    days_overdue: int  # working days past `due_on` (0 when not overdue)
    in_bulk: bool  # a school leader may approve it with others (`POST /review-steps/bulk-approval`)
    summary: SubjectSummary | None  # None for a kind of subject this version cannot summarise


class RequestStateCount(msgspec.Struct):
    state: RequestState
    count: int


class QueueCounts(msgspec.Struct):
    """The badge: steps (and class-roll mismatches) waiting on the caller, and the change
    requests in the caller's scope by state."""

    waiting: int
    overdue: int
    due_soon: int  # due today or within the next 2 working days, not yet overdue
    requests: list[RequestStateCount]
    roll_entries: int = 0  # of `waiting`, the class-roll mismatches (a registrar's)


class BulkApproval(msgspec.Struct, forbid_unknown_fields=True):
    step_ids: Annotated[list[int], msgspec.Meta(min_length=1, max_length=MAX_BULK)]


class BulkOutcome(StrEnum):
    approved = "approved"
    refused = "refused"


class BulkItem(msgspec.Struct):
    step_id: int
    outcome: BulkOutcome
    code: str | None = None  # why it was refused: not_in_bulk, step_already_decided, …
    message: str | None = None  # the same, in Chinese


class BulkResult(msgspec.Struct):
    items: list[BulkItem]  # one per step id asked, in the order asked
    approved: int
    refused: int

"""What the status-change endpoints take and answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated

import msgspec

from backend.accounts.roles import Role
from backend.accounts.schemas import DB_ID_MAX
from backend.records.request_schemas import EvidenceParts, EvidencePhotoRead
from backend.records.request_schemas import Reason as TypedReason
from backend.records.review_tables import StepKind, StepState
from backend.transfers.documents import MAX_DOCUMENTS, Document
from backend.transfers.tables import ChangeKind, ChangeState, Span

Id = Annotated[int, msgspec.Meta(ge=1, le=DB_ID_MAX)]
Reason = Annotated[str, msgspec.Meta(max_length=500)]
# The documents the registrar checked on paper at the counter (those the province asks for).
DocumentsChecked = Annotated[list[Document], msgspec.Meta(max_length=MAX_DOCUMENTS)]
Details = Annotated[
    dict[Annotated[str, msgspec.Meta(max_length=40)], Annotated[str, msgspec.Meta(max_length=200)]],
    msgspec.Meta(max_length=10),
]


class TransferStart(msgspec.Struct, forbid_unknown_fields=True):
    """The receiving school's registrar starts a transfer: the student by registry number and
    name (both must match), the class of the caller's school they go to, the reason."""

    registry_number: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    student_name: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    to_class_id: Id
    reason: Reason = ""
    details: Details = msgspec.field(default_factory=dict)
    documents_checked: DocumentsChecked = msgspec.field(default_factory=list)


class ChangeStart(msgspec.Struct, forbid_unknown_fields=True):
    """The student's school's registrar enters another kind of change: `to_class_id` for a
    skip (a higher grade) or a repeat (a lower grade) of the same school; a cancellation needs
    its `reason`."""

    kind: ChangeKind
    student_id: Id
    to_class_id: Id | None = None
    reason: Reason = ""
    details: Details = msgspec.field(default_factory=dict)
    documents_checked: DocumentsChecked = msgspec.field(default_factory=list)


class ClassChoice(msgspec.Struct, forbid_unknown_fields=True):
    class_id: Id


@dataclass(kw_only=True)
class MyStatusChangeCreate(EvidenceParts):
    """A parent's application, as `multipart/form-data`: the kind, the school to transfer to
    (`to_school_id`, a transfer only), the reason, and the documents the province asks for as
    photos in parts named by their kind."""

    kind: ChangeKind
    to_school_id: Id | None = None
    reason: TypedReason = ""


@dataclass(kw_only=True)
class StatusChangeAmendment(EvidenceParts):
    """A change sent back: a new reason (optional) and more documents."""

    reason: TypedReason | None = None


class ChangeStepRead(msgspec.Struct):
    id: int
    round: int
    position: int
    kind: StepKind
    kind_label: Annotated[str, msgspec.Meta(examples=["转出学校核办"])]
    role: Role
    role_label: str
    # who holds it, in Chinese: the school's name or the authority's region, and the role
    holder: Annotated[str, msgspec.Meta(examples=["学校B 学籍管理员"])]
    state: StepState
    state_label: str
    due_days: int  # working days its holder has once it is current (10; 60 for a cancellation)
    due_on: date | None
    overdue: bool
    decided_at: datetime | None
    reason: str  # why it was refused or sent back


class StatusChangeRead(msgspec.Struct):
    id: int
    kind: ChangeKind
    kind_label: Annotated[str, msgspec.Meta(examples=["转学"])]
    student_id: int
    student_name: str
    from_school_id: int
    from_school_name: str
    to_school_id: int | None
    to_school_name: str | None
    to_class_id: int | None
    span: Span | None
    span_label: str | None
    state: ChangeState
    state_label: str
    round: int
    reason: str
    details: dict[str, str]
    refusal: str  # the reason of the step that refused or returned it
    mine: bool  # the caller applied for it (may withdraw it, resubmit it when returned)
    current_step: ChangeStepRead | None
    started_on: date | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class StatusChangeDetail(StatusChangeRead, kw_only=True):
    steps: list[ChangeStepRead]
    evidence: list[EvidencePhotoRead]

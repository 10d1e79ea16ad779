"""What the problem-record endpoints take and answer: ID and registry numbers masked, every
kind and state with its Chinese label beside it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

import msgspec
from litestar.datastructures import UploadFile

from backend.records.problem_tables import ActionKind, ActionState, CaseKind, CaseSource, CaseState
from backend.records.request_schemas import EvidenceParts
from backend.records.review_schemas import StepRead
from backend.records.review_tables import EvidenceKind

CASE_STATE_LABEL = {
    CaseState.open: "待处理",
    CaseState.in_review: "审核中",
    CaseState.sent_back: "退回补充",
    CaseState.corroborated: "已佐证",
    CaseState.arbitration: "教育部仲裁中",
    CaseState.resolved: "已解决",
}
ACTION_LABEL = {
    ActionKind.delete: "删除",
    ActionKind.corroborate: "佐证",
    ActionKind.change: "变更",
    ActionKind.arbitrate: "教育部仲裁",
}


class CaseRead(msgspec.Struct):
    id: int
    student_id: int
    student_name: str
    registry_number: str  # masked
    id_number: str | None  # masked
    school_id: int
    school_name: str
    class_id: int
    region_code: str
    kind: CaseKind
    kind_label: str
    source: CaseSource
    state: CaseState
    state_label: str
    detail: str  # what the check or the national list said
    reason: str  # the reviewer's last reason (rejected, sent back, arbitrated)
    due_on: date | None  # the school's deadline to act (10 working days)
    allowed_actions: list[ActionKind]
    created_at: datetime
    updated_at: datetime


class EvidenceRead(msgspec.Struct):
    id: int
    kind: EvidenceKind


class ActionRead(msgspec.Struct):
    id: int
    action: ActionKind
    action_label: str
    state: ActionState
    note: str
    change_request_id: int | None  # a change: its key-data change request
    keep_school_id: int | None  # an arbitration: the school that kept the record
    reason: str  # the reviewer's reason (rejected, sent back)
    evidence: list[EvidenceRead]
    steps: list[StepRead]  # its review (a change: its request's)
    created_at: datetime


class CaseDetail(CaseRead):
    actions: list[ActionRead] = msgspec.field(default_factory=list)


Note = Annotated[
    str,
    msgspec.Meta(
        max_length=500,
        description="The school's explanation (required to delete)",
        examples=["该生已于2026年9月转入外省就读，不在本校"],
    ),
]


@dataclass(kw_only=True)
class ActionCreate(EvidenceParts):
    """The school's action, as `multipart/form-data`: `action`, a `note`, for a change the
    `field_code` and `new_value`, and evidence photos in parts named by their kind (JPEG,
    PNG, WebP or HEIC, at most 15 MB each, at most 6). Corroborate and change need one of:
    `enrolment_proof` + `household_register`; `id_scan` (both sides of the ID card);
    `registration_receipt`. A key-data change needs `id_scan` in any case."""

    action: ActionKind
    note: Note = ""
    field_code: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=40, description="change: the key field", examples=["id_number"]
            ),
        ]
        | None
    ) = None
    new_value: (
        Annotated[
            str,
            msgspec.Meta(max_length=200, description="change: its new value", examples=["张小明"]),
        ]
        | None
    ) = None


class ArbitrationWrite(msgspec.Struct, forbid_unknown_fields=True):
    keep_school_id: Annotated[
        int, msgspec.Meta(ge=1, description="The school that keeps the record", examples=[12])
    ]
    reason: Annotated[str, msgspec.Meta(max_length=500, examples=["经核实，该生在甲校就读"])] = ""


@dataclass
class ListUpload:
    file: UploadFile


class RowErrorRead(msgspec.Struct):
    row: int
    column: str
    message: str


class ListReport(msgspec.Struct):
    total_rows: int
    matched: int  # rows naming a student on the roll of a school in the caller's region
    created: int  # new cases
    reopened: int  # cases resolved before that the list names again
    unchanged: int  # already open: importing the same list again changes nothing
    not_matched: int
    errors: list[RowErrorRead]  # every row left out, with a Chinese message


class GroupKind(StrEnum):
    region = "region"  # the child regions of the region counted
    school = "school"  # the schools of a county (or the one school)


class KindCount(msgspec.Struct):
    kind: CaseKind
    label: str
    count: int


class CountGroupRead(msgspec.Struct):
    key: str  # a region code, or a school id
    name: str
    total: int
    kinds: list[KindCount]


class CountsRead(msgspec.Struct):
    region_code: str | None
    school_id: int | None
    total: int
    kinds: list[KindCount]
    groups_are: GroupKind
    groups: list[CountGroupRead]

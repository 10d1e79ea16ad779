"""What the change-request endpoints take and answer (staff and parents alike): every value
of a sensitive field masked, every state and step with its Chinese label beside it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated

import msgspec
from litestar.datastructures import UploadFile

from backend.accounts.roles import Role
from backend.records.catalog import Chain
from backend.records.review_tables import (
    EvidenceKind,
    RequestSource,
    RequestState,
    StepKind,
    StepState,
)

FieldCode = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=40,
        description="The catalog's name of the field to change (`GET /students/{id}` lists "
        "them as `field`)",
        examples=["current_address"],
    ),
]
NewValue = Annotated[
    str,
    msgspec.Meta(
        max_length=200,
        description="The new value as a person types it; checked by the field catalog (a "
        "choice's code or its label, a date as 2020-05-15 or 2020年5月15日)",
        examples=["浙江省杭州市西湖区文三路2号"],
    ),
]
Reason = Annotated[
    str,
    msgspec.Meta(
        max_length=500,
        description="Why the value is wrong, in the family's or the school's words",
        examples=["搬家后地址变更"],
    ),
]


@dataclass
class EvidenceParts:
    """Evidence photos, each part named by its kind (JPEG, PNG, WebP or HEIC, at most 15 MB
    each, at most 6 photos and 25 MB in all). A key-data change needs `id_scan`."""

    id_scan: list[UploadFile] | None = None
    household_register: list[UploadFile] | None = None
    enrolment_proof: list[UploadFile] | None = None
    registration_receipt: list[UploadFile] | None = None
    residence_proof: list[UploadFile] | None = None
    transfer_application: list[UploadFile] | None = None
    medical_certificate: list[UploadFile] | None = None
    other: list[UploadFile] | None = None


EVIDENCE_PARTS = tuple(kind.value for kind in EvidenceKind)


@dataclass(kw_only=True)
class ChangeRequestCreate(EvidenceParts):
    """A registrar's request, as `multipart/form-data`: the student, the field, the new value,
    the reason, and evidence photos in parts named by their kind."""

    student_id: int
    field_code: FieldCode
    new_value: NewValue
    reason: Reason = ""


@dataclass(kw_only=True)
class MyChangeRequestCreate(EvidenceParts):
    """A parent's request for their own child, as `multipart/form-data`: the field, the new
    value, the reason and evidence photos; nothing else may be set (who reviews it, its state,
    its school are not the family's to say)."""

    field_code: FieldCode
    new_value: NewValue
    reason: Reason = ""


@dataclass(kw_only=True)
class DraftTranscription(EvidenceParts):
    """A legible paper correction typed in: the new value as the family wrote it, the reason,
    and evidence photos (an ID document for a key field)."""

    new_value: NewValue
    reason: Reason = ""


@dataclass
class ChangeRequestAmendment(EvidenceParts):
    """What the author changes before submitting again; a part left out stays as it was
    (send nothing to submit it unchanged), photos are added to the earlier ones."""

    new_value: NewValue | None = None
    reason: Reason | None = None


class RequestStepRead(msgspec.Struct):
    id: int
    round: int
    position: int
    kind: StepKind
    kind_label: Annotated[str, msgspec.Meta(examples=["学校领导审核"])]
    role: Role
    role_label: Annotated[str, msgspec.Meta(examples=["学校领导"])]
    state: StepState
    state_label: Annotated[str, msgspec.Meta(examples=["处理中"])]
    due_on: date | None  # the last working day to decide it (10 working days, China time)
    overdue: bool
    decided_at: datetime | None
    reason: str  # the reviewer's words (to reject or send back), shown to the author


class EvidencePhotoRead(msgspec.Struct):
    id: int
    kind: EvidenceKind
    kind_label: Annotated[str, msgspec.Meta(examples=["身份证件（正反面）"])]
    content_type: str
    size_bytes: int
    created_at: datetime
    url: Annotated[str, msgspec.Meta(examples=["/evidence/12/photo"])]


class ChangeRequestRead(msgspec.Struct):
    id: int
    student_id: int
    student_name: str
    school_id: int
    class_id: int
    field: Annotated[str, msgspec.Meta(examples=["current_address"])]
    field_label: Annotated[str, msgspec.Meta(examples=["现住址"])]
    chain: Chain
    chain_label: Annotated[str, msgspec.Meta(examples=["学籍数据维护"])]
    # The value when the request was made and the one asked for (masked where sensitive),
    # and what the form prints for each (a choice's label)
    old_value: str | None
    new_value: str | None
    old_display: str | None
    new_display: str | None
    masked: bool
    reason: str
    source: RequestSource
    source_label: Annotated[str, msgspec.Meta(examples=["家长提交"])]
    state: RequestState
    state_label: Annotated[str, msgspec.Meta(examples=["审核中"])]
    round: int
    mine: bool  # the caller made it: theirs to withdraw, amend and submit again
    entered: bool  # entered by the school: no longer withdrawn
    current_step: RequestStepRead | None
    created_at: datetime
    updated_at: datetime
    applied_at: datetime | None


class ChangeRequestDetail(ChangeRequestRead):
    steps: list[RequestStepRead] = msgspec.field(default_factory=list)  # every round, in order
    evidence: list[EvidencePhotoRead] = msgspec.field(default_factory=list)

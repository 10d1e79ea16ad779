"""Request and response bodies of the phone's views."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar

import msgspec

from backend.accounts.schemas import Phone
from backend.dates import DateNotUnderstood, parse_date
from backend.ocr import RetakeReason
from backend.parents.tables import DraftState, ServerVerdict, UploadStatus
from backend.records.tables import LinkStatus


class FormState(StrEnum):
    """A child's form in the current campaign: before any upload, then its latest upload's
    `UploadStatus`; `form_outdated` once a change request was applied to the record after
    the form was printed (whatever was uploaded: the school prints it again)."""

    no_campaign = "no_campaign"
    # A status change (a transfer …) is open on the record: the campaign checks the child once
    # it is done; no photo is taken meanwhile, and the child is not counted as missing.
    change_open = "change_open"
    not_issued = "not_issued"
    form_outdated = "form_outdated"
    not_uploaded = "not_uploaded"
    uploaded = "uploaded"
    checking = "checking"
    retake = "retake"
    not_this_form = "not_this_form"
    record_changed = "record_changed"
    form_superseded = "form_superseded"
    differs = "differs"
    corrections_written = "corrections_written"
    unsigned = "unsigned"
    undated = "undated"
    matches = "matches"
    check_failed = "check_failed"


RegistrationCode = Annotated[
    str,
    msgspec.Meta(
        min_length=4,
        max_length=200,
        description="The registration code printed on the child's confirmation form, or the "
        "text of its QR code (the form link, from any address: the token in it is signed)",
        examples=["K7QM-3XPA", "https://xj.example.edu.cn/m/f/F1.ABCDEFGHJKMN.ABCDEFGHIJKLMNOP"],
    ),
]


class UploadRead(msgspec.Struct):
    id: int
    student_id: int
    status: UploadStatus
    on_behalf: bool
    width: int
    height: int
    created_at: datetime
    duplicate: bool
    photo_url: str


BirthDate = Annotated[
    str,
    msgspec.Meta(
        min_length=6,
        max_length=20,
        description="The child's birth date, as a person types it: 2020-05-15, 2020年5月15日, "
        "2020/5/15, 2020.5.15 or 20200515 (answered back as 2020-05-15).",
        examples=["2020-05-15", "2020年5月15日"],
    ),
]
IdLast6 = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9A-Za-z]{6}$",
        description="The last 6 characters of the child's ID number.",
        examples=["15002X"],
    ),
]


class ChildFact(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The printed form's code and a second fact about the child: exactly one of
    `birth_date` and `id_last6` (400 `one_fact_required` otherwise)."""

    registration_code: RegistrationCode
    birth_date: BirthDate | None = None
    id_last6: IdLast6 | None = None

    def __post_init__(self) -> None:
        if self.birth_date is not None:
            try:
                self.birth_date = parse_date(self.birth_date).isoformat()
            except DateNotUnderstood as exc:
                raise ValueError(f"{exc} - at `$.birth_date`") from None


class SignupStart(ChildFact, kw_only=True):
    phone: Phone


class SignupTicket(msgspec.Struct):
    ticket: str
    phone: str  # masked
    expires_in: int


class SignupConfirm(msgspec.Struct, forbid_unknown_fields=True):
    """Every sign-up makes a new account (a phone that has one is sent to log in), so the
    password it will log in with is always required."""

    # A missing password is told in its own words and code (backend/validation.py).
    REQUIRED: ClassVar[dict[str, tuple[str, str]]] = {
        "password": ("password_required", "首次注册请设置登录密码"),
    }

    ticket: Annotated[str, msgspec.Meta(min_length=10, max_length=64)]
    sms_code: Annotated[
        str,
        msgspec.Meta(
            pattern=r"^\d{6}$",
            description="The code sent by SMS to the phone.",
            examples=["123456"],
        ),
    ]
    password: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=128,
            description="The new account's password: at least 8 characters, not easy to guess.",
        ),
    ]


class FormStatus(msgspec.Struct):
    campaign_id: int | None
    campaign_name: str | None
    form_issued: bool
    form_id: str | None
    status: FormState
    upload_id: int | None
    uploaded_at: datetime | None
    uploaded_on_behalf: bool | None
    photo_url: str | None
    message: str | None = None  # the check's answer, in Chinese
    differing: list[str] = msgspec.field(default_factory=list)  # field labels
    corrections: list[str] = msgspec.field(default_factory=list)  # field labels


class ChildStatus(msgspec.Struct):
    """A child of mine. Until the class confirms the link (`link_status` pending, or
    rejected) only the id and the link's state are shown, none of the record."""

    id: int
    name: str | None
    registry_number: str | None
    school_id: int | None
    class_id: int | None
    form: FormStatus | None
    link_status: LinkStatus = LinkStatus.confirmed
    # a status change (a transfer …) is open on the record (label 异动办理中)
    change_open: bool = False
    change_open_label: str | None = None


class ChildLink(ChildFact, kw_only=True):
    """A signed-in parent adds a child: the form's code and the same second fact."""


class ChildLinked(msgspec.Struct):
    student_id: int
    link_status: LinkStatus  # confirmed, or pending until the class confirms
    message: str


class LinkRead(msgspec.Struct):
    """A parent's link to a child, as the class teacher and the registrar see it."""

    id: int
    student_id: int
    student_name: str
    class_id: int
    phone: str  # the account's, masked
    guardian_slot: int
    status: LinkStatus
    created_at: datetime


class FamilyStatus(msgspec.Struct):
    student_id: int
    name: str
    class_id: int
    form: FormStatus
    # a status change (a transfer …) is open on the record: the campaign checks it once the
    # change is done (no form is printed for it, it is not missing); label 异动办理中
    change_open: bool = False
    change_open_label: str | None = None


class FieldCheck(msgspec.Struct):
    field: str  # the catalog's name for the field (`birth_date`)
    field_label: str  # its Chinese label (出生日期)
    read: str | None  # masked where sensitive (backend.masking)
    match: bool  # with what the form printed
    current_match: bool  # with the record now
    masked: bool = False


class DraftAction(StrEnum):
    """What the teacher answers on reading a handwritten correction."""

    legible = "legible"
    illegible = "illegible"


class CorrectionDraftRead(msgspec.Struct):
    """A correction written on the paper form: one field of one upload of one child."""

    id: int
    student_id: int
    upload_id: int
    class_id: int
    field: Annotated[str, msgspec.Meta(examples=["current_address"])]  # field catalog code
    field_label: Annotated[str, msgspec.Meta(examples=["现住址"])]
    # What the photo check read in the field's printed cell (masked where sensitive); the
    # handwriting itself is not read by OCR: its crop is at `crop_url`.
    printed_read: Annotated[str | None, msgspec.Meta(examples=["浙江省杭州市****"])]
    crop_url: Annotated[str, msgspec.Meta(examples=["/correction-drafts/17/crop"])]
    state: DraftState
    decided_at: datetime | None
    created_at: datetime


class UploadDetail(msgspec.Struct):
    upload: UploadRead
    verdict: ServerVerdict | None
    message: str | None
    retake_reason: RetakeReason | None
    signed: bool | None
    fields: list[FieldCheck]
    corrections: list[CorrectionDraftRead]
    seconds: float | None

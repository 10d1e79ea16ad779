"""Request and response bodies of the records domain."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import msgspec

from backend.accounts.schemas import DbId, RegionCode
from backend.records.ids import ProblemKind
from backend.records.review_tables import EvidenceKind, RequestState
from backend.records.tables import BatchStatus, ImportStatus, StudentStatus


class ImportPhase(StrEnum):
    reading = "reading"
    writing = "writing"


class Problem(msgspec.Struct):
    kind: ProblemKind
    label: str
    detail: str


class PendingChange(msgspec.Struct):
    """A change request for this field still under way, beside the value it would change."""

    request_id: int
    value: str | None  # the value asked for (masked where sensitive)
    display: str | None  # as the form would print it
    state: RequestState  # in_review or returned
    state_label: Annotated[str, msgspec.Meta(examples=["审核中"])]


class FieldValue(msgspec.Struct):
    field: str  # the catalog's name for the field (`birth_date`)
    field_label: str  # its Chinese label (出生日期)
    value: str | None  # stored value (masked where sensitive)
    display: str | None  # what the form prints (choice labels; masked where sensitive)
    key: bool
    masked: bool
    pending: PendingChange | None = None  # a change asked for and not yet decided


STATUS_LABEL = {
    StudentStatus.enrolled: "在籍",
    StudentStatus.removed: "已删除学籍",
    StudentStatus.suspended: "休学",
    StudentStatus.left: "离校",
    StudentStatus.abroad: "境外就读",
    StudentStatus.cancelled: "已注销",
}


class StudentSummary(msgspec.Struct):
    id: int
    registry_number: str
    name: str
    sex: str | None
    birth_date: str | None
    id_number: str | None  # masked
    school_id: int
    class_id: int
    status: StudentStatus
    problems: list[ProblemKind]
    status_label: str = ""  # the status in Chinese (在籍, 休学 …)
    # a status change (a transfer …) is open: no other change is accepted until it is done
    change_open: bool = False


class MissingProof(msgspec.Struct):
    """Proof a record without a resident ID card still needs (`records.proofs`)."""

    kind: EvidenceKind
    label: str


class StudentDetail(msgspec.Struct):
    id: int
    registry_number: str
    school_id: int
    class_id: int
    status: StudentStatus
    fields: list[FieldValue]
    problems: list[Problem]
    updated_at: datetime
    # what the registrar still has to upload (`POST /students/{id}/id-proof`); empty for a
    # resident ID card with its number
    proof_missing: list[MissingProof] = msgspec.field(default_factory=list)
    status_label: str = ""  # the status in Chinese (在籍, 休学 …)
    # a status change (a transfer …) is open on the record: every edit is refused (409
    # `record_change_open`) until it is done; the phone says so instead of offering edits
    change_open: bool = False


class RevealRequest(msgspec.Struct, forbid_unknown_fields=True):
    field: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=40,
            description="The field's code (see `FieldValue.code`)",
            examples=["id_number"],
        ),
    ]


class Revealed(msgspec.Struct):
    field: str
    value: str | None


class ImportStarted(msgspec.Struct):
    id: int
    status: ImportStatus


class ImportRead(msgspec.Struct):
    id: int
    filename: str
    dry_run: bool
    status: ImportStatus
    phase: ImportPhase | None
    done: int
    total: int
    error_count: int
    errors: list[dict[str, Any]]
    summary: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None


AwareDatetime = Annotated[
    datetime,
    msgspec.Meta(
        tz=True,
        description="ISO 8601 with its time zone",
        examples=["2026-09-01T08:00:00+08:00"],
    ),
]
# A campaign's window lies within this range. Outside it a datetime is a mistake or an attack:
# `9999-12-31T23:59:59-12:00` is past the largest datetime once converted to UTC, and the
# database driver fails on it.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def check_window_range(struct: msgspec.Struct, *names: str) -> None:
    """For `__post_init__`: refuse an aware datetime outside [EARLIEST, LATEST). The error names
    the field the way msgspec does, so it reaches the client as that field's error."""
    for name in names:
        value = getattr(struct, name)
        if isinstance(value, datetime) and not EARLIEST <= value < LATEST:
            raise ValueError(f"时间须在2000年至2099年之间 - at `$.{name}`")


CampaignName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=100, examples=["2026年秋季学期数据质量核查"])
]


class CampaignCreate(msgspec.Struct, forbid_unknown_fields=True):
    region_code: Annotated[
        RegionCode,
        msgspec.Meta(description="the province, or one region of it, the check covers"),
    ]
    name: CampaignName
    starts_at: AwareDatetime
    ends_at: Annotated[AwareDatetime, msgspec.Meta(description="exclusive")]
    forms_open: bool = True
    corrections_open: bool = False

    def __post_init__(self) -> None:
        check_window_range(self, "starts_at", "ends_at")


class CampaignUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: CampaignName | msgspec.UnsetType = msgspec.UNSET
    starts_at: AwareDatetime | msgspec.UnsetType = msgspec.UNSET
    ends_at: AwareDatetime | msgspec.UnsetType = msgspec.UNSET
    forms_open: bool | msgspec.UnsetType = msgspec.UNSET
    corrections_open: bool | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        check_window_range(self, "starts_at", "ends_at")


class CampaignState(StrEnum):
    upcoming = "upcoming"  # its window has not begun
    open = "open"
    ended = "ended"  # its window has passed
    closed = "closed"  # closed early by the province, for good


class SetBy(StrEnum):
    """The level whose word a region setting is."""

    province = "province"
    city = "city"


class RegionSettingWrite(msgspec.Struct, forbid_unknown_fields=True):
    """One level's word on one sub-region. A value left out (or null) leaves the level
    above's; a value given may only narrow it."""

    starts_at: AwareDatetime | None = None
    ends_at: Annotated[AwareDatetime, msgspec.Meta(description="exclusive")] | None = None
    forms_open: bool | None = None
    corrections_open: bool | None = None

    def __post_init__(self) -> None:
        check_window_range(self, "starts_at", "ends_at")


class EffectiveWindow(msgspec.Struct):
    """What applies to one region: the campaign narrowed by every level above it."""

    region_code: RegionCode
    starts_at: datetime
    ends_at: datetime
    forms_open: bool
    corrections_open: bool
    open_now: bool


class RegionSettingRead(msgspec.Struct):
    region_code: RegionCode
    region_name: str
    set_by: SetBy
    starts_at: datetime | None
    ends_at: datetime | None
    forms_open: bool | None
    corrections_open: bool | None
    updated_at: datetime
    effective: EffectiveWindow


class CampaignRead(msgspec.Struct):
    id: int
    region_code: RegionCode
    name: str
    starts_at: datetime
    ends_at: datetime
    forms_open: bool
    corrections_open: bool
    active: bool  # the campaign's own window holds now and it is not closed
    state: CampaignState
    closed_at: datetime | None
    # the settings the caller may see: for its own region, those above it and those below
    regions: list[RegionSettingRead]
    # what applies to the caller's own region (a county reviewer's county, a school's
    # county); null when the caller has no region inside the campaign's
    effective: EffectiveWindow | None


class FormBatchCreate(msgspec.Struct, forbid_unknown_fields=True):
    """Issue this campaign's forms for a class."""

    class_id: DbId


class FormBatchSummary(msgspec.Struct):
    """A batch as a class's list of batches shows it (`GET /form-batches/{id}` has its forms)."""

    id: int
    class_id: int
    campaign_id: int
    status: BatchStatus
    total: int
    pdf_ready: bool
    created_at: datetime
    finished_at: datetime | None


class FormBatchRead(msgspec.Struct):
    id: int
    class_id: int
    campaign_id: int
    status: BatchStatus
    done: int
    total: int
    pdf_ready: bool
    forms: list[dict[str, Any]]
    message: str | None = None  # why a `failed` batch failed, for the registrar

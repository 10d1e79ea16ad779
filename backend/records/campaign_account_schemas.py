"""Bodies of the campaign accounts (数据质量核查专用账号)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import msgspec

from backend.accounts.roles import Role
from backend.accounts.schemas import DbId, Password, Phone, RegionCode
from backend.accounts.tables import AccountStatus


class ClosedReason(StrEnum):
    campaign_closed = "campaign_closed"  # closed early: POST /campaigns/{id}/close
    window_ended = "window_ended"  # the window that applies to its county passed
    campaign_deleted = "campaign_deleted"  # a mistaken campaign deleted


class CampaignAccountCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A school's account (`school_id`: a registrar of that school) or a county's
    (`region_code` of the county: a county reviewer), never both."""

    campaign_id: DbId
    phone: Phone
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    initial_password: Password
    school_id: DbId | None = None
    region_code: RegionCode | None = None


class CampaignAccountRead(msgspec.Struct):
    account_id: int
    campaign_id: int
    name: str
    phone: str
    role: Role
    status: AccountStatus
    region_code: str  # the county
    school_id: int | None
    created_at: datetime
    closed_at: datetime | None
    closed_reason: ClosedReason | None

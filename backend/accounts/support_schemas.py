"""Bodies of the support grants (`/support-grants`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from backend.accounts.schemas import RegionCode
from backend.accounts.support import MAX_HOURS, MIN_HOURS
from backend.accounts.support_tables import GrantStatus

GRANT_STATUS_LABEL = {
    GrantStatus.requested: "待该地区管理员审批",
    GrantStatus.approved: "已批准",
    GrantStatus.refused: "已拒绝",
    GrantStatus.revoked: "已撤销",
}


class GrantCreate(msgspec.Struct, forbid_unknown_fields=True):
    region_code: RegionCode
    reason: Annotated[
        str,
        msgspec.Meta(
            min_length=4,
            max_length=500,
            description="What to look into and why: the problem reported, a ticket number",
            examples=["工单 2026-1201-07：西湖区学校A导入后学生照片核验一直失败，需查看其学籍记录"],
        ),
    ]
    hours: Annotated[
        int,
        msgspec.Meta(
            ge=MIN_HOURS,
            le=MAX_HOURS,
            description="How long from the approval: 1 hour to 7 days",
            examples=[8],
        ),
    ]


class GrantDecision(msgspec.Struct, forbid_unknown_fields=True):
    note: Annotated[str, msgspec.Meta(max_length=500, examples=["限查看学校A的学籍记录"])] = ""


class GrantRead(msgspec.Struct):
    id: int
    region_code: str
    reason: str
    hours: int
    status: GrantStatus
    status_label: str
    in_force: bool  # approved and not run out: the sysadmin reads the region's data now
    requested_by_id: int
    requested_by_name: str
    requested_at: datetime
    decided_by_id: int | None
    decided_by_name: str | None
    decided_at: datetime | None
    decision_note: str
    expires_at: datetime | None  # the approval + `hours`; the grant ends by itself then
    revoked_by_id: int | None
    revoked_by_name: str | None
    revoked_at: datetime | None

"""Campaigns: a region's data-quality check, its time window and its two switches. Outside
them the matching endpoints refuse with `outside_window`."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import msgspec

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.principal import Principal
from backend.accounts.roles import Role, ScopeKind
from backend.accounts.scope import Scope, get_scoped
from backend.accounts.tables import Region
from backend.db import transaction
from backend.errors import BadRequest, Forbidden, NotFound, OutsideWindow
from backend.records import open_campaigns
from backend.records.schemas import CampaignCreate, CampaignRead, CampaignUpdate
from backend.records.tables import Campaign

CAMPAIGN_ADMINS = frozenset(
    {Role.county_reviewer, Role.city_admin, Role.province_admin, Role.sysadmin}
)


class Switch(StrEnum):
    forms = "forms_open"
    corrections = "corrections_open"


SWITCH_CLOSED = {
    Switch.forms: "当前核查工作未开放打印确认表",
    Switch.corrections: "当前核查工作未开放录入更正信息",
}


def ancestors(region_code: str) -> list[str]:
    """A county's own code, its city's and its province's (GB/T 2260 structure)."""
    codes = [region_code[:2] + "0000", region_code[:4] + "00", region_code]
    return sorted(set(codes))


def campaign_read(row: dict[str, Any], now: datetime | None = None) -> CampaignRead:
    now = now or datetime.now(UTC)
    return CampaignRead(
        id=row["id"],
        region_code=row["region_code"],
        name=row["name"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        forms_open=row["forms_open"],
        corrections_open=row["corrections_open"],
        active=row["starts_at"] <= now < row["ends_at"],
    )


def _visible(scope: Scope) -> Any:
    """Campaigns covering any part of the scope: those at or above its region, and for a
    region scope also those below it."""
    if scope.kind is ScopeKind.national:
        return None
    region = scope.region_code or ""
    above = Campaign.region_code.is_in(ancestors(region)) if region else None
    if scope.kind is ScopeKind.region:
        prefix = scope.region_prefix
        below = (Campaign.region_code >= prefix.ljust(6, "0")) & (
            Campaign.region_code <= prefix.ljust(6, "9")
        )
        return below | above if above is not None else below
    return above if above is not None else Campaign.id.is_null()


async def active_campaign(region_code: str, now: datetime | None = None) -> dict[str, Any] | None:
    """The most specific campaign covering the region that is open now."""
    now = now or datetime.now(UTC)
    rows = (
        await Campaign.select()
        .where(
            Campaign.region_code.is_in(ancestors(region_code))
            & (Campaign.starts_at <= now)
            & (Campaign.ends_at > now)
        )
        .order_by(Campaign.region_code, ascending=False)
        .order_by(Campaign.id, ascending=False)
    )
    return rows[0] if rows else None


async def require_open(region_code: str, switch: Switch) -> dict[str, Any]:
    campaign = await active_campaign(region_code)
    if campaign is None:
        raise OutsideWindow("当前不在数据质量核查工作时间内")
    if not campaign[switch.value]:
        raise OutsideWindow(SWITCH_CLOSED[switch])
    return campaign


def _require_admin(principal: Principal) -> None:
    if principal.role not in CAMPAIGN_ADMINS:
        raise Forbidden("只有县级及以上学籍主管部门可以设置核查工作", code="campaign_admin_only")


async def create_campaign(principal: Principal, actor: Actor, data: CampaignCreate) -> CampaignRead:
    _require_admin(principal)
    await get_scoped(
        actor, principal.scope, Region, Region.code == data.region_code, "region", data.region_code
    )
    if data.ends_at <= data.starts_at:
        raise BadRequest(
            "结束时间须晚于开始时间",
            code="bad_window",
            field_errors={"ends_at": "结束时间须晚于开始时间"},
        )
    async with transaction():
        rows = await Campaign.insert(
            Campaign(
                region_code=data.region_code,
                name=data.name,
                starts_at=data.starts_at,
                ends_at=data.ends_at,
                forms_open=data.forms_open,
                corrections_open=data.corrections_open,
                created_by=principal.account_id,
                created_at=datetime.now(UTC),
            )
        )
        await audit.record(
            actor, "create", "campaign", rows[0]["id"], after=msgspec.to_builtins(data)
        )
    open_campaigns.forget()
    return await get_campaign(principal, actor, rows[0]["id"])


async def get_campaign(principal: Principal, actor: Actor, campaign_id: int) -> CampaignRead:
    query = Campaign.select().where(Campaign.id == campaign_id)
    where = _visible(principal.scope)
    row = await (query.where(where) if where is not None else query).first()
    if row is None:
        if await Campaign.exists().where(Campaign.id == campaign_id):
            await audit.record(actor, "access_denied", "campaign", campaign_id)
        raise NotFound()
    return campaign_read(row)


async def list_campaigns(scope: Scope) -> list[CampaignRead]:
    query = Campaign.select().order_by(Campaign.starts_at, ascending=False)
    where = _visible(scope)
    rows = await (query.where(where) if where is not None else query).limit(200)
    now = datetime.now(UTC)
    return [campaign_read(row, now) for row in rows]


async def update_campaign(
    principal: Principal, actor: Actor, campaign_id: int, data: CampaignUpdate
) -> CampaignRead:
    _require_admin(principal)
    current = await get_campaign(principal, actor, campaign_id)
    # Only the region's own admins (or above) change it, not those of a county below it.
    if not principal.scope.covers_region(current.region_code):
        raise Forbidden("只能修改本级或下级的核查工作", code="campaign_above_scope")
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    if not changes:
        return current
    starts = changes.get("starts_at", current.starts_at)
    ends = changes.get("ends_at", current.ends_at)
    if ends <= starts:
        raise BadRequest(
            "结束时间须晚于开始时间",
            code="bad_window",
            field_errors={"ends_at": "结束时间须晚于开始时间"},
        )
    before = {k: msgspec.to_builtins(getattr(current, k)) for k in changes}
    async with transaction():
        await Campaign.update({getattr(Campaign, k): v for k, v in changes.items()}).where(
            Campaign.id == campaign_id
        )
        await audit.record(
            actor,
            "update",
            "campaign",
            campaign_id,
            before=before,
            after=msgspec.to_builtins(changes),
        )
    open_campaigns.forget()
    return await get_campaign(principal, actor, campaign_id)

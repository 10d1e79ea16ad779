"""Campaigns as staff read them: each with its state, the region settings the caller may
see, and what applies to the caller's own region."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.principal import Principal
from backend.accounts.roles import ScopeKind
from backend.accounts.scope import Scope
from backend.accounts.tables import Region
from backend.errors import NotFound
from backend.records.campaigns import Window, ancestors, effective, region_contains
from backend.records.schemas import (
    CampaignRead,
    CampaignState,
    EffectiveWindow,
    RegionSettingRead,
    SetBy,
)
from backend.records.tables import Campaign, CampaignSetting


async def region_names(codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = await Region.select(Region.code, Region.name).where(Region.code.is_in(list(codes)))
    return {row["code"]: row["name"] for row in rows}


def campaign_state(campaign: dict[str, Any], now: datetime) -> CampaignState:
    if campaign["closed_at"] is not None:
        return CampaignState.closed
    if now < campaign["starts_at"]:
        return CampaignState.upcoming
    if now >= campaign["ends_at"]:
        return CampaignState.ended
    return CampaignState.open


def _effective_read(window: Window, region_code: str, now: datetime) -> EffectiveWindow:
    return EffectiveWindow(
        region_code,
        window.starts_at,
        window.ends_at,
        window.forms_open,
        window.corrections_open,
        window.open_at(now),
    )


def _sees(scope: Scope, region_code: str) -> bool:
    """Settings a caller may see: of its own region, the regions above it and below it."""
    if scope.kind is ScopeKind.national:
        return True
    own = scope.region_code
    if own is None:
        return False
    below = scope.kind is ScopeKind.region and region_contains(own, region_code)
    return below or region_code in ancestors(own)


def setting_read(
    campaign: dict[str, Any],
    setting: dict[str, Any],
    settings: list[dict[str, Any]],
    names: dict[str, str],
    now: datetime,
) -> RegionSettingRead:
    code = setting["region_code"]
    return RegionSettingRead(
        region_code=code,
        region_name=names.get(code, ""),
        set_by=SetBy(setting["set_by"]),
        starts_at=setting["starts_at"],
        ends_at=setting["ends_at"],
        forms_open=setting["forms_open"],
        corrections_open=setting["corrections_open"],
        updated_at=setting["updated_at"],
        effective=_effective_read(effective(campaign, settings, code), code, now),
    )


def _campaign_read(
    scope: Scope,
    campaign: dict[str, Any],
    settings: list[dict[str, Any]],
    names: dict[str, str],
    now: datetime,
) -> CampaignRead:
    state = campaign_state(campaign, now)
    visible = sorted(
        (s for s in settings if _sees(scope, s["region_code"])),
        key=lambda s: (s["region_code"], s["set_by"] != SetBy.province),
    )
    own = scope.region_code
    mine = None
    if own is not None and region_contains(campaign["region_code"], own):
        mine = _effective_read(effective(campaign, settings, own), own, now)
    return CampaignRead(
        id=campaign["id"],
        region_code=campaign["region_code"],
        name=campaign["name"],
        starts_at=campaign["starts_at"],
        ends_at=campaign["ends_at"],
        forms_open=campaign["forms_open"],
        corrections_open=campaign["corrections_open"],
        active=state is CampaignState.open,
        state=state,
        closed_at=campaign["closed_at"],
        regions=[setting_read(campaign, s, settings, names, now) for s in visible],
        effective=mine,
    )


async def _reads(scope: Scope, campaigns: list[dict[str, Any]]) -> list[CampaignRead]:
    ids = [c["id"] for c in campaigns]
    settings: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if ids:
        for row in await CampaignSetting.select().where(CampaignSetting.campaign.is_in(ids)):
            settings[row["campaign"]].append(row)
    names = await region_names({s["region_code"] for rows in settings.values() for s in rows})
    now = datetime.now(UTC)
    return [_campaign_read(scope, c, settings[c["id"]], names, now) for c in campaigns]


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


async def load_campaign(principal: Principal, actor: Actor, campaign_id: int) -> dict[str, Any]:
    """The campaign if the caller may see it; else 404, audited when it exists."""
    query = Campaign.select().where(Campaign.id == campaign_id)
    where = _visible(principal.scope)
    row = await (query.where(where) if where is not None else query).first()
    if row is None:
        if await Campaign.exists().where(Campaign.id == campaign_id):
            await audit.record(actor, "access_denied", "campaign", campaign_id)
        raise NotFound()
    return row


async def get_campaign(principal: Principal, actor: Actor, campaign_id: int) -> CampaignRead:
    [read] = await _reads(principal.scope, [await load_campaign(principal, actor, campaign_id)])
    return read


async def list_campaigns(scope: Scope) -> list[CampaignRead]:
    query = Campaign.select().order_by(Campaign.starts_at, ascending=False)
    where = _visible(scope)
    rows = await (query.where(where) if where is not None else query).limit(200)
    return await _reads(scope, rows)

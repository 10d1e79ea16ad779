"""Campaigns as staff read them: each with its state, the region settings the caller may
see, and what applies to the caller's own region."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from backend.accounts.audit import Actor
from backend.accounts.principal import Principal
from backend.accounts.scope import Scope, get_scoped, scoped
from backend.accounts.scope_rules import region_contains
from backend.accounts.tables import Region
from backend.records.campaigns import Window, effective
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
        (s for s in settings if scope.overlaps_region(s["region_code"])),
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


async def load_campaign(principal: Principal, actor: Actor, campaign_id: int) -> dict[str, Any]:
    """The campaign if the caller may see it (its region contains the caller's or lies inside
    it); else 404, audited when it exists."""
    return await get_scoped(
        actor, principal.scope, Campaign, Campaign.id == campaign_id, "campaign", campaign_id
    )


async def get_campaign(principal: Principal, actor: Actor, campaign_id: int) -> CampaignRead:
    [read] = await _reads(principal.reach, [await load_campaign(principal, actor, campaign_id)])
    return read


async def list_campaigns(scope: Scope) -> list[CampaignRead]:
    query = Campaign.select().order_by(Campaign.starts_at, ascending=False)
    rows = await scoped(query, scope, Campaign).limit(200)
    return await _reads(scope, rows)

"""A sub-region's window and switches (notice 001, appendix 2): the province's word on any
city or county of it, a city's on its counties inside what the province allows; a county has
none. Each level's word is its own row and only narrows (`records.campaigns.effective`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require, require_over
from backend.accounts.principal import Principal
from backend.accounts.roles import Role
from backend.accounts.scope import get_scoped
from backend.accounts.scope_rules import region_contains
from backend.accounts.tables import Region
from backend.db import transaction
from backend.errors import Conflict, NotFound
from backend.records import open_campaigns
from backend.records.campaign_admin import check_window, lock_province, refuse_if_closed
from backend.records.campaign_reads import load_campaign, region_names, setting_read
from backend.records.campaigns import (
    SWITCH_LABEL,
    Switch,
    Window,
    allowance,
    china_date,
)
from backend.records.schemas import RegionSettingRead, RegionSettingWrite, SetBy
from backend.records.tables import CampaignSetting

# Whose word a setting is, by the role that sets it (who may: `Action.set_campaign_region`).
SETTERS: dict[Role, SetBy] = {
    Role.province_admin: SetBy.province,
    Role.sysadmin: SetBy.province,
    Role.city_admin: SetBy.city,
}


def _setter_level(principal: Principal) -> SetBy:
    require(principal, Action.set_campaign_region)
    return SETTERS[principal.role]


async def _setting_target(
    principal: Principal, actor: Actor, campaign_id: int, region_code: str
) -> tuple[SetBy, dict[str, Any]]:
    """Who sets (province or city), and the campaign, once every refusal has been made."""
    level = _setter_level(principal)
    campaign = await load_campaign(principal, actor, campaign_id)
    await get_scoped(
        actor, principal.scope, Region, Region.code == region_code, "region", region_code
    )
    require_over(principal, Action.set_campaign_region, region_code)
    if not region_contains(campaign["region_code"], region_code):
        raise Conflict("该地区不在此核查工作的范围内", code="region_outside_campaign")
    refuse_if_closed(campaign)
    return level, campaign


def _refuse_wider(data: RegionSettingWrite, allowed: Window) -> None:
    problems: dict[str, str] = {}
    if data.starts_at is not None and data.starts_at < allowed.starts_at:
        problems["starts_at"] = f"开始时间不能早于{china_date(allowed.starts_at)}"
    if data.ends_at is not None and data.ends_at > allowed.ends_at:
        problems["ends_at"] = f"结束时间不能晚于{china_date(allowed.ends_at)}"
    for switch in Switch:
        if getattr(data, switch.value) and not allowed.switch(switch):
            problems[switch.value] = f"上级未开放“{SWITCH_LABEL[switch]}”，不能为下级开放"
    if problems:
        raise Conflict(
            "不能超出上级允许的范围：" + "；".join(problems.values()),
            code="campaign_setting_wider",
            field_errors=problems,
        )


async def set_region(
    principal: Principal,
    actor: Actor,
    campaign_id: int,
    region_code: str,
    data: RegionSettingWrite,
) -> RegionSettingRead:
    """Write the caller's level's word on a sub-region, in place of its earlier one."""
    level, campaign = await _setting_target(principal, actor, campaign_id, region_code)
    check_window(data.starts_at, data.ends_at)
    values = msgspec.structs.asdict(data)
    async with transaction():
        await lock_province(campaign["region_code"])
        settings = await CampaignSetting.select().where(CampaignSetting.campaign == campaign_id)
        _refuse_wider(data, allowance(campaign, settings, region_code, level))
        mine = (CampaignSetting.region_code == region_code) & (CampaignSetting.set_by == level)
        previous = next(
            (s for s in settings if (s["region_code"], s["set_by"]) == (region_code, level)), None
        )
        now = datetime.now(UTC)
        written = {**values, "updated_by": principal.account_id, "updated_at": now}
        if previous is None:
            await CampaignSetting.insert(
                CampaignSetting(
                    campaign=campaign_id, region_code=region_code, set_by=level, **written
                )
            )
        else:
            await CampaignSetting.update(
                {getattr(CampaignSetting, k): v for k, v in written.items()}
            ).where((CampaignSetting.campaign == campaign_id) & mine)
        await audit.record(
            actor,
            "set_region",
            "campaign",
            campaign_id,
            before=_setting_audit(previous),
            after={"region_code": region_code, "set_by": level.value, **to_plain(values)},
        )
    open_campaigns.forget()
    settings = await CampaignSetting.select().where(CampaignSetting.campaign == campaign_id)
    [row] = [s for s in settings if (s["region_code"], s["set_by"]) == (region_code, level)]
    names = await region_names({region_code})
    return setting_read(campaign, row, settings, names, datetime.now(UTC))


async def clear_region(
    principal: Principal, actor: Actor, campaign_id: int, region_code: str
) -> None:
    """Take the caller's level's word on a sub-region back: the level above's applies again."""
    level, _ = await _setting_target(principal, actor, campaign_id, region_code)
    mine = (
        (CampaignSetting.campaign == campaign_id)
        & (CampaignSetting.region_code == region_code)
        & (CampaignSetting.set_by == level)
    )
    async with transaction():
        previous = await CampaignSetting.select().where(mine).first()
        if previous is None:
            raise NotFound("本级没有为该地区设置过核查时间和开关", code="no_region_setting")
        await CampaignSetting.delete().where(mine)
        await audit.record(
            actor, "clear_region", "campaign", campaign_id, before=_setting_audit(previous)
        )
    open_campaigns.forget()


def to_plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: msgspec.to_builtins(v) for k, v in values.items()}


def _setting_audit(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    keys = ("region_code", "set_by", "starts_at", "ends_at", "forms_open", "corrections_open")
    return to_plain({k: row[k] for k in keys})

"""The staff side of campaigns: the province opens, changes, closes and deletes them; the
province and the cities set windows and switches for their sub-regions; every write is
audited. The rule itself (what applies where) is in `records.campaigns`."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import msgspec

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.principal import Principal
from backend.accounts.roles import Role, ScopeKind
from backend.accounts.scope import Scope, get_scoped
from backend.accounts.tables import Region
from backend.db import is_postgres, transaction
from backend.errors import BadRequest, Conflict, Forbidden, NotFound
from backend.records.campaigns import (
    SWITCH_LABEL,
    Switch,
    Window,
    allowance,
    ancestors,
    china_date,
    effective,
    region_contains,
    region_prefix,
)
from backend.records.schemas import (
    CampaignCreate,
    CampaignRead,
    CampaignState,
    CampaignUpdate,
    EffectiveWindow,
    RegionSettingRead,
    RegionSettingWrite,
    SetBy,
)
from backend.records.tables import Campaign, CampaignSetting, FormBatch, IssuedForm

# Who opens, changes, closes and deletes campaigns: the province (a sysadmin acts for it).
PROVINCE_LEVEL = frozenset({Role.province_admin, Role.sysadmin})
# Who sets a sub-region's window and switches, and whose word it is.
SETTERS: dict[Role, SetBy] = {
    Role.province_admin: SetBy.province,
    Role.sysadmin: SetBy.province,
    Role.city_admin: SetBy.city,
}

_LOCK_NAMESPACE = 0x4341  # pg_advisory_xact_lock(namespace, province): campaign writes queue
_NOT_PROVINCE = (
    "核查工作由省级教育行政部门开启和管理；地市可在省级允许的范围内为所辖区县设定时间和开关"
)
_COUNTY_CANNOT_SET = (
    "区县不能设置核查时间和功能开关：由省级为各地区设定，地市可在省级允许的范围内为所辖区县设定"
)


def _require_province(principal: Principal) -> None:
    if principal.role not in PROVINCE_LEVEL:
        raise Forbidden(_NOT_PROVINCE, code="campaign_province_only")


def _setter_level(principal: Principal) -> SetBy:
    level = SETTERS.get(principal.role)
    if level is None:
        raise Forbidden(_COUNTY_CANNOT_SET, code="campaign_county_cannot_set")
    return level


def _require_covers(principal: Principal, campaign: dict[str, Any]) -> None:
    """Only the province's own admins (or a national sysadmin) change its campaigns."""
    if not principal.scope.covers_region(campaign["region_code"]):
        raise Forbidden("只能修改本级或下级的核查工作", code="campaign_above_scope")


def _refuse_if_closed(campaign: dict[str, Any]) -> None:
    if campaign["closed_at"] is not None:
        raise Conflict(
            f"该核查工作已于{china_date(campaign['closed_at'])}关闭，不能再修改；"
            "如需继续核查，请开启新的核查工作",
            code="campaign_closed",
        )


def _check_window(starts: datetime | None, ends: datetime | None) -> None:
    if starts is not None and ends is not None and ends <= starts:
        raise BadRequest(
            "结束时间须晚于开始时间",
            code="bad_window",
            field_errors={"ends_at": "结束时间须晚于开始时间"},
        )


async def _lock(region_code: str) -> None:
    """Inside a transaction: campaign writes of one province queue, so two overlapping
    campaigns cannot both pass the check. (SQLite's write transactions queue anyway.)"""
    if is_postgres():
        await Campaign.raw(
            "SELECT pg_advisory_xact_lock({}, {})", _LOCK_NAMESPACE, int(region_code[:2])
        )


async def _region_names(codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = await Region.select(Region.code, Region.name).where(Region.code.is_in(list(codes)))
    return {row["code"]: row["name"] for row in rows}


async def _refuse_overlap(
    region_code: str, starts: datetime, ends: datetime, exclude: int | None = None
) -> None:
    """No two campaigns of one region, or of a region and one inside it, at the same time."""
    prefix = region_prefix(region_code)
    related = Campaign.region_code.is_in(ancestors(region_code)) | (
        (Campaign.region_code >= prefix.ljust(6, "0"))
        & (Campaign.region_code <= prefix.ljust(6, "9"))
    )
    query = Campaign.select(
        Campaign.name, Campaign.region_code, Campaign.starts_at, Campaign.ends_at
    ).where(related & (Campaign.starts_at < ends) & (Campaign.ends_at > starts))
    if exclude is not None:
        query = query.where(Campaign.id != exclude)
    other = await query.order_by(Campaign.starts_at).first()
    if other is None:
        return
    region = (await _region_names({other["region_code"]})).get(other["region_code"], "")
    raise Conflict(
        f"与已有的核查工作“{other['name']}”（{region}，{china_date(other['starts_at'])}至"
        f"{china_date(other['ends_at'])}）时间重叠：同一地区同一时间只能有一项核查工作。"
        "请调整时间，或先关闭那项核查工作",
        code="campaign_overlaps",
    )


# Reads


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


def _setting_read(
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
        regions=[_setting_read(campaign, s, settings, names, now) for s in visible],
        effective=mine,
    )


async def _reads(scope: Scope, campaigns: list[dict[str, Any]]) -> list[CampaignRead]:
    ids = [c["id"] for c in campaigns]
    settings: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if ids:
        for row in await CampaignSetting.select().where(CampaignSetting.campaign.is_in(ids)):
            settings[row["campaign"]].append(row)
    names = await _region_names({s["region_code"] for rows in settings.values() for s in rows})
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


async def _load(principal: Principal, actor: Actor, campaign_id: int) -> dict[str, Any]:
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
    [read] = await _reads(principal.scope, [await _load(principal, actor, campaign_id)])
    return read


async def list_campaigns(scope: Scope) -> list[CampaignRead]:
    query = Campaign.select().order_by(Campaign.starts_at, ascending=False)
    where = _visible(scope)
    rows = await (query.where(where) if where is not None else query).limit(200)
    return await _reads(scope, rows)


# The campaign itself: the province's


async def insert_campaign(actor: Actor, account_id: int, data: CampaignCreate) -> int:
    """Store a campaign that overlaps none; audited. The caller checked who may."""
    _check_window(data.starts_at, data.ends_at)
    async with transaction():
        await _lock(data.region_code)
        await _refuse_overlap(data.region_code, data.starts_at, data.ends_at)
        rows = await Campaign.insert(
            Campaign(
                region_code=data.region_code,
                name=data.name,
                starts_at=data.starts_at,
                ends_at=data.ends_at,
                forms_open=data.forms_open,
                corrections_open=data.corrections_open,
                created_by=account_id,
                created_at=datetime.now(UTC),
            )
        )
        campaign_id = int(rows[0]["id"])
        await audit.record(
            actor, "create", "campaign", campaign_id, after=msgspec.to_builtins(data)
        )
    return campaign_id


async def create_campaign(principal: Principal, actor: Actor, data: CampaignCreate) -> CampaignRead:
    _require_province(principal)
    await get_scoped(
        actor, principal.scope, Region, Region.code == data.region_code, "region", data.region_code
    )
    campaign_id = await insert_campaign(actor, principal.account_id, data)
    return await get_campaign(principal, actor, campaign_id)


async def _province_campaign(
    principal: Principal, actor: Actor, campaign_id: int
) -> dict[str, Any]:
    _require_province(principal)
    campaign = await _load(principal, actor, campaign_id)
    _require_covers(principal, campaign)
    return campaign


async def update_campaign(
    principal: Principal, actor: Actor, campaign_id: int, data: CampaignUpdate
) -> CampaignRead:
    current = await _province_campaign(principal, actor, campaign_id)
    _refuse_if_closed(current)
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    if not changes:
        return await get_campaign(principal, actor, campaign_id)
    starts = changes.get("starts_at", current["starts_at"])
    ends = changes.get("ends_at", current["ends_at"])
    _check_window(starts, ends)
    before = {k: msgspec.to_builtins(current[k]) for k in changes}
    async with transaction():
        if {"starts_at", "ends_at"} & changes.keys():
            await _lock(current["region_code"])
            await _refuse_overlap(current["region_code"], starts, ends, exclude=campaign_id)
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
    return await get_campaign(principal, actor, campaign_id)


async def close_campaign(principal: Principal, actor: Actor, campaign_id: int) -> CampaignRead:
    """End the campaign now, for good; its forms and photos stay as the record's archive."""
    campaign = await _province_campaign(principal, actor, campaign_id)
    _refuse_if_closed(campaign)
    now = datetime.now(UTC)
    if now < campaign["starts_at"]:
        raise Conflict(
            "该核查工作尚未开始，不需要关闭；如是误建，请删除它", code="campaign_not_started"
        )
    if now >= campaign["ends_at"]:
        raise Conflict(
            f"该核查工作已于{china_date(campaign['ends_at'])}结束", code="campaign_ended"
        )
    async with transaction():
        await Campaign.update({Campaign.ends_at: now, Campaign.closed_at: now}).where(
            Campaign.id == campaign_id
        )
        await audit.record(
            actor,
            "close",
            "campaign",
            campaign_id,
            before={"ends_at": msgspec.to_builtins(campaign["ends_at"])},
            after={"ends_at": msgspec.to_builtins(now), "closed_at": msgspec.to_builtins(now)},
        )
    return await get_campaign(principal, actor, campaign_id)


async def delete_campaign(principal: Principal, actor: Actor, campaign_id: int) -> None:
    """Delete a mistaken campaign, only while no form of it was printed."""
    campaign = await _province_campaign(principal, actor, campaign_id)
    async with transaction():
        if is_postgres():  # a form being issued now commits first, and is seen below
            await Campaign.select(Campaign.id).where(Campaign.id == campaign_id).lock_rows()
        printed = await IssuedForm.exists().where(IssuedForm.campaign == campaign_id)
        if printed or await FormBatch.exists().where(FormBatch.campaign == campaign_id):
            raise Conflict(
                "该核查工作已打印确认表，不能删除；如需结束，请关闭该核查工作"
                "（已打印的确认表和上传的照片会作为档案保留）",
                code="campaign_has_forms",
            )
        await CampaignSetting.delete().where(CampaignSetting.campaign == campaign_id)
        await Campaign.delete().where(Campaign.id == campaign_id)
        fields = ("region_code", "name", "starts_at", "ends_at", "forms_open", "corrections_open")
        await audit.record(
            actor,
            "delete",
            "campaign",
            campaign_id,
            before={k: msgspec.to_builtins(campaign[k]) for k in fields},
        )


# A sub-region's window and switches: the province's and the cities' word


async def _setting_target(
    principal: Principal, actor: Actor, campaign_id: int, region_code: str
) -> tuple[SetBy, dict[str, Any]]:
    """Who sets (province or city), and the campaign, once every refusal has been made."""
    level = _setter_level(principal)
    campaign = await _load(principal, actor, campaign_id)
    await get_scoped(
        actor, principal.scope, Region, Region.code == region_code, "region", region_code
    )
    if region_code == principal.scope.region_code or region_prefix(region_code) == region_code[:2]:
        raise Forbidden(
            "只能为下级地区设置核查时间和功能开关；本级的由上级设定（省级请直接修改核查工作）",
            code="campaign_setting_not_below",
        )
    if not region_contains(campaign["region_code"], region_code):
        raise Conflict("该地区不在此核查工作的范围内", code="region_outside_campaign")
    _refuse_if_closed(campaign)
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
    _check_window(data.starts_at, data.ends_at)
    values = msgspec.structs.asdict(data)
    async with transaction():
        await _lock(campaign["region_code"])
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
    settings = await CampaignSetting.select().where(CampaignSetting.campaign == campaign_id)
    [row] = [s for s in settings if (s["region_code"], s["set_by"]) == (region_code, level)]
    names = await _region_names({region_code})
    return _setting_read(campaign, row, settings, names, datetime.now(UTC))


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


def to_plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: msgspec.to_builtins(v) for k, v in values.items()}


def _setting_audit(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    keys = ("region_code", "set_by", "starts_at", "ends_at", "forms_open", "corrections_open")
    return to_plain({k: row[k] for k in keys})

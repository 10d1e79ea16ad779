"""The campaign itself, the province's: opened, changed, closed and deleted by the province
(a national sysadmin acts for it), never two at once for related regions; every write
audited. Sub-regions' settings are in `records.campaign_regions`, reads in
`records.campaign_reads`, the rule of what applies where in `records.campaigns`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require, require_over
from backend.accounts.principal import Principal
from backend.accounts.roles import ScopeKind
from backend.accounts.scope import Scope, get_scoped, scope_filter
from backend.accounts.tables import Region
from backend.db import is_postgres, transaction
from backend.errors import BadRequest, Conflict
from backend.records import campaign_accounts, open_campaigns
from backend.records.campaign_account_schemas import ClosedReason
from backend.records.campaign_reads import get_campaign, load_campaign, region_names
from backend.records.campaigns import china_date
from backend.records.schemas import CampaignCreate, CampaignRead, CampaignUpdate
from backend.records.tables import Campaign, CampaignSetting, FormBatch, IssuedForm

_LOCK_NAMESPACE = 0x4341  # pg_advisory_xact_lock(namespace, province): campaign writes queue


def refuse_if_closed(campaign: dict[str, Any]) -> None:
    if campaign["closed_at"] is not None:
        raise Conflict(
            f"该核查工作已于{china_date(campaign['closed_at'])}关闭，不能再修改；"
            "如需继续核查，请开启新的核查工作",
            code="campaign_closed",
        )


def check_window(starts: datetime | None, ends: datetime | None) -> None:
    if starts is not None and ends is not None and ends <= starts:
        raise BadRequest(
            "结束时间须晚于开始时间",
            code="bad_window",
            field_errors={"ends_at": "结束时间须晚于开始时间"},
        )


async def lock_province(region_code: str) -> None:
    """Inside a transaction: campaign writes of one province queue, so two overlapping
    campaigns cannot both pass the check. (SQLite's write transactions queue anyway.)"""
    if is_postgres():
        await Campaign.raw(
            "SELECT pg_advisory_xact_lock({}, {})", _LOCK_NAMESPACE, int(region_code[:2])
        )


async def _refuse_overlap(
    region_code: str, starts: datetime, ends: datetime, exclude: int | None = None
) -> None:
    """No two campaigns of one region, or of a region and one inside it, at the same time."""
    related = scope_filter(Scope(ScopeKind.region, region_code=region_code), Campaign)
    query = Campaign.select(
        Campaign.name, Campaign.region_code, Campaign.starts_at, Campaign.ends_at
    ).where(related & (Campaign.starts_at < ends) & (Campaign.ends_at > starts))
    if exclude is not None:
        query = query.where(Campaign.id != exclude)
    other = await query.order_by(Campaign.starts_at).first()
    if other is None:
        return
    region = (await region_names({other["region_code"]})).get(other["region_code"], "")
    raise Conflict(
        f"与已有的核查工作“{other['name']}”（{region}，{china_date(other['starts_at'])}至"
        f"{china_date(other['ends_at'])}）时间重叠：同一地区同一时间只能有一项核查工作。"
        "请调整时间，或先关闭那项核查工作",
        code="campaign_overlaps",
    )


# The campaign itself: the province's


async def insert_campaign(actor: Actor, account_id: int, data: CampaignCreate) -> int:
    """Store a campaign that overlaps none; audited. The caller checked who may."""
    check_window(data.starts_at, data.ends_at)
    async with transaction():
        await lock_province(data.region_code)
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
    open_campaigns.forget()
    return campaign_id


async def create_campaign(principal: Principal, actor: Actor, data: CampaignCreate) -> CampaignRead:
    require(principal, Action.open_campaign)
    await get_scoped(
        actor, principal.scope, Region, Region.code == data.region_code, "region", data.region_code
    )
    campaign_id = await insert_campaign(actor, principal.account_id, data)
    return await get_campaign(principal, actor, campaign_id)


async def _province_campaign(
    principal: Principal, actor: Actor, campaign_id: int
) -> dict[str, Any]:
    """A campaign the caller may change: only the province's own admins (or a national
    sysadmin) change its campaigns."""
    require(principal, Action.change_campaign)
    campaign = await load_campaign(principal, actor, campaign_id)
    require_over(principal, Action.change_campaign, campaign["region_code"])
    return campaign


async def update_campaign(
    principal: Principal, actor: Actor, campaign_id: int, data: CampaignUpdate
) -> CampaignRead:
    current = await _province_campaign(principal, actor, campaign_id)
    refuse_if_closed(current)
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    if not changes:
        return await get_campaign(principal, actor, campaign_id)
    starts = changes.get("starts_at", current["starts_at"])
    ends = changes.get("ends_at", current["ends_at"])
    check_window(starts, ends)
    before = {k: msgspec.to_builtins(current[k]) for k in changes}
    async with transaction():
        if {"starts_at", "ends_at"} & changes.keys():
            await lock_province(current["region_code"])
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
    open_campaigns.forget()
    return await get_campaign(principal, actor, campaign_id)


async def close_campaign(principal: Principal, actor: Actor, campaign_id: int) -> CampaignRead:
    """End the campaign now, for good; its forms and photos stay as the record's archive."""
    campaign = await _province_campaign(principal, actor, campaign_id)
    refuse_if_closed(campaign)
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
        # Its campaign accounts (数据质量核查专用账号) close with it, in the same transaction.
        await campaign_accounts.close_for_campaign(
            actor, campaign_id, ClosedReason.campaign_closed, now
        )
    open_campaigns.forget()
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
        await campaign_accounts.close_for_campaign(
            actor, campaign_id, ClosedReason.campaign_deleted
        )
        await Campaign.delete().where(Campaign.id == campaign_id)
        fields = ("region_code", "name", "starts_at", "ends_at", "forms_open", "corrections_open")
        await audit.record(
            actor,
            "delete",
            "campaign",
            campaign_id,
            before={k: msgspec.to_builtins(campaign[k]) for k in fields},
        )
    open_campaigns.forget()

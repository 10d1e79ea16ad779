"""Campaign accounts (数据质量核查专用账号): notice 001 gives each county and each school extra
accounts for the check, "closed automatically when the check ends" (核查期结束，专用账号自动关闭).

An admin of a county or above creates one inside its scope, bound to a campaign that covers
the place and is not over there: for a school, a registrar of that school; for a county, a
county reviewer of it (the role must rank below the admin's). It is an ordinary account
(`insert_account`, must change its password at first sign-in) plus a `campaign_account` row.

It is closed (status `closed`, for good; every session ended; audited) when its campaign ends:
- at once when the campaign is closed early or deleted (`close_for_campaign`, called by
  `campaign_admin` in the same transaction);
- by the worker's cron `close_ended_campaign_accounts` (every 5 minutes) once the window that
  applies to its county (the campaign's, narrowed by the province's and city's settings)
  has passed — a window that "simply passes" has no moment anyone writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from backend.accounts import audit
from backend.accounts.admin import end_sessions, insert_account
from backend.accounts.audit import Actor
from backend.accounts.org import region_level
from backend.accounts.passwords import check_password_rules, hash_password
from backend.accounts.permissions import Action, require, require_over
from backend.accounts.principal import Principal
from backend.accounts.roles import RegionLevel, Role
from backend.accounts.scope import get_scoped, scoped
from backend.accounts.scope_rules import region_contains
from backend.accounts.tables import ACCOUNT_STATUS, Account, AccountStatus, Region, School
from backend.config import Settings
from backend.db import is_postgres, transaction
from backend.errors import BadRequest, Conflict
from backend.pages import Page, window
from backend.records.campaign_account_schemas import (
    CampaignAccountCreate,
    CampaignAccountRead,
    ClosedReason,
)
from backend.records.campaign_account_tables import CampaignAccount
from backend.records.campaign_reads import load_campaign
from backend.records.campaigns import china_date, effective
from backend.records.tables import Campaign, CampaignSetting


async def _place(
    principal: Principal, actor: Actor, data: CampaignAccountCreate
) -> tuple[Role, str, int | None]:
    """The account's role, county and school, each checked to lie in the admin's scope."""
    if (data.school_id is None) == (data.region_code is None):
        raise BadRequest(
            "请指定学校或区县（二选一）",
            code="place_required",
            field_errors={"school_id": "学校专用账号填学校，区县专用账号填区县代码"},
        )
    if data.school_id is not None:
        school = await get_scoped(
            actor, principal.scope, School, School.id == data.school_id, "school", data.school_id
        )
        return Role.registrar, school["region_code"], school["id"]
    code = data.region_code or ""
    if region_level(code) is not RegionLevel.county:
        raise BadRequest(
            "专用账号只下发到区县和学校两级",
            code="county_required",
            field_errors={"region_code": "请填写区县的行政区划代码"},
        )
    await get_scoped(actor, principal.scope, Region, Region.code == code, "region", code)
    return Role.county_reviewer, code, None


async def _window_end(campaign: dict[str, Any], region_code: str) -> datetime:
    settings = await CampaignSetting.select().where(CampaignSetting.campaign == campaign["id"])
    return effective(campaign, settings, region_code).ends_at


async def _refuse_if_over(campaign: dict[str, Any] | None, county: str) -> None:
    """409 when the campaign is gone, closed, or its window over for the county."""
    if campaign is None:
        raise Conflict("该核查工作已被删除", code="campaign_ended")
    ends = await _window_end(campaign, county)
    if campaign["closed_at"] is not None or ends <= datetime.now(UTC):
        raise Conflict(
            f"该地区的核查工作已于{china_date(min(ends, campaign['ends_at']))}结束，"
            "不能再下发专用账号",
            code="campaign_ended",
        )


async def create(
    settings: Settings, principal: Principal, actor: Actor, data: CampaignAccountCreate
) -> CampaignAccountRead:
    require(principal, Action.create_campaign_account)
    campaign = await load_campaign(principal, actor, data.campaign_id)
    role, county, school = await _place(principal, actor, data)
    require_over(principal, Action.create_campaign_account, role)
    if not region_contains(campaign["region_code"], county):
        raise Conflict("该核查工作不覆盖这所学校或区县", code="campaign_not_here")
    await _refuse_if_over(campaign, county)
    check_password_rules(
        data.initial_password, user_inputs=[data.phone, data.name], field="initial_password"
    )
    password_hash = await hash_password(settings, data.initial_password)
    now = datetime.now(UTC)
    async with transaction():
        if is_postgres():
            # A close of the campaign committing now waits for this, or this for it: either
            # the close sees this account, or this sees the campaign closed.
            await Campaign.select(Campaign.id).where(Campaign.id == campaign["id"]).lock_rows()
        fresh = await Campaign.select().where(Campaign.id == campaign["id"]).first()
        await _refuse_if_over(fresh, county)
        account_id = await insert_account(
            role,
            data.phone,
            data.name,
            password_hash,
            must_change_password=True,
            region_code=county,
            school=school,
            school_class=None,
        )
        await CampaignAccount.insert(
            CampaignAccount(
                account=account_id,
                campaign=campaign["id"],
                region_code=county,
                school=school,
                created_by=principal.account_id,
                created_at=now,
            )
        )
        await audit.record(
            actor,
            "create_campaign_account",
            "account",
            account_id,
            after={
                "campaign": campaign["id"],
                "role": role.value,
                "region_code": county,
                "school": school,
                "name": data.name,
            },
        )
    return await get(principal, actor, account_id)


_COLUMNS = (
    CampaignAccount.account,
    CampaignAccount.campaign,
    CampaignAccount.region_code,
    CampaignAccount.school,
    CampaignAccount.created_at,
    CampaignAccount.closed_at,
    CampaignAccount.closed_reason,
    CampaignAccount.account.name.as_alias("name"),
    CampaignAccount.account.phone.as_alias("phone"),
    CampaignAccount.account.role.as_alias("role"),
    CampaignAccount.account.status.as_alias("status"),
)


def _read(row: dict[str, Any]) -> CampaignAccountRead:
    reason = row["closed_reason"]
    return CampaignAccountRead(
        account_id=row["account"],
        campaign_id=row["campaign"],
        name=row["name"],
        phone=row["phone"],
        role=Role(row["role"]),
        status=AccountStatus(row["status"]),
        region_code=row["region_code"],
        school_id=row["school"],
        created_at=row["created_at"],
        closed_at=row["closed_at"],
        closed_reason=ClosedReason(reason) if reason else None,
    )


async def get(principal: Principal, actor: Actor, account_id: int) -> CampaignAccountRead:
    where = CampaignAccount.account == account_id
    await get_scoped(actor, principal.scope, CampaignAccount, where, "campaign_account", account_id)
    row = await CampaignAccount.select(*_COLUMNS).where(where).first()
    assert row is not None  # found in scope a moment ago; a binding is never deleted alone
    return _read(row)


async def list_for_campaign(
    principal: Principal, actor: Actor, campaign_id: int, page: int, page_size: int
) -> Page[CampaignAccountRead]:
    """The campaign's accounts inside the caller's scope, open and closed."""
    await load_campaign(principal, actor, campaign_id)
    mine = CampaignAccount.campaign == campaign_id
    query = scoped(CampaignAccount.select(*_COLUMNS), principal.scope, CampaignAccount)
    query = query.where(mine).order_by(CampaignAccount.id)
    count = scoped(CampaignAccount.count(), principal.scope, CampaignAccount).where(mine)
    w = window(page, page_size)
    rows, total = await w.fetch(query, count)
    return w.page([_read(r) for r in rows], total)


async def _close(
    actor: Actor, bindings: Sequence[dict[str, Any]], reason: ClosedReason, now: datetime
) -> list[int]:
    """Close the bound accounts (inside the caller's transaction): status `closed`, every
    session ended, the binding marked, one audit row each. Returns the accounts closed."""
    ids = [int(b["account"]) for b in bindings]
    if not ids:
        return []
    closed = await ACCOUNT_STATUS.move_all(AccountStatus.closed, Account.id.is_in(ids))
    await end_sessions(ids, "campaign_account_closed", now)
    await CampaignAccount.update(
        {CampaignAccount.closed_at: now, CampaignAccount.closed_reason: reason.value}
    ).where(CampaignAccount.account.is_in(ids) & CampaignAccount.closed_at.is_null())
    for binding in bindings:
        await audit.record(
            actor,
            "close_campaign_account",
            "account",
            binding["account"],
            after={"campaign": binding["campaign"], "reason": reason.value},
        )
    return list(closed)


async def close_for_campaign(
    actor: Actor, campaign_id: int, reason: ClosedReason, now: datetime | None = None
) -> list[int]:
    """Close every open account of the campaign: it was closed early or deleted. Inside the
    caller's transaction (the campaign's own write)."""
    now = now or datetime.now(UTC)
    async with transaction():
        bindings = await CampaignAccount.select(
            CampaignAccount.account, CampaignAccount.campaign
        ).where((CampaignAccount.campaign == campaign_id) & CampaignAccount.closed_at.is_null())
        return await _close(actor, bindings, reason, now)


async def close_ended(now: datetime | None = None) -> int:
    """The cron: close every open campaign account whose campaign is over where it works
    (closed, or the window that applies to its county has passed). Returns how many."""
    now = now or datetime.now(UTC)
    actor = Actor.system("close_ended_campaign_accounts")
    # Only campaigns over somewhere: closed, past their end, or with a region's end passed.
    over_somewhere = (
        Campaign.closed_at.is_not_null()
        | (Campaign.ends_at <= now)
        | Campaign.id.is_in(
            CampaignSetting.select(CampaignSetting.campaign).where(CampaignSetting.ends_at <= now)
        )
    )
    candidates = Campaign.select(Campaign.id).where(over_somewhere)
    bindings = await CampaignAccount.select(
        CampaignAccount.account, CampaignAccount.campaign, CampaignAccount.region_code
    ).where(CampaignAccount.closed_at.is_null() & CampaignAccount.campaign.is_in(candidates))
    if not bindings:
        return 0
    campaign_ids = sorted({b["campaign"] for b in bindings})
    campaigns = {c["id"]: c for c in await Campaign.select().where(Campaign.id.is_in(campaign_ids))}
    settings = await CampaignSetting.select().where(CampaignSetting.campaign.is_in(campaign_ids))
    ended: dict[ClosedReason, list[dict[str, Any]]] = {}
    for binding in bindings:
        campaign = campaigns[binding["campaign"]]
        mine = [s for s in settings if s["campaign"] == campaign["id"]]
        if campaign["closed_at"] is not None:
            ended.setdefault(ClosedReason.campaign_closed, []).append(binding)
        elif effective(campaign, mine, binding["region_code"]).ends_at <= now:
            ended.setdefault(ClosedReason.window_ended, []).append(binding)
    closed = 0
    for reason, group in ended.items():
        async with transaction():
            closed += len(await _close(actor, group, reason, now))
    return closed

"""Which schools have not started a campaign: the province (and a city, a county) watches
who is behind (notice 001, appendix 2: each level "督促检查…工作进展情况").

**Started** means: the school's registrar has issued (printed) the campaign's confirmation
forms for at least one of its classes — a `form_batch` of the campaign exists at the school,
whatever became of its PDF. Everything else a school does in a campaign (parents' photos,
corrections) comes after the forms, so a school with no batch has not begun. The list counts
the schools of one region (the caller's own, or one inside it) that the campaign covers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from piccolo.query.functions.aggregate import Count

from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.roles import ScopeKind
from backend.accounts.scope import Scope, get_scoped, scoped
from backend.accounts.scope_rules import region_contains
from backend.accounts.tables import Region, School, SchoolClass
from backend.errors import Conflict
from backend.pages import window
from backend.records.campaign_reads import load_campaign, region_names
from backend.records.campaigns import effective
from backend.records.holds import on_roll
from backend.records.not_started_schemas import SchoolNotStarted, SchoolsNotStarted
from backend.records.tables import CampaignSetting, FormBatch, Student


def _narrower(campaign_region: str, asked: str) -> str | None:
    """The part of `asked` the campaign covers, as a region; None when they are apart."""
    if region_contains(campaign_region, asked):
        return asked
    if region_contains(asked, campaign_region):
        return campaign_region
    return None


async def schools_not_started(
    principal: Principal,
    actor: Actor,
    campaign_id: int,
    region_code: str | None,
    page: int,
    page_size: int,
    now: datetime | None = None,
) -> SchoolsNotStarted:
    require(principal, Action.list_schools_not_started)
    campaign = await load_campaign(principal, actor, campaign_id)
    asked = region_code or principal.reach.region_code or campaign["region_code"]
    await get_scoped(actor, principal.reach, Region, Region.code == asked, "region", asked)
    region = _narrower(campaign["region_code"], asked)
    if region is None:
        raise Conflict("该核查工作不覆盖这个地区", code="campaign_not_here")
    area = Scope(ScopeKind.region, region_code=region)

    def schools(query: Any) -> Any:
        return scoped(scoped(query, principal.reach, School), area, School)

    started = FormBatch.select(FormBatch.school).where(FormBatch.campaign == campaign_id)
    waiting = School.id.not_in(started)
    all_schools = int(await schools(School.count()))
    w = window(page, page_size)
    rows, total = await w.fetch(
        schools(School.select()).where(waiting).order_by(School.region_code, School.code),
        schools(School.count()).where(waiting),
    )
    ids = [r["id"] for r in rows]
    classes = await _counts(SchoolClass, SchoolClass.school, ids)
    students = await _counts(Student, Student.school, ids, on_roll())
    settings = await CampaignSetting.select().where(CampaignSetting.campaign == campaign_id)
    names = await region_names({region} | {r["region_code"] for r in rows})
    now = now or datetime.now(UTC)
    items = []
    for r in rows:
        window_here = effective(campaign, settings, r["region_code"])
        items.append(
            SchoolNotStarted(
                school_id=r["id"],
                school_code=r["code"],
                name=r["name"],
                region_code=r["region_code"],
                region_name=names.get(r["region_code"], ""),
                classes=classes.get(r["id"], 0),
                students=students.get(r["id"], 0),
                window_starts_at=window_here.starts_at,
                window_ends_at=window_here.ends_at,
                open_now=campaign["closed_at"] is None and window_here.open_at(now),
                forms_open=window_here.forms_open,
            )
        )
    return SchoolsNotStarted(
        campaign_id=campaign_id,
        region_code=region,
        region_name=names.get(region, ""),
        schools=all_schools,
        started=all_schools - total,
        items=items,
        page=w.number,
        page_size=w.size,
        total=total,
    )


async def _counts(table: Any, column: Any, ids: list[int], *where: Any) -> dict[int, int]:
    if not ids:
        return {}
    query = table.select(column.as_alias("school"), Count()).where(column.is_in(ids))
    for clause in where:
        query = query.where(clause)
    rows = await query.group_by(column)
    return {int(r["school"]): int(r["count"]) for r in rows}

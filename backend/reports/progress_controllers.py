"""HTTP for campaign progress: a node's counts with its children, and its daily series."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get
from litestar.params import FromPath, QueryParameter

from backend.accounts.permissions import Action
from backend.deps import ActorDep, IdFilter, PrincipalDep
from backend.http import allowed
from backend.openapi import BY_ID, QUERY, SIGNED_IN, ErrorCodes, errors
from backend.pages import DEFAULT_PAGE_SIZE, PageNumber, PageSize, window
from backend.reports import progress
from backend.reports.progress_schemas import (
    ProgressRead,
    ProgressSeriesRead,
    child_read,
    counts_read,
    day_read,
    node_read,
)

RegionFilter = Annotated[
    str | None,
    QueryParameter(pattern=r"^\d{6}$", description="A province, city or county (GB/T 2260)"),
]
NODE: ErrorCodes = {400: "one_node_only", 403: "progress_staff_only"}


class ProgressController(Controller):
    path = "/campaigns/{campaign_id:int}/progress"
    tags = ["progress"]
    guards = [allowed(Action.read_progress)]

    @get(
        "/",
        summary="Read a campaign's progress at one node, with its children",
        operation_id="getCampaignProgress",
        responses=errors(SIGNED_IN, QUERY, BY_ID, NODE),
    )
    async def node(
        self,
        campaign_id: FromPath[int],
        principal: PrincipalDep,
        actor: ActorDep,
        region_code: RegionFilter = None,
        school_id: IdFilter = None,
        class_id: IdFilter = None,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> ProgressRead:
        """The campaign's counts at one node — a province, city or county (`region_code`), a
        school (`school_id`) or a class (`class_id`); none: the caller's own — and one page
        of its children one level down (a province's cities, a city's counties, a county's
        schools, a school's classes; a class has none), each with the same counts. `as_of`
        says how fresh they are: every change committed before it is counted
        (`refreshed_at`: when the node's counts were last written).

        **Who may call**: staff. A region's reviewers and admins read their region and
        below, a school's registrar and leader the school and its classes, a teacher their
        class.

        **Errors**: `progress_staff_only` (403) for a parent; `not_found` (404) for a
        campaign, region, school or class outside the caller's scope or the campaign's
        region (audited); `one_node_only` (400) when more than one of `region_code`,
        `school_id`, `class_id` is given; `validation_error` (400) for a malformed one."""
        campaign = await progress.load_campaign(principal, actor, campaign_id)
        query = progress.NodeQuery(region_code, school_id, class_id)
        node = await progress.find_node(principal, actor, campaign, query)
        counts, refreshed_at = await progress.node_counts_at(campaign_id, node)
        w = window(page, page_size)
        children, total = await progress.children(campaign_id, node, w.size, w.offset)
        as_of, waiting = await progress.as_of(node)
        return ProgressRead(
            campaign_id=campaign_id,
            node=node_read(node),
            counts=counts_read(counts),
            as_of=as_of,
            schools_waiting=waiting,
            refreshed_at=refreshed_at,
            children=w.page([child_read(c) for c in children], total),
        )

    @get(
        "/series",
        summary="Read a campaign's daily progress at one node",
        operation_id="getCampaignProgressSeries",
        responses=errors(SIGNED_IN, QUERY, BY_ID, NODE, {400: "no_class_series"}),
    )
    async def series(
        self,
        campaign_id: FromPath[int],
        principal: PrincipalDep,
        actor: ActorDep,
        region_code: RegionFilter = None,
        school_id: IdFilter = None,
    ) -> ProgressSeriesRead:
        """The campaign's days (China dates) at a province, city, county or school (none:
        the caller's own), oldest first, each with what happened that day (forms issued,
        paper returned, first photos, photos that matched, corrections entered, problem
        records resolved) and the running totals: a trend line.

        **Who may call**: staff, for a node in their scope; a teacher's own node is a class,
        whose series is not kept.

        **Errors**: `progress_staff_only` (403) for a parent; `not_found` (404) for a node
        outside the caller's scope or the campaign's region (audited); `one_node_only`
        (400) for more than one node; `no_class_series` (400) for a class (a teacher);
        `validation_error` (400) for a malformed parameter."""
        campaign = await progress.load_campaign(principal, actor, campaign_id)
        query = progress.NodeQuery(region_code, school_id)
        node = await progress.find_node(principal, actor, campaign, query)
        days = await progress.series(campaign_id, node)
        as_of, _waiting = await progress.as_of(node)
        return ProgressSeriesRead(
            campaign_id=campaign_id,
            node=node_read(node),
            as_of=as_of,
            days=[day_read(d) for d in days],
        )


ROUTES: list[Any] = [ProgressController]

"""HTTP for the transfers bulletin: a region's (or a school's own) figures for a period."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Controller, get
from litestar.params import QueryParameter

from backend.accounts.permissions import Action
from backend.deps import ActorDep, PrincipalDep
from backend.http import allowed
from backend.openapi import QUERY, SIGNED_IN, errors
from backend.transfers import bulletin
from backend.transfers import queue_summary as _shows_changes_in_queues  # noqa: F401
from backend.transfers.bulletin_schemas import BulletinRead

RegionFilter = Annotated[
    str | None,
    QueryParameter(
        name="region",
        pattern=r"^\d{6}$",
        description="A province, city or county (GB/T 2260); none: the caller's own",
    ),
]
DateFrom = Annotated[
    date, QueryParameter(name="from", description="The period's first day (China date)")
]
DateTo = Annotated[
    date, QueryParameter(name="to", description="The period's last day (China date), included")
]


class BulletinController(Controller):
    path = "/status-changes/bulletin"
    tags = ["status changes"]
    guards = [allowed(Action.read_transfer_bulletin)]

    @get(
        "/",
        summary="Read the transfers bulletin's figures of a region for a period",
        operation_id="getStatusChangeBulletin",
        responses=errors(
            SIGNED_IN,
            QUERY,
            {400: "bad_period", 403: "bulletin_staff_only", 404: "not_found"},
        ),
    )
    async def read(
        self,
        principal: PrincipalDep,
        actor: ActorDep,
        date_from: DateFrom,
        date_to: DateTo,
        region: RegionFilter = None,
    ) -> BulletinRead:
        """The figures the monthly bulletin (通报) gives of a region: for within-province
        (省内) and cross-province (跨省) transfers, how many started in the period, how many
        of those completed by its end and the completion rate — each transfer once
        (`total`), and by side: sent (转出) and received (转入) — and, by step (转入学校启动,
        转出学校核办, 转出地审核, 转入地审核), how many steps were someone's to decide and how
        many of them were left more than 10 working days unhandled, with their share; the
        other status changes' started and completed counts; all of it also for the previous
        period of the same length, and for each child region one level down (a province's
        cities, a city's counties, the nation's provinces) to rank them. A period reaching
        past today is counted up to today (`as_of`).

        **Who may call**: registrars, school leaders and the authorities. An authority reads
        its region and any region below it (`region`; none: its own); a school's registrar
        or leader reads the school's own figures (no `region`).

        **Errors**: `bulletin_staff_only` (403) for a parent or a teacher; `not_found` (404)
        for a region outside the caller's scope (audited), or any region asked by a school;
        `bad_period` (400) when `from` is after `to` or the period is longer than 366 days;
        `validation_error` (400) for a malformed parameter."""
        return await bulletin.bulletin(principal, actor, region, date_from, date_to)


ROUTES: list[Any] = [BulletinController]

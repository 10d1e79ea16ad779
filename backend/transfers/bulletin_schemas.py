"""What the transfers bulletin answers (`GET /status-changes/bulletin`), and the Chinese labels
of the kinds, spans and steps it (and the review queue's summary) shows."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import msgspec

from backend.records.review_tables import StepKind
from backend.transfers.effects import KIND_LABEL
from backend.transfers.tables import ChangeKind, Span

__all__ = ["KIND_LABEL"]

SPAN_LABEL: dict[Span, str] = {
    Span.county: "县内转学",
    Span.province: "省内跨县转学",
    Span.country: "跨省转学",
}
STEP_LABEL: dict[StepKind, str] = {
    StepKind.start: "转入学校启动",
    StepKind.release: "转出学校核办",
    StepKind.review_out: "转出地主管部门审核",
    StepKind.review_in: "转入地主管部门审核",
}


class Level(StrEnum):
    """Whose figures: the nation's, a region's, or a school's own."""

    nation = "nation"
    province = "province"
    city = "city"
    county = "county"
    school = "school"


class Reach(StrEnum):
    """How the bulletin groups transfers: within a province (a county's or another county's
    of the same province, spans `county` and `province`) or across provinces (`country`)."""

    within_province = "within_province"  # 省内转学
    cross_province = "cross_province"  # 跨省转学


REACH_LABEL: dict[Reach, str] = {
    Reach.within_province: "省内转学",
    Reach.cross_province: "跨省转学",
}
REACH_SPANS: dict[Reach, tuple[Span, ...]] = {
    Reach.within_province: (Span.county, Span.province),
    Reach.cross_province: (Span.country,),
}


class Flow(msgspec.Struct):
    """Changes started in the period and, of them, completed by its end: this period and the
    previous one of the same length. A rate is None when nothing started."""

    started: int
    completed: int
    completion_rate: float | None  # completed / started, 0…1
    started_before: int
    completed_before: int
    completion_rate_before: float | None
    rate_change: float | None  # completion_rate - completion_rate_before (percentage points / 100)


class StepFigures(msgspec.Struct):
    """One kind of step of the transfers: how many were someone's to decide during the period
    (current at some moment of it), and how many of them were left unhandled past their due
    date (超过10个工作日未核办): still current at the period's end with its due date passed, or
    decided in the period after its due date. This period and the previous one."""

    step_kind: StepKind
    label: str  # 转出学校核办, …
    handled: int  # the step was someone's to decide during the period
    overdue: int
    overdue_share: float | None  # overdue / handled, 0…1
    handled_before: int
    overdue_before: int
    overdue_share_before: float | None
    overdue_change: int  # overdue - overdue_before


class ReachFigures(msgspec.Struct):
    """Within-province or cross-province transfers of one region (or school)."""

    reach: Reach
    label: str  # 省内转学 / 跨省转学
    # transfers whose sending (转出) or receiving (转入) side is here, each counted once
    total: Flow
    sent: Flow  # the sending school is here (转出)
    received: Flow  # the receiving school is here (转入)
    steps: list[StepFigures]  # start, release, review_out, review_in: each on its own side
    overdue: int  # of every step
    overdue_share: float | None
    overdue_before: int
    overdue_change: int


class KindFigures(msgspec.Struct):
    """Another kind of status change filed here (休学, 复学, …)."""

    kind: ChangeKind
    label: str
    flow: Flow


class Figures(msgspec.Struct):
    """The bulletin's figures of one region or school."""

    code: str  # a region's code (GB/T 2260), or a school's id as text
    name: str
    transfers: list[ReachFigures]  # within_province, cross_province
    others: list[KindFigures]  # every other kind, in ChangeKind's order


class BulletinRead(msgspec.Struct):
    """The figures of a region (or the caller's school) for a period, with the previous period
    of the same length, and the same figures for each child region one level down (a
    province's cities, a city's counties; the nation's provinces), in code order, for ranking.
    Dates are China dates, both ends included."""

    level: Level
    region_code: str | None
    school_id: int | None
    name: str
    date_from: date
    date_to: date
    previous_from: date
    previous_to: date
    as_of: date  # China's date when counted: a period reaching past it is counted up to it
    counted_at: datetime  # when these figures were counted (kept up to a minute)
    figures: Figures
    children_are: Level | None  # the level of `children` (province, city, county); None: none
    children: list[Figures]

"""The transfers bulletin's figures for a region or a school (as the ministry's monthly 通报
counts them): for within-province and cross-province transfers, how many started in a
period, how many of those completed by its end, the completion rate, and, by step, how many
steps were left more than 10 working days unhandled (超过10个工作日未核办); the same for the
previous period of the same length; the other kinds' started and completed counts; and the
same figures for each child region one level down, so that regions can be ranked.

Definitions (China dates, both ends of a period included; a period reaching past today is
counted up to today, `end`):

- *started*: the change's chain opened in the period (`started_on`); *completed*: of those,
  completed before the end of the period's last day.
- A transfer is *here* when its sending school (转出, `from_*`) or its receiving school (转入,
  `to_*`) is; `sent` and `received` count each side, `total` each transfer once.
- A step is on the side whose seat decides it: `start` and `review_in` on the receiving side,
  `release` and `review_out` on the sending side.
- A step was *handled* in the period when it was someone's to decide at some moment of it
  (current before the end, not decided before the start; a cancelled step is not counted).
  It was *overdue* when its due date (10 working days, `due_on`) passed before the period's
  end and it was not decided by then: still current at the end, or decided later than its due
  date (in the period or after it).

Two statements of plain aggregates (PostgreSQL and SQLite alike), one over `status_change`
(by region or school and start date: indexes `status_change_sent`, `status_change_received`)
and one over the transfers' `review_step` rows (`review_step_change_steps`, a partial index of
the status changes' steps). A province's figures read most of its transfers: they are kept a
minute per region and period (`TTL`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic
from typing import Any

from backend.accounts.audit import Actor
from backend.accounts.org import region_level
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.roles import ScopeKind
from backend.accounts.scope import get_scoped
from backend.accounts.scope_rules import region_prefix
from backend.accounts.tables import Region, School
from backend.db import fetch_rows, is_postgres
from backend.errors import BadRequest, NotFound
from backend.records.review_tables import StepKind, SubjectKind
from backend.transfers.bulletin_schemas import (
    KIND_LABEL,
    REACH_LABEL,
    REACH_SPANS,
    STEP_LABEL,
    BulletinRead,
    Figures,
    Flow,
    KindFigures,
    Level,
    Reach,
    ReachFigures,
    StepFigures,
)
from backend.transfers.tables import ChangeKind
from backend.workdays import CHINA, china_today

MAX_DAYS = 366  # a year at most per period
TRANSFER_STEPS = (StepKind.start, StepKind.release, StepKind.review_out, StepKind.review_in)
RECEIVING_STEPS = (StepKind.start, StepKind.review_in)
_REACH_OF: dict[str, Reach] = {
    span.value: reach for reach, spans in REACH_SPANS.items() for span in spans
}


# How many leading digits of a region code name a child one level down
_CHILD_DIGITS: dict[Level, tuple[int, Level] | None] = {
    Level.nation: (2, Level.province),
    Level.province: (4, Level.city),
    Level.city: (6, Level.county),
    Level.county: None,
    Level.school: None,
}


class BadPeriod(BadRequest):
    code = "bad_period"
    message = "统计期间无效：开始日期须不晚于结束日期，且不超过366天"


@dataclass(frozen=True, slots=True)
class Node:
    level: Level
    name: str
    region_code: str | None = None
    school_id: int | None = None


@dataclass(frozen=True, slots=True)
class Period:
    start: date
    end: date  # the last day counted: the period's last day, or today if earlier

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(0), CHINA).astimezone(UTC)

    @property
    def end_at(self) -> datetime:  # the first instant after the last day counted
        return datetime.combine(self.end + timedelta(days=1), time(0), CHINA).astimezone(UTC)


def periods(date_from: date, date_to: date, today: date) -> tuple[Period, Period, date]:
    """This period (up to today) and the previous one of the same length, just before it; and
    the previous period's first day."""
    days = (date_to - date_from).days + 1
    if days < 1 or days > MAX_DAYS:
        raise BadPeriod()
    before_start = date_from - timedelta(days=days)
    return (
        Period(date_from, min(date_to, today)),
        Period(before_start, date_from - timedelta(days=1)),
        before_start,
    )


async def find_node(principal: Principal, actor: Actor, region_code: str | None) -> Node:
    """The region asked for, in the caller's scope (404 otherwise, audited), or the caller's
    own region or school when none is asked. A school's staff read their school's own figures
    only: a region asked by them answers 404 as one outside their scope."""
    scope = principal.reach  # counts, no one's data: a sysadmin reads them as progress
    if region_code is not None:
        row = await get_scoped(
            actor, scope, Region, Region.code == region_code, "region", region_code
        )
        if scope.kind not in (ScopeKind.region, ScopeKind.national):
            raise NotFound()
        return Node(Level(region_level(row["code"]).value), row["name"], row["code"])
    if scope.kind is ScopeKind.school and scope.school_id is not None:
        school = (
            await School.select(School.id, School.name).where(School.id == scope.school_id).first()
        )
        if school is None:
            raise NotFound()
        return Node(Level.school, school["name"], school_id=school["id"])
    if scope.kind is ScopeKind.region and scope.region_code is not None:
        own = await Region.select(Region.name).where(Region.code == scope.region_code).first()
        name = own["name"] if own else scope.region_code
        return Node(Level(region_level(scope.region_code).value), name, scope.region_code)
    if scope.kind is ScopeKind.national:
        return Node(Level.nation, "全国")
    raise NotFound()  # a class's teacher or a parent: refused before by the permission


_NAMED = re.compile(r"%\((\w+)\)s")


def _positional(sql: str, values: dict[str, Any]) -> tuple[str, list[Any]]:
    """`%(name)s` markers as the `{}` placeholders of `fetch_rows`, with their arguments in
    order (a name may appear many times)."""
    args: list[Any] = []

    def one(match: re.Match[str]) -> str:
        args.append(values[match.group(1)])
        return "{}"

    return _NAMED.sub(one, sql), args


def _inside(node: Node, side: str) -> tuple[str, dict[str, Any]]:
    """Whether a change's sending (`from`) or receiving (`to`) side is inside the node."""
    if node.level is Level.school:
        return f"c.{side}_school = %(school)s", {"school": node.school_id}
    if node.region_code is None:
        return f"c.{side}_region IS NOT NULL", {}
    prefix = region_prefix(node.region_code)
    low, high = prefix.ljust(6, "0"), prefix.ljust(6, "9")
    return f"(c.{side}_region >= %(low)s AND c.{side}_region <= %(high)s)", {
        "low": low,
        "high": high,
    }


def _child(node: Node, side: str) -> str:
    digits = _CHILD_DIGITS[node.level]
    if digits is None:
        return "''"
    return f"substr(c.{side}_region, 1, {digits[0]})"


def _china_day(column: str) -> str:
    if is_postgres():
        return f"CAST({column} AT TIME ZONE 'Asia/Shanghai' AS date)"
    return f"date({column}, '+8 hours')"


def _values(node: Node, now: Period, before: Period) -> dict[str, Any]:
    return {
        "start": now.start,
        "end": now.end,
        "start_at": now.start_at,
        "end_at": now.end_at,
        "before_start": before.start,
        "before_end": before.end,
        "before_start_at": before.start_at,
        "before_end_at": before.end_at,
        **_inside(node, "from")[1],
    }


async def _flows(node: Node, now: Period, before: Period) -> list[dict[str, Any]]:
    """Changes started in either period, by side, child region, kind and span; `dup_child`
    and `dup_total` mark a receiving side already counted as a sending one (in the child
    region, in the node)."""
    sent, _ = _inside(node, "from")
    received, _ = _inside(node, "to")
    window = "c.started_on >= %(before_start)s AND c.started_on <= %(end)s"
    sql = f"""
SELECT s.side, s.child, s.kind, s.span, s.dup_child, s.dup_total,
       SUM(CASE WHEN s.started_on >= %(start)s THEN 1 ELSE 0 END) AS started,
       SUM(CASE WHEN s.started_on >= %(start)s AND s.completed_at < %(end_at)s
                THEN 1 ELSE 0 END) AS completed,
       SUM(CASE WHEN s.started_on < %(start)s THEN 1 ELSE 0 END) AS started_before,
       SUM(CASE WHEN s.started_on < %(start)s AND s.completed_at < %(before_end_at)s
                THEN 1 ELSE 0 END) AS completed_before
FROM (
  SELECT 'sent' AS side, {_child(node, "from")} AS child, c.kind, c.span, c.started_on,
         c.completed_at, 0 AS dup_child, 0 AS dup_total
  FROM status_change c
  WHERE {sent} AND {window}
  UNION ALL
  SELECT 'received' AS side, {_child(node, "to")} AS child, c.kind, c.span, c.started_on,
         c.completed_at,
         CASE WHEN {sent} AND {_child(node, "from")} = {_child(node, "to")}
              THEN 1 ELSE 0 END AS dup_child,
         CASE WHEN {sent} THEN 1 ELSE 0 END AS dup_total
  FROM status_change c
  WHERE {received} AND c.kind = 'transfer' AND {window}
) s
GROUP BY s.side, s.child, s.kind, s.span, s.dup_child, s.dup_total"""
    text, args = _positional(sql, _values(node, now, before))
    return await fetch_rows(text, *args)


async def _steps(node: Node, now: Period, before: Period) -> list[dict[str, Any]]:
    """The transfers' steps handled in either period, with those overdue, by child region
    (of the step's side), span and kind of step."""
    sent, _ = _inside(node, "from")
    received, _ = _inside(node, "to")
    receiving = ", ".join(f"'{kind.value}'" for kind in RECEIVING_STEPS)
    late = f"(rs.decided_at IS NULL OR {_china_day('rs.decided_at')} > rs.due_on)"
    handled = (
        "rs.became_current_at < %(end_at)s "
        "AND (rs.decided_at IS NULL OR rs.decided_at >= %(start_at)s)"
    )
    handled_before = (
        "rs.became_current_at < %(before_end_at)s "
        "AND (rs.decided_at IS NULL OR rs.decided_at >= %(before_start_at)s)"
    )
    sql = f"""
SELECT CASE WHEN rs.kind IN ({receiving}) THEN {_child(node, "to")}
            ELSE {_child(node, "from")} END AS child,
       c.span, rs.kind,
       SUM(CASE WHEN {handled} THEN 1 ELSE 0 END) AS handled,
       SUM(CASE WHEN {handled} AND rs.due_on < %(end)s AND {late} THEN 1 ELSE 0 END)
           AS overdue,
       SUM(CASE WHEN {handled_before} THEN 1 ELSE 0 END) AS handled_before,
       SUM(CASE WHEN {handled_before} AND rs.due_on < %(before_end)s AND {late}
                THEN 1 ELSE 0 END) AS overdue_before
FROM status_change c
JOIN review_step rs ON rs.subject_kind = '{SubjectKind.status_change.value}'
     AND rs.subject_id = c.id
WHERE c.kind = 'transfer' AND ({sent} OR {received})
  AND rs.state IN ('current', 'approved', 'rejected', 'sent_back')
  AND rs.became_current_at < %(end_at)s
  AND (rs.decided_at IS NULL OR rs.decided_at >= %(before_start_at)s)
  AND CASE WHEN rs.kind IN ({receiving}) THEN {received} ELSE {sent} END
GROUP BY 1, c.span, rs.kind"""
    text, args = _positional(sql, _values(node, now, before))
    return await fetch_rows(text, *args)


# -- the figures, from the aggregates --------------------------------------------------------


@dataclass
class _Tally:
    started: int = 0
    completed: int = 0
    started_before: int = 0
    completed_before: int = 0

    def add(self, row: dict[str, Any]) -> None:
        self.started += int(row["started"] or 0)
        self.completed += int(row["completed"] or 0)
        self.started_before += int(row["started_before"] or 0)
        self.completed_before += int(row["completed_before"] or 0)

    def flow(self) -> Flow:
        rate = _rate(self.completed, self.started)
        rate_before = _rate(self.completed_before, self.started_before)
        return Flow(
            started=self.started,
            completed=self.completed,
            completion_rate=rate,
            started_before=self.started_before,
            completed_before=self.completed_before,
            completion_rate_before=rate_before,
            rate_change=None
            if rate is None or rate_before is None
            else round(rate - rate_before, 4),
        )


@dataclass
class _Late:
    handled: int = 0
    overdue: int = 0
    handled_before: int = 0
    overdue_before: int = 0

    def add(self, row: dict[str, Any]) -> None:
        self.handled += int(row["handled"] or 0)
        self.overdue += int(row["overdue"] or 0)
        self.handled_before += int(row["handled_before"] or 0)
        self.overdue_before += int(row["overdue_before"] or 0)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _flow_key(row: dict[str, Any], kind: ChangeKind) -> tuple[str, Reach | None]:
    if kind is ChangeKind.transfer:
        return row["side"], _REACH_OF.get(row["span"] or "", Reach.within_province)
    return "other", None


def _figures(
    code: str,
    name: str,
    flows: Iterable[dict[str, Any]],
    steps: Iterable[dict[str, Any]],
    dup: str,
) -> Figures:
    """One node's figures from its aggregate rows; `dup` names the column marking a
    receiving side already counted as a sending one at this level."""
    sides: dict[tuple[str, Reach], _Tally] = {}
    totals: dict[Reach, _Tally] = {reach: _Tally() for reach in Reach}
    others: dict[ChangeKind, _Tally] = {}
    for row in flows:
        kind = ChangeKind(row["kind"])
        if kind is not ChangeKind.transfer:
            if row["side"] == "sent":
                others.setdefault(kind, _Tally()).add(row)
            continue
        reach = _REACH_OF.get(row["span"] or "", Reach.within_province)
        sides.setdefault((row["side"], reach), _Tally()).add(row)
        if row["side"] == "sent" or not int(row[dup]):
            totals[reach].add(row)
    late: dict[tuple[Reach, str], _Late] = {}
    for row in steps:
        reach = _REACH_OF.get(row["span"] or "", Reach.within_province)
        late.setdefault((reach, row["kind"]), _Late()).add(row)
    transfers = []
    for reach in Reach:
        step_figures = []
        every = _Late()
        for step in TRANSFER_STEPS:
            one = late.get((reach, step.value), _Late())
            every.handled += one.handled
            every.overdue += one.overdue
            every.handled_before += one.handled_before
            every.overdue_before += one.overdue_before
            step_figures.append(
                StepFigures(
                    step_kind=step,
                    label=STEP_LABEL[step],
                    handled=one.handled,
                    overdue=one.overdue,
                    overdue_share=_rate(one.overdue, one.handled),
                    handled_before=one.handled_before,
                    overdue_before=one.overdue_before,
                    overdue_share_before=_rate(one.overdue_before, one.handled_before),
                    overdue_change=one.overdue - one.overdue_before,
                )
            )
        transfers.append(
            ReachFigures(
                reach=reach,
                label=REACH_LABEL[reach],
                total=totals[reach].flow(),
                sent=sides.get(("sent", reach), _Tally()).flow(),
                received=sides.get(("received", reach), _Tally()).flow(),
                steps=step_figures,
                overdue=every.overdue,
                overdue_share=_rate(every.overdue, every.handled),
                overdue_before=every.overdue_before,
                overdue_change=every.overdue - every.overdue_before,
            )
        )
    return Figures(
        code=code,
        name=name,
        transfers=transfers,
        others=[
            KindFigures(kind, KIND_LABEL[kind], others.get(kind, _Tally()).flow())
            for kind in ChangeKind
            if kind is not ChangeKind.transfer
        ],
    )


# The figures of a node for a period, kept for a moment in this process: the statements read
# every transfer of the region (a province's bulletin: 0.3 s + 1.7 s of PostgreSQL over
# 100,000 open transfers on a loaded 2-core machine, bench/transfers.py), and a bulletin's
# readers do not need them fresher than a minute. Concurrent readers of the same figures wait
# for one count (`_counting`); once kept, while one reader counts them again the others get
# the kept ones.
TTL = 60.0
_kept: dict[Hashable, tuple[float, BulletinRead]] = {}
_counting: dict[Hashable, asyncio.Lock] = {}


def forget() -> None:
    """Every kept bulletin is counted again on its next read."""
    _kept.clear()


async def bulletin(
    principal: Principal,
    actor: Actor,
    region_code: str | None,
    date_from: date,
    date_to: date,
) -> BulletinRead:
    """The bulletin of a region (or the caller's own region or school) for a period, counted
    within the last `TTL` seconds, or while being counted again (`counted_at`)."""
    require(principal, Action.read_transfer_bulletin)
    today = china_today()
    now, before, _ = periods(date_from, date_to, today)
    node = await find_node(principal, actor, region_code)
    key = (node.level, node.region_code, node.school_id, date_from, date_to, today)
    lock = _counting.setdefault(key, asyncio.Lock())
    found = _kept.get(key)
    if found is not None and (found[0] > monotonic() or lock.locked()):
        return found[1]  # fresh, or being counted again by another request meanwhile
    async with lock:
        found = _kept.get(key)
        if found is not None and found[0] > monotonic():
            return found[1]
        read = await _count(node, now, before, date_from, date_to, today)
        if len(_kept) > 1_000:
            _kept.clear()
            _counting.clear()
        _kept[key] = (monotonic() + TTL, read)
        return read


async def _count(
    node: Node, now: Period, before: Period, date_from: date, date_to: date, today: date
) -> BulletinRead:
    counted_at = datetime.now(UTC)
    flows = await _flows(node, now, before)
    steps = await _steps(node, now, before)
    code = node.region_code or (str(node.school_id) if node.school_id is not None else "")
    figures = _figures(code, node.name, flows, steps, "dup_total")
    children: list[Figures] = []
    child_level = _CHILD_DIGITS[node.level]
    if child_level is not None:
        keys = sorted({row["child"] for row in (*flows, *steps) if row["child"]})
        codes = {key: key.ljust(6, "0") for key in keys}
        names = {
            row["code"]: row["name"]
            for row in await Region.select(Region.code, Region.name).where(
                Region.code.is_in(list(codes.values()) or [""])
            )
        }
        for key in keys:
            children.append(
                _figures(
                    codes[key],
                    names.get(codes[key], codes[key]),
                    [row for row in flows if row["child"] == key],
                    [row for row in steps if row["child"] == key],
                    "dup_child",
                )
            )
    return BulletinRead(
        level=node.level,
        region_code=node.region_code,
        school_id=node.school_id,
        name=node.name,
        date_from=date_from,
        date_to=date_to,
        previous_from=before.start,
        previous_to=before.end,
        as_of=today,
        counted_at=counted_at,
        figures=figures,
        children_are=child_level[1] if child_level is not None else None,
        children=children,
    )

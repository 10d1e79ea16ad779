"""Campaign progress as each level reads it: a node (a province, city, county, school or
class) inside the caller's scope, its counts, its children one level down, and its daily
series — all sums of the rows `reports.progress_refresh` keeps, never of the domains' own
tables (docs/progress.md).

Who sees what: every staff role reads its own scope and any node inside it — a region's
reviewer or admin its region and below, a school's registrar or leader the school and its
classes, a teacher their own class. A node outside the scope answers 404 like a missing one
(audited, `accounts.scope.get_scoped`); a parent is refused (403, `read_progress`).

For the exports: `progress_table(principal, actor, campaign_id, node)` gives the rows of a
node's progress table (the node itself, then each child) as plain dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from backend.accounts.audit import Actor
from backend.accounts.org import region_level
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.roles import ScopeKind
from backend.accounts.scope import get_scoped
from backend.accounts.scope_rules import region_contains, region_prefix
from backend.accounts.tables import Region, School, SchoolClass
from backend.db import fetch_row, fetch_rows
from backend.errors import BadRequest, NotFound
from backend.records.tables import Campaign
from backend.reports.progress_tables import COUNTS, DAY_COUNTS


class NodeLevel(StrEnum):
    """Where a node sits in the drill-down: province → city → county → school → class."""

    province = "province"
    city = "city"
    county = "county"
    school = "school"
    school_class = "class"


CHILD_LEVEL = {
    NodeLevel.province: NodeLevel.city,
    NodeLevel.city: NodeLevel.county,
    NodeLevel.county: NodeLevel.school,
    NodeLevel.school: NodeLevel.school_class,
}


@dataclass(frozen=True, slots=True)
class NodeQuery:
    """Which node a caller asks for: at most one of the three; none means the caller's own
    node (its region, school or class; for a region above the campaign's, the campaign's)."""

    region_code: str | None = None
    school_id: int | None = None
    class_id: int | None = None


@dataclass(frozen=True, slots=True)
class Node:
    level: NodeLevel
    name: str
    region_code: str  # the region's own code; a school's or class's county
    school_id: int | None = None
    class_id: int | None = None

    @property
    def key(self) -> str:
        """A region's code, or the school's or class's id, as text."""
        if self.class_id is not None:
            return str(self.class_id)
        if self.school_id is not None:
            return str(self.school_id)
        return self.region_code


@dataclass(frozen=True, slots=True)
class Counted:
    node: Node
    counts: dict[str, int]


async def load_campaign(principal: Principal, actor: Actor, campaign_id: int) -> dict[str, Any]:
    """The campaign, refused to a parent (403) and outside the caller's scope (404, audited)."""
    require(principal, Action.read_progress)
    return await get_scoped(
        actor, principal.reach, Campaign, Campaign.id == campaign_id, "campaign", campaign_id
    )


async def find_node(
    principal: Principal, actor: Actor, campaign: dict[str, Any], query: NodeQuery
) -> Node:
    """The node asked for, inside the caller's scope and the campaign's region (404 otherwise,
    audited when the node exists)."""
    given = [v for v in (query.region_code, query.school_id, query.class_id) if v is not None]
    if len(given) > 1:
        raise BadRequest("只能指定一个地区、学校或班级", code="one_node_only")
    scope = principal.reach
    if query.class_id is not None:
        row = await get_scoped(
            actor,
            scope,
            SchoolClass,
            SchoolClass.id == query.class_id,
            "school_class",
            query.class_id,
        )
        node = Node(
            NodeLevel.school_class, row["name"], row["region_code"], row["school"], row["id"]
        )
    elif query.school_id is not None:
        row = await get_scoped(
            actor, scope, School, School.id == query.school_id, "school", query.school_id
        )
        node = Node(NodeLevel.school, row["name"], row["region_code"], row["id"])
    elif query.region_code is not None:
        node = await _region_node(actor, principal, query.region_code, campaign)
    else:
        node = await _own_node(principal, campaign)
    if not region_contains(campaign["region_code"], node.region_code):
        raise NotFound()  # a node of a region the campaign does not cover
    return node


async def _region_node(
    actor: Actor, principal: Principal, region_code: str, campaign: dict[str, Any]
) -> Node:
    row = await get_scoped(
        actor, principal.reach, Region, Region.code == region_code, "region", region_code
    )
    if principal.reach.kind not in (ScopeKind.region, ScopeKind.national):
        raise NotFound()  # a school or class sees no region's totals (in scope or not)
    return Node(NodeLevel(region_level(row["code"]).value), row["name"], row["code"])


async def _own_node(principal: Principal, campaign: dict[str, Any]) -> Node:
    scope = principal.reach
    if scope.kind is ScopeKind.school_class and scope.class_id is not None:
        row = await SchoolClass.select().where(SchoolClass.id == scope.class_id).first()
        if row is None:
            raise NotFound()
        return Node(
            NodeLevel.school_class, row["name"], row["region_code"], row["school"], row["id"]
        )
    if scope.kind is ScopeKind.school and scope.school_id is not None:
        row = await School.select().where(School.id == scope.school_id).first()
        if row is None:
            raise NotFound()
        return Node(NodeLevel.school, row["name"], row["region_code"], row["id"])
    # A region (or the nation): the deeper of its own region and the campaign's.
    code = campaign["region_code"]
    if scope.region_code is not None and region_contains(code, scope.region_code):
        code = scope.region_code
    name = await Region.select(Region.name).where(Region.code == code).first()
    return Node(NodeLevel(region_level(code).value), name["name"] if name else code, code)


def _range(code: str) -> tuple[str, str]:
    prefix = region_prefix(code)
    return prefix.ljust(6, "0"), prefix.ljust(6, "9")


_SUMS = ", ".join(f"COALESCE(SUM({c}), 0) AS {c}" for c in COUNTS)


def _counts(row: dict[str, Any] | None) -> dict[str, int]:
    return {c: int(row[c]) if row and row.get(c) is not None else 0 for c in COUNTS}


async def node_counts(campaign_id: int, node: Node) -> dict[str, int]:
    """The node's counts: a class's row, a school's, or the sum of a region's counties."""
    counts, _refreshed = await node_counts_at(campaign_id, node)
    return counts


async def node_counts_at(campaign_id: int, node: Node) -> tuple[dict[str, int], datetime | None]:
    """`node_counts`, and when the node's rows were last written (None: never counted)."""
    if node.class_id is not None:
        row = await fetch_row(
            f"SELECT refreshed_at, {', '.join(COUNTS)} FROM progress_class "
            "WHERE campaign = {} AND school_class = {}",
            campaign_id,
            node.class_id,
        )
    elif node.school_id is not None:
        row = await fetch_row(
            f"SELECT refreshed_at, {', '.join(COUNTS)} FROM progress_school "
            "WHERE campaign = {} AND school = {}",
            campaign_id,
            node.school_id,
        )
    else:
        row = await fetch_row(
            f"SELECT MAX(refreshed_at) AS refreshed_at, {_SUMS} FROM progress_county "
            "WHERE campaign = {} AND region_code >= {} AND region_code <= {}",
            campaign_id,
            *_range(node.region_code),
        )
    return _counts(row), _instant(row["refreshed_at"]) if row else None


def _instant(value: Any) -> datetime | None:
    """A timestamp as read (SQLite's aggregates hand back text), in UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def children(
    campaign_id: int, node: Node, limit: int, offset: int
) -> tuple[list[Counted], int]:
    """One page of the node's children (by code or name) with their counts, and how many
    children it has: a province's cities, a city's counties, a county's schools, a school's
    classes; a class has none."""
    level = CHILD_LEVEL.get(node.level)
    if level is None:
        return [], 0
    if level is NodeLevel.school_class:
        return await _class_children(campaign_id, node, limit, offset)
    if level is NodeLevel.school:
        return await _school_children(campaign_id, node, limit, offset)
    found = await fetch_rows(
        "SELECT code, name FROM region WHERE parent_code = {} ORDER BY code LIMIT {} OFFSET {}",
        node.region_code,
        limit,
        offset,
    )
    total = await fetch_row(
        "SELECT COUNT(*) AS n FROM region WHERE parent_code = {}", node.region_code
    )
    width = 4 if level is NodeLevel.city else 6
    sums = {
        str(r["k"]).ljust(6, "0"): r
        for r in await fetch_rows(
            f"SELECT substr(region_code, 1, {width}) AS k, {_SUMS} FROM progress_county "
            "WHERE campaign = {} AND region_code >= {} AND region_code <= {} "
            f"GROUP BY substr(region_code, 1, {width})",
            campaign_id,
            *_range(node.region_code),
        )
    }
    items = [
        Counted(Node(level, r["name"], r["code"]), _counts(sums.get(r["code"]))) for r in found
    ]
    return items, int(total["n"]) if total else 0


async def _school_children(
    campaign_id: int, node: Node, limit: int, offset: int
) -> tuple[list[Counted], int]:
    low, high = _range(node.region_code)
    rows = await fetch_rows(
        f"SELECT s.id, s.name, s.region_code, {', '.join(f'p.{c}' for c in COUNTS)} "
        "FROM school s LEFT JOIN progress_school p ON p.school = s.id AND p.campaign = {} "
        "WHERE s.region_code >= {} AND s.region_code <= {} ORDER BY s.code, s.id "
        "LIMIT {} OFFSET {}",
        campaign_id,
        low,
        high,
        limit,
        offset,
    )
    total = await fetch_row(
        "SELECT COUNT(*) AS n FROM school WHERE region_code >= {} AND region_code <= {}",
        low,
        high,
    )
    items = [
        Counted(Node(NodeLevel.school, r["name"], r["region_code"], r["id"]), _counts(r))
        for r in rows
    ]
    return items, int(total["n"]) if total else 0


async def _class_children(
    campaign_id: int, node: Node, limit: int, offset: int
) -> tuple[list[Counted], int]:
    rows = await fetch_rows(
        f"SELECT k.id, k.name, k.region_code, k.school, {', '.join(f'p.{c}' for c in COUNTS)} "
        "FROM school_class k LEFT JOIN progress_class p ON p.school_class = k.id "
        "AND p.campaign = {} WHERE k.school = {} ORDER BY k.grade, k.name, k.id "
        "LIMIT {} OFFSET {}",
        campaign_id,
        node.school_id,
        limit,
        offset,
    )
    total = await fetch_row(
        "SELECT COUNT(*) AS n FROM school_class WHERE school = {}", node.school_id
    )
    items = [
        Counted(
            Node(NodeLevel.school_class, r["name"], r["region_code"], r["school"], r["id"]),
            _counts(r),
        )
        for r in rows
    ]
    return items, int(total["n"]) if total else 0


def _node_where(node: Node, school: str, region_code: str) -> tuple[str, tuple[Any, ...]]:
    """A node's schools, as SQL over the given school id and region code columns."""
    if node.school_id is not None:
        return f"{school} = {{}}", (node.school_id,)
    return f"{region_code} >= {{}} AND {region_code} <= {{}}", _range(node.region_code)


async def as_of(node: Node, now: datetime | None = None) -> tuple[datetime, int]:
    """The instant before which every committed change is in the node's counts, and how many
    of its schools wait to be counted again: the oldest mark still waiting under the node,
    or now when none waits."""
    where, args = _node_where(node, "s.id", "s.region_code")
    # The marks first (a few, between two refreshes), then their schools: never the other
    # way round, which probes the marks once per school of a province.
    row = await fetch_row(
        "WITH m AS MATERIALIZED (SELECT school_id, MIN(marked_at) AS oldest "
        "FROM progress_mark GROUP BY school_id) "
        "SELECT MIN(m.oldest) AS oldest, COUNT(*) AS waiting "
        f"FROM m JOIN school s ON s.id = m.school_id WHERE {where}",
        *args,
    )
    now = now or datetime.now(UTC)
    oldest = _instant(row["oldest"]) if row else None
    if row is None or oldest is None:
        return now, 0
    return min(oldest, now), int(row["waiting"])


@dataclass(frozen=True, slots=True)
class Day:
    day: str
    events: dict[str, int]  # what happened that day
    totals: dict[str, int]  # the running totals at the day's end


async def series(campaign_id: int, node: Node) -> list[Day]:
    """The node's days (China dates) with something in them, oldest first: each day's events
    and the running totals. A class has no series of its own (400 `no_class_series`): read
    its school's."""
    if node.class_id is not None:
        raise BadRequest("趋势按学校及以上统计，班级请查看当前进度", code="no_class_series")
    where, args = _node_where(node, "d.school", "d.region_code")
    sums = ", ".join(f"SUM({c}) AS {c}" for c in DAY_COUNTS)
    rows = await fetch_rows(
        f"SELECT d.day, {sums} FROM progress_day d WHERE d.campaign = {{}} AND {where} "
        "GROUP BY d.day ORDER BY d.day",
        campaign_id,
        *args,
    )
    running = dict.fromkeys(DAY_COUNTS, 0)
    days = []
    for r in rows:
        events = {c: int(r[c] or 0) for c in DAY_COUNTS}
        for c in DAY_COUNTS:
            running[c] += events[c]
        days.append(Day(str(r["day"]), events, dict(running)))
    return days


async def progress_table(
    principal: Principal,
    actor: Actor,
    campaign_id: int,
    node: NodeQuery | None = None,
    max_children: int = 10_000,
) -> list[dict[str, Any]]:
    """The rows of a node's progress table, for the exports: first the node itself, then each
    child one level down (up to `max_children`), each a dict with `level`, `key` (a region's
    code, a school's or class's id), `name`, `region_code` and every count of `COUNTS`.
    Checked like the API: 403 for a parent, 404 outside the caller's scope (audited); the
    caller audits the export itself."""
    campaign = await load_campaign(principal, actor, campaign_id)
    found = await find_node(principal, actor, campaign, node or NodeQuery())
    rows = [Counted(found, await node_counts(campaign_id, found))]
    items, _total = await children(campaign_id, found, max_children, 0)
    rows += items
    return [
        {
            "level": c.node.level.value,
            "key": c.node.key,
            "name": c.node.name,
            "region_code": c.node.region_code,
            **c.counts,
        }
        for c in rows
    ]

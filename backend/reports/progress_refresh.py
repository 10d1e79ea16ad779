"""Counting campaign progress again, school by school (docs/progress.md, "Design").

Writes mark their school (`records.progress_marks`, by database triggers). `refresh` takes the
marks a batch of schools at a time and, in the same transaction, counts those schools again from
the domains' own rows — one GROUP BY per source table over the whole batch — and replaces their
rows in `progress_class`, `progress_school` and `progress_day`, and sums their counties again
into `progress_county`. Readers sum those rows (`reports.progress`), never the sources.

One refresh runs at a time (a transaction-level advisory lock on PostgreSQL, SQLite's write
lock on the embedded default): two workers never interleave a school's count. A mark committed
after its batch's DELETE stays for the next round, so nothing is lost between a count and a
write.

A campaign is counted while it is live: until `FROZEN_AFTER` past its end (closing sets the
end). After that its rows stay as they were: the campaign's final figures.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from piccolo.table import Table

from backend.accounts.scope_rules import ancestors, region_prefix
from backend.db import is_postgres, transaction
from backend.records.holds import ON_ROLL_SQL
from backend.records.problem_tables import OPEN_STATES
from backend.records.progress_marks import ProgressMark
from backend.records.review_tables import StepKind
from backend.reports.progress_tables import (
    COUNTS,
    DAY_COUNTS,
    ProgressCampaign,
    ProgressClass,
    ProgressDay,
    ProgressSchool,
)
from backend.workdays import china_today

FROZEN_AFTER = timedelta(days=3)
BATCH = 50  # schools counted in one transaction
INSERT_ROWS = 500  # rows per INSERT (30 columns: well under 32,767 parameters)
LOCK_KEY = 7_470_012  # pg_advisory_xact_lock: one refresh at a time
# The steps a change request takes, each a tally column (`pending_by_step`): the transfers'
# steps (start, release, review_out, review_in) are no change request's, and `settle` names a
# class-roll entry in the queue, no step.
PENDING = {
    kind.value: f"pending_{kind.value}"
    for kind in (
        StepKind.check,
        StepKind.enter,
        StepKind.approve,
        StepKind.review,
        StepKind.arbitrate,
    )
}

Key = tuple[int, int, int]  # campaign, school, class
T = TypeVar("T", bound=Table)


def _day(column: str) -> str:
    """A timestamp's China date as YYYY-MM-DD, in SQL (no daylight saving in China)."""
    if is_postgres():
        return f"to_char({column} AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD')"
    return f"date({column}, '+8 hours')"


def _in(values: Sequence[Any]) -> str:
    return "(" + ", ".join("{}" for _ in values) + ")"


async def _raw(sql: str, *args: Any) -> list[dict[str, Any]]:
    """A hand-written query in the current transaction."""
    return [dict(row) for row in await ProgressMark.raw(sql, *args)]


async def _live_campaigns(now: datetime) -> list[dict[str, Any]]:
    return await _raw(
        "SELECT id, region_code, starts_at, ends_at FROM campaign WHERE ends_at > {}",
        now - FROZEN_AFTER,
    )


async def _seed(now: datetime) -> None:
    """A live campaign seen for the first time: every school of its region is counted once,
    so a school where nothing happened yet shows its students and its zeros."""
    seen = {r["campaign"] for r in await ProgressCampaign.select(ProgressCampaign.campaign)}
    for campaign in await _live_campaigns(now):
        if campaign["id"] in seen:
            continue
        async with transaction():
            await mark_region(campaign["region_code"], now)
            await ProgressCampaign.insert(
                ProgressCampaign(campaign=campaign["id"], seeded_at=now)
            ).on_conflict(action="DO NOTHING")


async def mark_region(region_code: str, now: datetime | None = None) -> int:
    """Mark every school of a region: the nightly recount of a live campaign's region, and a
    campaign's first count. Returns how many were marked."""
    prefix = region_prefix(region_code)
    rows = await _raw(
        "INSERT INTO progress_mark (school_id, marked_at) SELECT id, {} FROM school "
        "WHERE region_code >= {} AND region_code <= {} RETURNING school_id",
        now or datetime.now(UTC),
        prefix.ljust(6, "0"),
        prefix.ljust(6, "9"),
    )
    return len(rows)


async def refresh(now: datetime | None = None, budget_seconds: float = 50.0) -> int:
    """Count again every marked school (a batch per transaction) until no mark is left or the
    budget is spent; returns how many schools were counted. `now` (tests, the nightly run's
    "today") fixes the clock; by default each batch reads it."""
    started = time.monotonic()
    await _seed(now or datetime.now(UTC))
    counted = 0
    while time.monotonic() - started < budget_seconds:
        async with transaction():
            if is_postgres():
                await _raw("SELECT pg_advisory_xact_lock({})", LOCK_KEY)
            taken = await _raw(
                "DELETE FROM progress_mark WHERE school_id IN (SELECT school_id FROM progress_mark "
                "GROUP BY school_id ORDER BY MIN(id) LIMIT {}) RETURNING school_id",
                BATCH,
            )
            schools = sorted({int(r["school_id"]) for r in taken})
            if not schools:
                break
            await _recount(schools, now or datetime.now(UTC))
        counted += len(schools)
    return counted


def _row(table: type[T], **values: Any) -> T:
    """A row of `table` from column names (the counts are named by `COUNTS`)."""
    return table(**values)


def _blank() -> dict[str, int]:
    return dict.fromkeys(COUNTS, 0)


async def _recount(schools: list[int], now: datetime) -> None:
    found = await _raw(f"SELECT id, region_code FROM school WHERE id IN {_in(schools)}", *schools)
    region_of = {int(r["id"]): r["region_code"] for r in found}
    schools = [s for s in schools if s in region_of]
    if not schools:
        return
    campaigns = await _live_campaigns(now)
    # Which live campaigns each school is counted in: those whose region holds it.
    pairs: dict[int, list[int]] = defaultdict(list)  # campaign → its schools in the batch
    for school in schools:
        chain = ancestors(region_of[school])
        for c in campaigns:
            if c["region_code"] in chain:
                pairs[c["id"]].append(school)
    if not pairs:
        return
    window = {c["id"]: (c["starts_at"], c["ends_at"]) for c in campaigns}
    classes: dict[Key, dict[str, int]] = defaultdict(_blank)
    days: dict[tuple[int, int, str], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(DAY_COUNTS, 0)
    )
    await _count_sources(schools, pairs, window, now, classes, days)
    await _write(schools, pairs, region_of, classes, days, now)


async def _count_sources(
    schools: list[int],
    pairs: dict[int, list[int]],
    window: dict[int, tuple[Any, Any]],
    now: datetime,
    classes: dict[Key, dict[str, int]],
    days: dict[tuple[int, int, str], dict[str, int]],
) -> None:
    ids = list(pairs)
    in_s, in_c = _in(schools), _in(ids)
    valid = {(c, s) for c, ss in pairs.items() for s in ss}

    # Students the campaign checks, the same for every campaign of the school: enrolled and
    # not in the middle of a status change (notice 001: checked once it is done). Setting or
    # clearing `open_change` updates the student row, whose trigger marks the school.
    for r in await _raw(
        f"SELECT school, school_class, COUNT(*) AS n FROM student s WHERE school IN {in_s} "
        f"AND {ON_ROLL_SQL.format(a='s')} GROUP BY school, school_class",
        *schools,
    ):
        for c in ids:
            if (c, r["school"]) in valid:
                classes[(c, r["school"], r["school_class"])]["students"] += int(r["n"])

    # Live forms and their paper return.
    for r in await _raw(
        f"SELECT campaign, school, school_class, COUNT(*) AS n, "
        f"COUNT(paper_returned_at) AS returned FROM issued_form WHERE school IN {in_s} "
        f"AND campaign IN {in_c} AND superseded_at IS NULL "
        "GROUP BY campaign, school, school_class",
        *schools,
        *ids,
    ):
        row = classes[(r["campaign"], r["school"], r["school_class"])]
        row["forms_issued"] += int(r["n"])
        row["paper_returned"] += int(r["returned"])
    for column, name in (("issued_at", "forms_issued"), ("paper_returned_at", "paper_returned")):
        for r in await _raw(
            f"SELECT campaign, school, {_day(column)} AS day, COUNT(*) AS n FROM issued_form "
            f"WHERE school IN {in_s} AND campaign IN {in_c} AND superseded_at IS NULL "
            f"AND {column} IS NOT NULL GROUP BY campaign, school, {_day(column)}",
            *schools,
            *ids,
        ):
            days[(r["campaign"], r["school"], r["day"])][name] += int(r["n"])

    # Photos: each student's latest (the family's state, `parents.states`), and the day of
    # each student's first photo.
    latest = f"""SELECT campaign, school, school_class, status, created_at, first_at FROM (
        SELECT campaign, school, school_class, status, created_at,
               MIN(created_at) OVER (PARTITION BY student, campaign) AS first_at,
               ROW_NUMBER() OVER (PARTITION BY student, campaign
                   ORDER BY COALESCE(last_sent_at, created_at) DESC, id DESC) AS rn
        FROM upload WHERE school IN {in_s} AND campaign IN {in_c}) l WHERE rn = 1"""
    for r in await _raw(
        f"SELECT campaign, school, school_class, status, COUNT(*) AS n FROM ({latest}) t "
        "GROUP BY campaign, school, school_class, status",
        *schools,
        *ids,
    ):
        row = classes[(r["campaign"], r["school"], r["school_class"])]
        row["photos_uploaded"] += int(r["n"])
        status = "checking" if r["status"] == "uploaded" else r["status"]
        row[f"photos_{status}"] += int(r["n"])
    for r in await _raw(
        f"SELECT campaign, school, {_day('first_at')} AS day, COUNT(*) AS n FROM ({latest}) t "
        f"GROUP BY campaign, school, {_day('first_at')}",
        *schools,
        *ids,
    ):
        days[(r["campaign"], r["school"], r["day"])]["photos_uploaded"] += int(r["n"])
    for r in await _raw(
        f"SELECT campaign, school, {_day('created_at')} AS day, COUNT(*) AS n FROM ({latest}) t "
        f"WHERE status = 'matches' GROUP BY campaign, school, {_day('created_at')}",
        *schools,
        *ids,
    ):
        days[(r["campaign"], r["school"], r["day"])]["photos_matches"] += int(r["n"])

    # What happens within a campaign's window: steps pending and overdue, corrections
    # entered; problem records open (whenever opened) and resolved in the window.
    today = china_today(now)
    open_states = [s.value for s in OPEN_STATES]
    for c, its_schools in pairs.items():
        starts, ends = window[c]
        in_cs = _in(its_schools)
        pending = ", ".join(
            f"SUM(CASE WHEN subject_kind = 'change_request' AND kind = '{kind}' "
            f"THEN 1 ELSE 0 END) AS {name}"
            for kind, name in PENDING.items()
        )
        for r in await _raw(
            f"SELECT school, school_class, {pending}, "
            "SUM(CASE WHEN due_on < {} THEN 1 ELSE 0 END) AS steps_overdue FROM review_step "
            f"WHERE school IN {in_cs} AND state = 'current' AND created_at >= {{}} "
            "AND created_at < {} GROUP BY school, school_class",
            today,
            *its_schools,
            starts,
            ends,
        ):
            row = classes[(c, r["school"], r["school_class"])]
            for name in (*PENDING.values(), "steps_overdue"):
                row[name] += int(r[name] or 0)
        for r in await _raw(
            f"SELECT school, school_class, {_day('applied_at')} AS day, COUNT(*) AS n "
            f"FROM change_request WHERE school IN {in_cs} AND state = 'applied' "
            "AND applied_at >= {} AND applied_at < {} "
            f"GROUP BY school, school_class, {_day('applied_at')}",
            *its_schools,
            starts,
            ends,
        ):
            classes[(c, r["school"], r["school_class"])]["corrections_entered"] += int(r["n"])
            days[(c, r["school"], r["day"])]["corrections_entered"] += int(r["n"])
        for r in await _raw(
            f"SELECT school, school_class, COUNT(*) AS n FROM problem_case "
            f"WHERE school IN {in_cs} AND state IN {_in(open_states)} "
            "GROUP BY school, school_class",
            *its_schools,
            *open_states,
        ):
            classes[(c, r["school"], r["school_class"])]["problems_open"] += int(r["n"])
        for r in await _raw(
            f"SELECT school, {_day('resolved_at')} AS day, COUNT(*) AS n FROM problem_case "
            f"WHERE school IN {in_cs} AND state = 'resolved' AND resolved_at >= {{}} "
            f"AND resolved_at < {{}} GROUP BY school, {_day('resolved_at')}",
            *its_schools,
            starts,
            ends,
        ):
            days[(c, r["school"], r["day"])]["problems_resolved"] += int(r["n"])


async def _write(
    schools: list[int],
    pairs: dict[int, list[int]],
    region_of: dict[int, str],
    classes: dict[Key, dict[str, int]],
    days: dict[tuple[int, int, str], dict[str, int]],
    now: datetime,
) -> None:
    """Replace the batch's rows: each (campaign, school) pair's classes, its total and its
    days, in one multi-row INSERT per table."""
    valid = {(c, s) for c, ss in pairs.items() for s in ss}
    in_s = _in(schools)
    for c in pairs:
        for table in ("progress_class", "progress_school", "progress_day"):
            await _raw(
                f"DELETE FROM {table} WHERE campaign = {{}} AND school IN {in_s}", c, *schools
            )
    totals: dict[tuple[int, int], dict[str, int]] = {pair: _blank() for pair in sorted(valid)}
    class_rows = []
    for (c, s, k), counts in classes.items():
        if (c, s) not in valid:
            continue
        for name, value in counts.items():
            totals[(c, s)][name] += value
        class_rows.append(
            _row(
                ProgressClass,
                campaign=c,
                school=s,
                school_class=k,
                region_code=region_of[s],
                refreshed_at=now,
                **counts,
            )
        )
    await _insert(ProgressClass, class_rows)
    await _insert(
        ProgressSchool,
        [
            _row(
                ProgressSchool,
                campaign=c,
                school=s,
                region_code=region_of[s],
                refreshed_at=now,
                **counts,
            )
            for (c, s), counts in totals.items()
        ],
    )
    day_rows = [
        _row(ProgressDay, campaign=c, school=s, region_code=region_of[s], day=str(day), **counts)
        for (c, s, day), counts in days.items()
        if (c, s) in valid and day is not None
    ]
    await _insert(ProgressDay, day_rows)
    # The counties of the batch, summed again from their schools' rows.
    sums = ", ".join(f"SUM({name})" for name in COUNTS)
    for c, its_schools in pairs.items():
        counties = sorted({region_of[s] for s in its_schools})
        in_k = _in(counties)
        await _raw(
            f"DELETE FROM progress_county WHERE campaign = {{}} AND region_code IN {in_k}",
            c,
            *counties,
        )
        await _raw(
            f"INSERT INTO progress_county (campaign, region_code, refreshed_at, "
            f"{', '.join(COUNTS)}) SELECT campaign, region_code, {{}}, {sums} "
            f"FROM progress_school WHERE campaign = {{}} AND region_code IN {in_k} "
            "GROUP BY campaign, region_code",
            now,
            c,
            *counties,
        )


async def _insert(table: type[Table], rows: list[Any]) -> None:
    """Multi-row INSERTs, each within a statement's 32,767 parameters."""
    for start in range(0, len(rows), INSERT_ROWS):
        await table.insert(*rows[start : start + INSERT_ROWS])


async def mark_live_regions(now: datetime | None = None) -> int:
    """Mark every school of every live campaign's region (the nightly recount); how many
    marks were written."""
    written = 0
    for campaign in await _live_campaigns(now or datetime.now(UTC)):
        async with transaction():
            written += await mark_region(campaign["region_code"], now)
    return written

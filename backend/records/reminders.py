"""The approvers' reminders in the daily run (`backend/notify/schedule.py`): each working
morning,

- a digest to every account with current steps in its seat: 「您有 N 条待办，其中 M 条即将到期」;
- a reminder per step with `DUE_SOON_DAYS` working days left (today counted), to whoever
  holds its seat;
- the day a step is overdue, a notice to whoever holds its seat (`step_overdue`, which cannot
  be turned off) and an escalation to the level above (`ESCALATION`).

Whoever holds a seat: the active accounts of the step's role at its class, school or region
(`reviews.occupies`, as a query). Each kind is one statement over the steps (the digest an
aggregate per seat), one over the accounts of the seats it found, then one `notify` per
distinct digest and per step; each note once per step, kind and person, ever (`Note.once`).
No titles or bodies carry a name: counts, and the step's id for the app to open.

What waits on someone beside the review steps (a class-roll mismatch on the school's
registrar: `records.roll_waiting`) is reminded the same way, in the same digest, its notes
about its own subject (`also_remind`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from piccolo.columns import Column
from piccolo.columns.combination import And, Or, Where

from backend.accounts.roles import (
    AUTHORITY_ROLE,
    ROLE_LABEL,
    Administration,
    Role,
    ScopeKind,
    administering_region,
)
from backend.accounts.tables import Account, AccountStatus
from backend.db import fetch_rows, transaction
from backend.notify import schedule
from backend.notify.categories import Category
from backend.notify.inbox import Note, notify
from backend.notify.schedule import Run, working_days_left
from backend.notify.tables import Notification
from backend.records.review_tables import StepState

# An overdue step found later than the day after its due date (the worker down for days, or
# these reminders deployed after it fell due) is still told, this far back; older ones were
# told already, or are long in the monthly bulletin.
OVERDUE_LOOKBACK = timedelta(days=30)
NOTES_PER_TRANSACTION = 200  # per-step notes are committed in batches of this many


@dataclass(frozen=True, slots=True, order=True)
class SeatOf:
    """A seat: whoever of `role` holds `kind` (class / school / region / national) `place`."""

    role: str
    kind: ScopeKind
    place: int | str | None


def step_seat(row: dict[str, Any]) -> SeatOf:
    if row["seat_class"] is not None:
        return SeatOf(row["role"], ScopeKind.school_class, row["seat_class"])
    if row["seat_school"] is not None:
        return SeatOf(row["role"], ScopeKind.school, row["seat_school"])
    if row["seat_region"] is not None:
        return SeatOf(row["role"], ScopeKind.region, row["seat_region"])
    return SeatOf(row["role"], ScopeKind.national, None)


def escalation_seat(row: dict[str, Any]) -> SeatOf | None:
    """The level above a step's seat, told the day it is overdue: a teacher's check → the
    school's registrars; a registrar's entry → the school's leaders; a school-seated step (a
    leader's approval) → the reviewers of the authority administering the school; a county's
    review → the city, a city's → the province. None above the province (or a national
    arbitration)."""
    role = Role(row["role"])
    if role is Role.teacher:
        return SeatOf(Role.registrar.value, ScopeKind.school, row["school"])
    if role is Role.registrar:
        return SeatOf(Role.school_leader.value, ScopeKind.school, row["school"])
    if role is Role.school_leader:
        administration = Administration(row["administered_by"])
        region = administering_region(row["region_code"], administration)
        return SeatOf(AUTHORITY_ROLE[administration].value, ScopeKind.region, region)
    if role is Role.county_reviewer and row["seat_region"]:
        return SeatOf(Role.city_admin.value, ScopeKind.region, row["seat_region"][:4] + "00")
    if role is Role.city_admin and row["seat_region"]:
        return SeatOf(Role.province_admin.value, ScopeKind.region, row["seat_region"][:2] + "0000")
    return None


_SEAT_COLUMN: dict[ScopeKind, Column] = {
    ScopeKind.school_class: Account.school_class,
    ScopeKind.school: Account.school,
    ScopeKind.region: Account.region_code,
}


async def seat_holders(seats: Iterable[SeatOf]) -> dict[SeatOf, list[int]]:
    """The active accounts holding each seat, in one statement for all of them."""
    wanted: dict[tuple[str, ScopeKind], set[Any]] = defaultdict(set)
    for seat in seats:
        wanted[(seat.role, seat.kind)].add(seat.place)
    if not wanted:
        return {}
    condition: Where | And | Or | None = None
    for (role, kind), places in sorted(wanted.items()):
        one = (Account.role == role) & (Account.scope_kind == kind.value)
        if kind in _SEAT_COLUMN:
            one &= _SEAT_COLUMN[kind].is_in(sorted(places))
        condition = one if condition is None else (condition | one)
    assert condition is not None
    rows = await Account.select(
        Account.id, Account.role, Account.scope_kind, *_SEAT_COLUMN.values()
    ).where((Account.status == AccountStatus.active.value) & condition)
    found: dict[SeatOf, list[int]] = defaultdict(list)
    for row in rows:
        kind = ScopeKind(row["scope_kind"])
        place = row[_SEAT_COLUMN[kind]._meta.name] if kind in _SEAT_COLUMN else None
        found[SeatOf(row["role"], kind, place)].append(row["id"])
    return found


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def due_soon_until(today: date) -> date:
    """The last due date that is *due soon* today (`schedule.due_state`): at most
    `DUE_SOON_DAYS` working days left, today counted."""
    day = today
    while working_days_left(day + timedelta(days=1), today) <= schedule.DUE_SOON_DAYS:
        day += timedelta(days=1)
    return day


_SEAT_COLUMNS = "rs.role, rs.seat_class, rs.seat_school, rs.seat_region"

# What else waits, by the notes' subject kind: a SELECT of `subject` (that kind), `id`,
# `role`, `seat_class`, `seat_school`, `seat_region`, `school`, `region_code`, `due_on`, for
# what waits now.
BESIDE: dict[str, str] = {}


def also_remind(subject: str, sql: str) -> None:
    """Remind whoever something else waits on as for a review step (once, in its module)."""
    BESIDE[subject] = sql


def _waiting() -> str:
    """The current steps and what waits beside them, as one table (`rs`)."""
    steps = (
        f"SELECT 'review_step' AS subject, rs.id, {_SEAT_COLUMNS}, rs.school, rs.region_code, "
        f"rs.due_on FROM review_step rs WHERE rs.state = '{StepState.current.value}'"
    )
    return "\n        UNION ALL ".join([steps, *BESIDE.values()])


async def digests(run: Run) -> int:
    """One digest per account with current steps in its seat (several seats add up)."""
    rows = await fetch_rows(
        f"""
        SELECT {_SEAT_COLUMNS}, COUNT(*) AS waiting,
               SUM(CASE WHEN rs.due_on >= {{}} AND rs.due_on <= {{}} THEN 1 ELSE 0 END)
                   AS due_soon,
               SUM(CASE WHEN rs.due_on < {{}} THEN 1 ELSE 0 END) AS overdue
        FROM ({_waiting()}) rs
        GROUP BY {_SEAT_COLUMNS}
        """,
        run.today,
        due_soon_until(run.today),
        run.today,
    )
    per_seat = {step_seat(row): row for row in rows}
    holders = await seat_holders(per_seat)
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for seat, row in per_seat.items():
        for account_id in holders.get(seat, ()):
            total = totals[account_id]
            total[0] += int(row["waiting"])
            total[1] += int(row["due_soon"] or 0)
            total[2] += int(row["overdue"] or 0)
    by_counts: dict[tuple[int, int, int], list[int]] = defaultdict(list)
    for account_id, (waiting, due_soon, overdue) in totals.items():
        by_counts[(waiting, due_soon, overdue)].append(account_id)
    written = 0
    async with transaction():
        for (waiting, due_soon, overdue), accounts in sorted(by_counts.items()):
            note = Note(
                Category.review_digest,
                f"您有 {waiting} 条待办，其中 {due_soon} 条即将到期",
                f"已逾期 {overdue} 条，请尽快处理" if overdue else "",
                once=f"review_digest:{run.today.isoformat()}",
            )
            written += len(await notify(run.outbox, accounts, note, now=run.now))
    return written


async def _current_steps(where: str, *args: Any) -> list[dict[str, Any]]:
    rows = await fetch_rows(
        f"""
        SELECT rs.subject, rs.id, {_SEAT_COLUMNS}, rs.school, rs.region_code, rs.due_on,
               s.administered_by
        FROM ({_waiting()}) rs JOIN school s ON s.id = rs.school
        WHERE {where}
        ORDER BY rs.subject, rs.id
        """,
        *args,
    )
    return rows


KEYS_PER_LOOKUP = 500


async def untold(
    notes: Sequence[tuple[Sequence[int], Note]],
) -> list[tuple[Sequence[int], Note]]:
    """The notes with only the recipients not told yet (by their `once` keys, looked up in a
    few indexed statements): a step overdue for days is read again each morning, and
    `notify` for each would cost two statements to write nothing."""
    keys = [f"{note.once}:{account}" for accounts, note in notes for account in accounts]
    told: set[str] = set()
    for start in range(0, len(keys), KEYS_PER_LOOKUP):
        rows = await Notification.select(Notification.dedupe_key).where(
            Notification.dedupe_key.is_in(keys[start : start + KEYS_PER_LOOKUP])
        )
        told.update(row["dedupe_key"] for row in rows)
    left: list[tuple[Sequence[int], Note]] = []
    for accounts, note in notes:
        waiting = [account for account in accounts if f"{note.once}:{account}" not in told]
        if waiting:
            left.append((waiting, note))
    return left


async def send_each(run: Run, notes: Sequence[tuple[Sequence[int], Note]]) -> int:
    """`notify` each note (each with a `once` key) to those of its recipients not told yet,
    committed `NOTES_PER_TRANSACTION` at a time; how many were written."""
    notes = await untold(notes)
    written = 0
    for start in range(0, len(notes), NOTES_PER_TRANSACTION):
        async with transaction():
            for accounts, note in notes[start : start + NOTES_PER_TRANSACTION]:
                written += len(await notify(run.outbox, accounts, note, now=run.now))
    return written


def _days_left_text(days: int) -> str:
    return "今天到期" if days <= 1 else f"还剩 {days} 个工作日到期"


async def due_soon(run: Run) -> int:
    """A reminder per step with at most `DUE_SOON_DAYS` working days left, to its seat."""
    steps = await _current_steps(
        "rs.due_on >= {} AND rs.due_on <= {}", run.today, due_soon_until(run.today)
    )
    holders = await seat_holders({step_seat(step) for step in steps})
    notes = []
    for step in steps:
        accounts = holders.get(step_seat(step), [])
        if accounts:
            days = working_days_left(_day(step["due_on"]), run.today)
            note = Note(
                Category.step_due_soon,
                "有 1 条待办即将到期",
                _days_left_text(days),
                subject=(step["subject"], step["id"]),
                once=f"due_soon:{step['subject']}:{step['id']}",
            )
            notes.append((accounts, note))
    return await send_each(run, notes)


async def overdue(run: Run) -> int:
    """The day a step is overdue: its seat is told (always pushed), and the level above."""
    steps = await _current_steps(
        "rs.due_on < {} AND rs.due_on >= {}", run.today, run.today - OVERDUE_LOOKBACK
    )
    own = {(step["subject"], step["id"]): step_seat(step) for step in steps}
    above = {(step["subject"], step["id"]): escalation_seat(step) for step in steps}
    holders = await seat_holders(
        {*own.values(), *(seat for seat in above.values() if seat is not None)}
    )
    notes = []
    for step in steps:
        subject = (step["subject"], step["id"])
        accounts = holders.get(own[subject], [])
        if accounts:
            notes.append(
                (
                    accounts,
                    Note(
                        Category.step_overdue,
                        "您有 1 条待办已逾期",
                        "请尽快处理",
                        subject=subject,
                        once=f"overdue:{step['subject']}:{step['id']}",
                    ),
                )
            )
        seat = above[subject]
        escalated = holders.get(seat, []) if seat is not None else []
        if escalated:
            label = ROLE_LABEL[Role(step["role"])]
            notes.append(
                (
                    escalated,
                    Note(
                        Category.step_escalated,
                        "下级有 1 条待办已逾期",
                        f"{label}的待办已过期限，请督促处理",
                        subject=subject,
                        once=f"escalated:{step['subject']}:{step['id']}",
                    ),
                )
            )
    return await send_each(run, notes)


async def review_step_reminders(run: Run) -> int:
    return await digests(run) + await due_soon(run) + await overdue(run)


schedule.daily("review_steps", review_step_reminders)

"""The daily reminder run: once per working day, at the digest hour (08:30 China time by
default), every domain's reminders are made (`daily` registers them: review steps, threads,
the teachers' nudge, the parents' closing reminder).

The rules every item with a due date shares (approval steps and conversations alike):

- *due soon*: it has at most `DUE_SOON_DAYS` working days left, today counted;
- *overdue*: today is after its due date — a notice to its assignee, and an escalation to the
  level above;

each one per item, kind and person, ever (`Note.once`), so a run repeated after a crash, or
made late after the worker was down, sends nothing twice and misses nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum

from backend.outbox import Outbox
from backend.workdays import CHINA, is_working_day, working_days_between

DUE_SOON_DAYS = 2
DIGEST_AT = time(8, 30)


class Due(StrEnum):
    due_soon = "due_soon"
    overdue = "overdue"


def working_days_left(due_on: date, today: date) -> int:
    """Working days from today up to and including `due_on` (today counted when it is one);
    0 once `due_on` has passed."""
    if due_on < today:
        return 0
    return working_days_between(today, due_on) + (1 if is_working_day(today) else 0)


def due_state(due_on: date, today: date) -> Due | None:
    if today > due_on:
        return Due.overdue
    if working_days_left(due_on, today) <= DUE_SOON_DAYS:
        return Due.due_soon
    return None


@dataclass(frozen=True)
class Run:
    """One daily run: `today` in China, `now` the moment it runs, the outbox to push with."""

    outbox: Outbox
    today: date
    now: datetime


Reminders = Callable[[Run], Awaitable[int]]  # returns how many notifications it wrote
_daily: dict[str, Reminders] = {}


def daily(name: str, reminders: Reminders) -> None:
    """Register a domain's reminders for the daily run (at import of its module)."""
    _daily[name] = reminders


def is_run_time(now: datetime, at: time = DIGEST_AT) -> bool:
    local = now.astimezone(CHINA)
    return is_working_day(local.date()) and local.time() >= at


async def run_daily(outbox: Outbox, now: datetime) -> dict[str, int]:
    """Every registered domain's reminders for `now`'s day (the caller checks `is_run_time`
    and that the day was not done yet); each returns how many it wrote."""
    run = Run(outbox, now.astimezone(CHINA).date(), now)
    return {name: await reminders(run) for name, reminders in sorted(_daily.items())}

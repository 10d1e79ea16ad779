"""The daily reminder run: once per working day, at the digest hour (08:30 China time by
default), every domain's reminders are made (`daily` registers them: review steps, threads,
the teachers' nudge, the parents' closing reminder).

The rules every item with a due date shares (approval steps and conversations alike):

- *due soon*: it has at most `DUE_SOON_DAYS` working days left, today counted;
- *overdue*: today is after its due date — a notice to its assignee, and an escalation to the
  level above;

each one per item, kind and person, ever (`Note.once`), so a run repeated after a crash, or
made late after the worker was down, sends nothing twice and misses nothing.

When it runs (`run_if_due`, the worker's cron every few minutes): on a working day at or
after the digest hour, once per day. A Redis key marks the day done; another, with a lease,
keeps two workers from running it at the same moment. A run that crashed half-way leaves the
day not done: the next tick, once the lease has lapsed, runs it again and the `once` keys
keep what was already written from being written twice. A worker that was down at 08:30
runs it at its first tick that day (a day missed altogether is not made up: its digest would
be stale, and what fell due is found again by the next run).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from backend.outbox import Outbox
from backend.workdays import CHINA, is_working_day, working_days_between

log = logging.getLogger("registry.notify.schedule")

DUE_SOON_DAYS = 2
DIGEST_AT = time(8, 30)
RUN_LEASE = timedelta(minutes=30)  # a run not done by then is taken over (the crashed one's)
KEEP_DONE = timedelta(days=8)


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


def digest_time(value: str) -> time:
    """The `DIGEST_AT` setting ("08:30") as a time of day."""
    hour, minute = value.split(":")
    return time(int(hour), int(minute))


def done_key(day: date) -> str:
    return f"daily_run:done:{day.isoformat()}"


def running_key(day: date) -> str:
    return f"daily_run:running:{day.isoformat()}"


async def run_if_due(outbox: Outbox, now: datetime, at: time = DIGEST_AT) -> dict[str, int] | None:
    """The worker's tick: run the day's reminders if `now` is run time and the day is not
    done or being done by another worker; what each domain wrote, or None when nothing ran."""
    if not is_run_time(now, at):
        return None
    day = now.astimezone(CHINA).date()
    redis = outbox.queue
    if await redis.exists(done_key(day)):
        return None
    lease = int(RUN_LEASE.total_seconds())
    if not await redis.set(running_key(day), now.isoformat(), nx=True, ex=lease):
        return None  # another worker is on it (or crashed on it less than a lease ago)
    if await redis.exists(done_key(day)):  # finished between the two looks
        await redis.delete(running_key(day))
        return None
    try:
        counts = await run_daily(outbox, now)
        await redis.set(done_key(day), json.dumps(counts), ex=int(KEEP_DONE.total_seconds()))
    finally:
        await redis.delete(running_key(day))
    log.info("daily reminders for %s: %s", day, counts)
    return counts

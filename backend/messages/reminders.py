"""Due-date reminders of conversations, in the daily run (`notify.schedule`), by the rules
approval steps keep: due soon (2 working days left) to whoever holds the thread; overdue to
them and, as an escalation, to the level above. Each once per thread, kind, due date and
person (`Note.once`): a thread the parent reopens has a new due date, and its own reminders.

Who holds a thread: while it is open, the school (the class teacher and the registrars; above
them the school's leaders); once passed up and until the authority answers, that authority's
support staff (above them the city's or the province's administrators)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from backend.db import transaction
from backend.messages.service import (
    above_authority,
    authority_staff,
    school_desk,
    school_leaders,
)
from backend.messages.tables import Thread, ThreadState
from backend.notify import schedule
from backend.notify.categories import Category
from backend.notify.inbox import Note, notify
from backend.notify.schedule import Due, Run, due_state

People = Callable[[dict[str, Any]], Awaitable[list[int]]]

TITLES = {
    Category.step_due_soon: "有一条咨询即将到期，请尽快答复",
    Category.step_overdue: "有一条咨询已逾期未答复",
    Category.step_escalated: "有一条下级负责的咨询逾期未答复",
}


async def _remind(
    run: Run, thread: dict[str, Any], due_on: date, holders: People, above: People, side: str
) -> int:
    due = due_state(due_on, run.today)
    if due is None:
        return 0
    sends: list[tuple[Category, People]] = (
        [(Category.step_due_soon, holders)]
        if due is Due.due_soon
        else [(Category.step_overdue, holders), (Category.step_escalated, above)]
    )
    written = 0
    for category, people in sends:
        note = Note(
            category,
            TITLES[category],
            subject=("thread", thread["id"]),
            once=f"thread:{side}:{category.value}:{thread['id']}:{due_on.isoformat()}",
        )
        written += len(await notify(run.outbox, await people(thread), note, now=run.now))
    return written


async def remind_threads(run: Run) -> int:
    """Every thread waiting on someone with a due date near or past; how many written."""
    waiting = await Thread.select().where(
        ((Thread.state == ThreadState.open.value) & Thread.due_on.is_not_null())
        | (
            Thread.passed_up_at.is_not_null()
            & Thread.authority_answered_at.is_null()
            & (Thread.state != ThreadState.closed.value)
        )
    )
    written = 0
    async with transaction():
        for thread in waiting:
            if thread["state"] == ThreadState.open.value and thread["due_on"] is not None:
                written += await _remind(
                    run, thread, thread["due_on"], school_desk, school_leaders, "school"
                )
            if (
                thread["authority_due_on"] is not None
                and thread["authority_answered_at"] is None
                and thread["state"] != ThreadState.closed.value
            ):
                written += await _remind(
                    run,
                    thread,
                    thread["authority_due_on"],
                    authority_staff,
                    above_authority,
                    "authority",
                )
    return written


schedule.daily("threads", remind_threads)

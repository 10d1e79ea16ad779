"""`notify.inbox.notify`: what a change tells users lands in their inbox with the commit,
once per `once` key, its push timed past quiet hours (unless urgent or turned off), and it
reaches the live stream's Redis channel after the commit, never for a rollback."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.config import Settings
from backend.db import transaction
from backend.notify.categories import Category
from backend.notify.inbox import Note, notify, stream_channel
from backend.notify.tables import Notification, Preference
from backend.outbox import Outbox, OutboxEntry
from tests.factories import World, build_world, run_jobs

# 2026-12-01 (a Tuesday): 10:00 and 22:00 China time
DAY = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
NIGHT = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
MORNING_AFTER = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)  # 07:30 on the 2nd


@pytest.fixture
async def world(settings: Settings) -> World:
    return await build_world(settings)


def _aware(moment: datetime | None) -> datetime | None:
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


async def test_a_note_is_written_once_per_key_and_pushed_after_quiet_hours(
    app: Litestar, world: World
) -> None:
    outbox = Outbox(app.state.arq)
    registrar = world.accounts[Role.registrar]
    note = Note(
        Category.step_due_soon,
        "有 1 条待办即将到期",
        subject=("review_step", 7),
        once="due_soon:review_step:7",
    )
    async with transaction():
        first = await notify(outbox, [registrar], note, now=NIGHT)
    async with transaction():
        again = await notify(outbox, [registrar], note, now=NIGHT)
    assert len(first) == 1
    assert again == []  # once per item, kind and person, ever
    row = await Notification.select().where(Notification.id == first[0]).first()
    assert row is not None
    assert row["title"] == "有 1 条待办即将到期"
    assert _aware(row["push_at"]) == MORNING_AFTER  # 22:00 waits for 07:30
    entry = await OutboxEntry.select().where(OutboxEntry.job_id == f"push:{first[0]}").first()
    assert entry is not None
    assert _aware(entry["run_at"]) == MORNING_AFTER


async def test_urgent_goes_at_once_and_a_muted_category_is_not_pushed(
    app: Litestar, world: World
) -> None:
    outbox = Outbox(app.state.arq)
    parent = world.accounts[Role.parent]
    await Preference.insert(Preference(account=parent, muted=["request_decided"], updated_at=DAY))
    async with transaction():
        [verdict] = await notify(outbox, [parent], Note(Category.verdict, "核对完成"), now=NIGHT)
        [decided] = await notify(
            outbox, [parent], Note(Category.request_decided, "申请已处理"), now=DAY
        )
    rows = {
        row["id"]: row
        for row in await Notification.select().where(Notification.id.is_in([verdict, decided]))
    }
    assert _aware(rows[verdict]["push_at"]) == NIGHT  # urgent: not held for quiet hours
    assert rows[decided]["push_at"] is None  # turned off: in the inbox, never pushed
    jobs = [row["job_id"] for row in await OutboxEntry.select(OutboxEntry.job_id)]
    assert jobs == [f"push:{verdict}"]


async def test_the_stream_hears_it_after_the_commit_and_never_for_a_rollback(
    app: Litestar, world: World
) -> None:
    outbox = Outbox(app.state.arq)
    teacher = world.accounts[Role.teacher]
    pubsub = app.state.redis.pubsub()
    await pubsub.subscribe(stream_channel(teacher))
    await pubsub.get_message(timeout=1)  # the subscription's confirmation

    async def fails() -> None:
        async with transaction():
            await notify(outbox, [teacher], Note(Category.thread_new, "新的家长咨询"))
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await fails()
    assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.3) is None

    async with transaction():
        [written] = await notify(
            outbox, [teacher], Note(Category.thread_new, "新的家长咨询", subject=("thread", 3))
        )
    message = None
    for _ in range(100):  # up to 15 s on a loaded machine
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message:
            break
        await asyncio.sleep(0.05)
    assert message is not None
    event = json.loads(message["data"])
    assert event["id"] == written
    assert (event["subject_kind"], event["subject_id"]) == ("thread", 3)
    await pubsub.aclose()


async def test_a_burst_worker_runs_what_is_due_and_leaves_a_push_deferred_past_quiet_hours(
    app: Litestar, settings: Settings
) -> None:
    """The suite's burst worker (`run_jobs`) must stop in a Chinese evening too: a job
    deferred to 07:30 stays queued, and the worker does not poll until then."""
    await app.state.arq.enqueue_job("sweep_outbox", 0, _job_id="later", _defer_by=3600)
    await app.state.arq.enqueue_job("sweep_outbox", 0, _job_id="now")
    await asyncio.wait_for(run_jobs(app, settings), timeout=60)
    queued = [job.job_id for job in await app.state.arq.queued_jobs()]
    assert "later" in queued
    assert "now" not in queued

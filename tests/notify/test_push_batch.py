"""Pushes in chunks: `inbox.notify` with many recipients asks for one push job per chunk of
notifications due at the same time; the job pushes them all, records every attempt, removes
dead devices, and runs again only for what is left, never sending twice to a device."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.config import Settings
from backend.db import json_value, transaction
from backend.notify import inbox, push
from backend.notify.categories import Category
from backend.notify.channels.base import Channel, Target
from backend.notify.inbox import Note, notify
from backend.notify.tables import Device, Notification, Preference, PushAttempt
from backend.outbox import Outbox, OutboxEntry
from backend.worker import sweep_pushes
from tests.factories import World, build_world, job_ctx
from tests.notify.gateways import Failure, Gateways
from tests.notify.test_push_delivery import (  # the same fixtures and helpers
    NOW,
    _device,
    _session,
    channels,
    gateways,
)

__all__ = ["channels", "gateways"]  # fixtures, used by name

NIGHT = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 22:00 China time: quiet hours
MORNING_AFTER = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)  # 07:30 on the 2nd


@pytest.fixture
async def world(settings: Settings) -> World:
    return await build_world(settings)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _notify(app: Litestar, accounts: list[int], now: datetime = NOW) -> list[int]:
    async with transaction():
        return await notify(
            Outbox(app.state.arq),
            accounts,
            Note(Category.step_due_soon, "有 1 条待办即将到期", subject=("review_step", 5)),
            now=now,
        )


async def _push_jobs() -> list[dict[str, Any]]:
    return list(
        await OutboxEntry.select(OutboxEntry.job_id, OutboxEntry.args, OutboxEntry.run_at)
        .where(OutboxEntry.function == inbox.PUSH_JOB)
        .order_by(OutboxEntry.id)
    )


async def test_a_chunk_with_a_dead_token_a_429_and_a_success_retries_only_the_429(
    app: Litestar, world: World, gateways: Gateways, channels: dict[str, Channel]
) -> None:
    registrar, teacher, parent = (
        world.accounts[r] for r in (Role.registrar, Role.teacher, Role.parent)
    )
    dead_apns = await _device(registrar, "apns", Target("de" * 32), await _session(registrar))
    await _device(registrar, "fcm", Target("fcm-of-the-registrar"), await _session(registrar))
    await _device(teacher, "fcm", Target("fcm-of-the-teacher"), await _session(teacher))
    parent_session = await _session(parent)
    await _device(parent, "apns", Target("ab" * 32), parent_session)
    await _device(parent, "fcm", Target("fcm-of-the-parent"), parent_session)
    gateways.fail("apns", "de" * 32, Failure.dead())
    gateways.fail("fcm", "fcm-of-the-teacher", Failure.rate_limited(7))

    ids = await _notify(app, [registrar, teacher, parent])
    [job] = await _push_jobs()  # one job for the three
    assert json_value(job["args"]) == [sorted(ids)]
    assert job["job_id"] == f"push:{min(ids)}-{max(ids)}"
    of = dict(
        (row["account"], row["id"])
        for row in await Notification.select(Notification.id, Notification.account)
    )

    first = await push.deliver(channels, ids, job_try=1)

    assert (first.sent, first.dead, first.retry, first.retry_in) == (3, 1, 1, 7)
    assert await Device.count().where(Device.id == dead_apns) == 0
    pushed = {
        row["account"]: row["pushed_at"] is not None
        for row in await Notification.select(Notification.account, Notification.pushed_at)
    }
    assert pushed == {registrar: True, teacher: False, parent: True}

    second = await push.deliver(channels, ids, job_try=2)  # the job run again after 7 s
    again = await push.deliver(channels, ids, job_try=3)  # a duplicate run

    assert (second.sent, second.retry_in) == (1, None)
    assert again == push.Delivery()
    received = Counter(
        (item.channel, item.token) for items in gateways.received.values() for item in items
    )
    assert received == {
        ("apns", "ab" * 32): 1,
        ("fcm", "fcm-of-the-registrar"): 1,
        ("fcm", "fcm-of-the-teacher"): 1,
        ("fcm", "fcm-of-the-parent"): 1,
    }  # the dead one never, the others once
    attempts = [
        (row["notification"], row["channel"], row["outcome"], row["http_status"])
        for row in await PushAttempt.select().order_by(PushAttempt.id)
    ]
    assert sorted(attempts) == sorted(
        [
            (of[registrar], "apns", "dead", 410),
            (of[registrar], "fcm", "sent", 200),
            (of[teacher], "fcm", "retry", 429),
            (of[teacher], "fcm", "sent", 200),
            (of[parent], "apns", "sent", 200),
            (of[parent], "fcm", "sent", 200),
        ]
    )
    # Each push carries its own recipient's notification id and badge.
    for item in gateways.received["fcm"]:
        account = next(
            a for a, n in of.items() if str(n) == item.payload["data"]["notification_id"]
        )
        assert item.token.endswith(
            {registrar: "registrar", teacher: "teacher", parent: "parent"}[account]
        )


async def test_quiet_hours_groups_are_deferred_separately_in_chunks(
    app: Litestar, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox, "PUSH_CHUNK", 2)
    accounts = sorted(world.accounts.values())[:5]
    awake = accounts[:2]  # quiet hours turned off: pushed at once
    for account in awake:
        await Preference.insert(Preference(account=account, quiet_enabled=False, updated_at=NIGHT))

    ids = await _notify(app, accounts, now=NIGHT)

    jobs = await _push_jobs()
    by_time: dict[datetime, list[list[int]]] = {}
    for job in jobs:
        [chunk] = json_value(job["args"])
        assert job["job_id"] == inbox.push_job_id(chunk)
        by_time.setdefault(_aware(job["run_at"]), []).append(chunk)
    assert set(by_time) == {NIGHT, MORNING_AFTER}
    assert [len(chunk) for chunk in by_time[NIGHT]] == [2]
    assert sorted(len(chunk) for chunk in by_time[MORNING_AFTER]) == [1, 2]
    assert sorted(n for chunks in by_time.values() for chunk in chunks for n in chunk) == sorted(
        ids
    )  # each notification in one job
    account_of = {
        row["id"]: row["account"]
        for row in await Notification.select(Notification.id, Notification.account)
    }
    assert {account_of[n] for n in by_time[NIGHT][0]} == set(awake)


async def test_the_sweeper_leaves_a_queued_chunk_alone_and_finds_a_lost_one(
    app: Litestar, world: World, channels: dict[str, Channel], tmp_path: Path
) -> None:
    accounts = [world.accounts[r] for r in (Role.registrar, Role.teacher, Role.parent)]
    ids = await _notify(app, accounts)  # push_at NOW, in the past: the job is queued
    ctx = job_ctx(app, channels=channels)

    assert await sweep_pushes(ctx, 0) == 0  # inside the queued job's range

    await app.state.redis.flushdb()  # a Redis that restarted empty
    assert await sweep_pushes(ctx, 0) == 3
    queued = [
        key.decode() if isinstance(key, bytes) else key
        for key in await app.state.arq.zrange(app.state.arq.default_queue_name, 0, -1)
    ]
    [job_id] = queued
    assert job_id.startswith(f"push:{min(ids)}-{max(ids)}:sweep")
    assert await sweep_pushes(ctx, 0) == 0  # queued again now

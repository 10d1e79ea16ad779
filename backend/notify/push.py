"""Pushing notifications to their recipients' devices: the arq job `push_notification`, one
per chunk of up to `inbox.PUSH_CHUNK` notifications due at the same time (`inbox.notify` asks
the outbox for it, job id `push:{first}-{last}`, after quiet hours; `push:{id}` for one).

One run reads the chunk in two statements, sends to every device of each recipient whose
session is still signed in, concurrently (at most `PUSH_STREAMS` at once in the process, multiplexed
on the shared HTTP/2 client), and records every try as a `PushAttempt` (channel, outcome, HTTP
status, latency) in one insert. What happens next depends on the gateway's answer, device by
device:

- sent: never sent to that device again for this notification (a retried job skips it);
- dead (FCM UNREGISTERED/404, APNs 410/BadDeviceToken, Web Push 404/410, JPush 1011): the
  device is removed;
- failed (refused for good, or the channel is not configured): not tried again;
- retry (429, 5xx, a timeout): the job runs again, after the longest Retry-After or backoff
  its devices asked for, for the notifications with a device left (the others have
  `pushed_at` set and are skipped), at most `PUSH_TRIES` times in all; on the last try a
  device still failing gets a `failed` attempt "out of tries".

`pushed_at` is set on a notification once nothing is left to try. `sweep_pushes` finds
notifications whose push time passed with no `pushed_at` and no push job in arq covering them
(a Redis that restarted empty lost the deferred job) and enqueues them again, in chunks.

Payloads carry the title, the short body, ids and the unread count: never personal data
(`inbox.notify`'s callers write titles without any)."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from arq.connections import ArqRedis

from backend.db import json_value
from backend.notify.channels.base import Channel, Outcome, PushMessage, SendResult, Target
from backend.notify.inbox import PUSH_JOB, push_chunks, push_job_id
from backend.notify.tables import AttemptOutcome, Device, Notification, PushAttempt

log = logging.getLogger("registry.push")

PUSH_TRIES = 5  # runs of the job in all; arq's max_tries for it
BACKOFF_FIRST = 15.0  # seconds before the second try after a 5xx or timeout; doubled each try
BACKOFF_CAP = 600.0
SWEEP_GRACE = timedelta(minutes=2)  # a push this late with no job in arq is enqueued again
SWEEP_WINDOW = timedelta(days=1)  # older ones are not pushed any more (the inbox has them)
SWEEP_BATCH = 2000
PUSH_STREAMS = 100  # sends in flight at once per process, on the shared HTTP/2 client


@dataclass(frozen=True)
class Delivery:
    """What one run did: counts by outcome, and when to run again (None: done)."""

    sent: int = 0
    dead: int = 0
    failed: int = 0
    retry: int = 0
    retry_in: float | None = None


def backoff(job_try: int) -> float:
    return float(min(BACKOFF_FIRST * 2.0 ** (job_try - 1), BACKOFF_CAP))


# Sends in flight in this process, across the jobs arq runs at once: more only queue inside
# the HTTP/2 connection and time out there (one semaphore per event loop: tests run several).
_in_flight: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _streams() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    streams = _in_flight.get(loop)
    if streams is None:
        streams = _in_flight[loop] = asyncio.Semaphore(PUSH_STREAMS)
    return streams


def _in(values: Sequence[object]) -> str:
    return ", ".join(["{}"] * len(values))


# The chunk's notifications still to push, each with its recipient's unread count (the badge).
NOTIFICATIONS_AND_UNREAD = """
SELECT n.id, n.account, n.category, n.title, n.body, n.subject_kind, n.subject_id,
    (SELECT count(*) FROM notification u WHERE u.account = n.account AND u.read_at IS NULL)
    AS unread
FROM notification n WHERE n.id IN ({ids}) AND n.pushed_at IS NULL
"""
# Each of them with each device of its recipient on a live session (or none: a webhook), less
# those already sent to, or refused for good, for that notification (an earlier try).
DEVICES_TO_TRY = """
SELECT n.id AS notification, d.id, d.channel, d.token, d.keys FROM notification n
JOIN device d ON d.account = n.account
LEFT JOIN auth_session s ON s.id = d.session
WHERE n.id IN ({ids}) AND n.pushed_at IS NULL AND (d.session IS NULL OR s.revoked_at IS NULL)
AND NOT EXISTS (
    SELECT 1 FROM push_attempt a
    WHERE a.notification = n.id AND a.device = d.id AND a.outcome IN ('sent', 'failed')
)
ORDER BY n.id, d.id
"""


def message_of(notification: Mapping[str, Any], unread: int) -> PushMessage:
    data = {"notification_id": str(notification["id"]), "category": notification["category"]}
    if notification["subject_kind"]:
        data["subject_kind"] = notification["subject_kind"]
        data["subject_id"] = str(notification["subject_id"])
    return PushMessage(notification["title"], notification["body"], data, badge=unread)


async def _send(
    channel: Channel | None,
    device: Mapping[str, Any],
    message: PushMessage,
    streams: asyncio.Semaphore,
) -> tuple[SendResult, int]:
    async with streams:
        started = time.perf_counter()
        if channel is None:
            result = SendResult(Outcome.failed, detail=f"unknown channel {device['channel']}")
        else:
            keys = json_value(device["keys"]) or {}
            try:
                result = await channel.send(Target(device["token"], keys), message)
            except Exception as exc:  # a channel's bug must not lose the other devices' attempts
                log.exception("push channel %s failed", device["channel"])
                result = SendResult(Outcome.failed, detail=f"error: {type(exc).__name__}")
        return result, round((time.perf_counter() - started) * 1000)


async def deliver(
    channels: Mapping[str, Channel],
    notification_ids: int | Sequence[int],
    *,
    job_try: int = 1,
    now: datetime | None = None,
) -> Delivery:
    """Push a chunk of notifications (or one) to their recipients' devices (one try).

    Five statements whatever the chunk's size: the notifications with their badges; their
    devices less those done with; then all attempts in one insert, the dead devices removed,
    `pushed_at` set on the notifications with nothing left to try. The sends in between go
    concurrently, at most `PUSH_STREAMS` at once in the process, over the shared HTTP/2
    client."""
    ids = [notification_ids] if isinstance(notification_ids, int) else list(notification_ids)
    if not ids:
        return Delivery()
    found = await Notification.raw(NOTIFICATIONS_AND_UNREAD.format(ids=_in(ids)), *ids)
    if not found:
        return Delivery()
    pending = [row["id"] for row in found]
    messages = {row["id"]: message_of(row, int(row["unread"])) for row in found}
    devices = await Device.raw(DEVICES_TO_TRY.format(ids=_in(pending)), *pending)
    streams = _streams()
    results = await asyncio.gather(
        *(
            _send(channels.get(d["channel"]), d, messages[d["notification"]], streams)
            for d in devices
        )
    )
    last_try = job_try >= PUSH_TRIES
    at = now or datetime.now(UTC)
    attempts, dead, waits = [], [], []
    left: set[int] = set()  # notifications with a device to try again
    counts = dict.fromkeys(AttemptOutcome, 0)
    for device, (result, latency) in zip(devices, results, strict=True):
        outcome = AttemptOutcome(result.outcome.value)
        detail = result.detail
        if outcome is AttemptOutcome.retry:
            if last_try:
                outcome, detail = AttemptOutcome.failed, f"out of tries: {detail}"
            else:
                waits.append(result.retry_after or backoff(job_try))
                left.add(device["notification"])
        if outcome is AttemptOutcome.dead:
            dead.append(device["id"])
        counts[outcome] += 1
        attempts.append(
            PushAttempt(
                notification=device["notification"],
                device=device["id"],
                channel=device["channel"],
                outcome=outcome.value,
                http_status=result.http_status,
                latency_ms=latency,
                detail=detail[:200],
                at=at,
            )
        )
    # No transaction: each statement stands on its own (a run that stops between them is
    # retried, and skips what the attempts already say was sent or refused).
    if attempts:
        await PushAttempt.insert(*attempts)
    if dead:
        await Device.delete().where(Device.id.is_in(dead))
    done = [notification_id for notification_id in pending if notification_id not in left]
    if done:
        await Notification.update({Notification.pushed_at: at}).where(Notification.id.is_in(done))
    if dead:
        log.info("push %s: removed %s dead devices", ids[0], len(dead))
    return Delivery(
        sent=counts[AttemptOutcome.sent],
        dead=counts[AttemptOutcome.dead],
        failed=counts[AttemptOutcome.failed],
        retry=counts[AttemptOutcome.retry],
        retry_in=max(waits) if waits else None,
    )


def _queued_ranges(job_ids: Sequence[bytes | str]) -> list[tuple[int, int]]:
    """The notification ids each queued push job covers (`push:17`, `push:17-216`, with any
    `:suffix`), from arq's queue, which holds a job from enqueue to its end (retries too)."""
    ranges = []
    for raw in job_ids:
        job_id = raw.decode() if isinstance(raw, bytes) else raw
        if not job_id.startswith("push:"):
            continue
        first, _, last = job_id[5:].split(":", 1)[0].partition("-")
        try:
            ranges.append((int(first), int(last or first)))
        except ValueError:
            continue
    return ranges


async def sweep_pushes(queue: ArqRedis, *, grace: timedelta = SWEEP_GRACE) -> int:
    """Enqueue again the pushes whose time passed with no job in arq; returns how many. A push
    inside the range of a push job arq still holds (queued, deferred, running, waiting for a
    retry) is left be: that job will see to it."""
    now = datetime.now(UTC)
    due = await (
        Notification.select(Notification.id, Notification.push_at)
        .where(
            Notification.pushed_at.is_null()
            & (Notification.push_at <= now - grace)
            & (Notification.push_at > now - SWEEP_WINDOW)
        )
        .order_by(Notification.push_at)
        .limit(SWEEP_BATCH)
    )
    if not due:
        return 0
    held = _queued_ranges(await queue.zrange(queue.default_queue_name, 0, -1))
    lost = [row["id"] for row in due if not any(first <= row["id"] <= last for first, last in held)]
    enqueued = 0
    stamp = int(now.timestamp())
    for _, ids in push_chunks([(notification_id, now) for notification_id in lost]):
        # A new name: the lost chunk's job may still have its result in arq, refusing its id.
        job_id = f"{push_job_id(ids)}:sweep{stamp}"
        if await queue.enqueue_job(PUSH_JOB, ids, _job_id=job_id) is not None:
            enqueued += len(ids)
    if enqueued:
        log.warning("push sweep: enqueued %s pushes again", enqueued)
    return enqueued

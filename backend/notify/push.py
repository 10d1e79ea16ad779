"""Pushing one notification to its recipient's devices: the arq job `push_notification`
(`inbox.notify` asks the outbox for it, job id `push:{id}`, after quiet hours).

One run sends to every device of the account whose session is still signed in, at once; each
try is a `PushAttempt` (channel, outcome, HTTP status, latency). What happens next depends on
the gateway's answer, device by device:

- sent: never sent to that device again for this notification (a retried job skips it);
- dead (FCM UNREGISTERED/404, APNs 410/BadDeviceToken, Web Push 404/410, JPush 1011): the
  device is removed;
- failed (refused for good, or the channel is not configured): not tried again;
- retry (429, 5xx, a timeout): the job runs again for the devices left, after the gateway's
  Retry-After or a growing backoff, at most `PUSH_TRIES` times in all; on the last try a
  device still failing gets a `failed` attempt "out of tries".

`pushed_at` is set once nothing is left to try. `sweep_pushes` finds notifications whose push
time passed with no `pushed_at` and no job in arq (a Redis that restarted empty lost the
deferred job) and enqueues them again.

Payloads carry the title, the short body, ids and the unread count: never personal data
(`inbox.notify`'s callers write titles without any)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from arq.connections import ArqRedis
from arq.jobs import Job, JobStatus

from backend.db import json_value
from backend.notify.channels.base import Channel, Outcome, PushMessage, SendResult, Target
from backend.notify.inbox import PUSH_JOB
from backend.notify.tables import AttemptOutcome, Device, Notification, PushAttempt

log = logging.getLogger("registry.push")

PUSH_TRIES = 5  # runs of the job in all; arq's max_tries for it
BACKOFF_FIRST = 15.0  # seconds before the second try after a 5xx or timeout; doubled each try
BACKOFF_CAP = 600.0
SWEEP_GRACE = timedelta(minutes=2)  # a push this late with no job in arq is enqueued again
SWEEP_WINDOW = timedelta(days=1)  # older ones are not pushed any more (the inbox has them)
SWEEP_BATCH = 500


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


def mask_token(token: str) -> str:
    """Enough of a token to tell devices apart in the admin view, never enough to use it."""
    if token.startswith(("https://", "http://")):
        scheme, _, rest = token.partition("://")
        host = rest.split("/", 1)[0]
        return f"{scheme}://{host}/…{token[-4:]}"
    return f"{token[:4]}…{token[-4:]}" if len(token) > 12 else "…"


# The account's devices on a live session (or none: a webhook), less those already sent to,
# or refused for good, for this notification. One statement: the job is run thousands of times
# a minute in a burst, and each round trip costs the worker more than the gateway does.
DEVICES_TO_TRY = """
SELECT d.id, d.channel, d.token, d.keys FROM device d
LEFT JOIN auth_session s ON s.id = d.session
WHERE d.account = {} AND (d.session IS NULL OR s.revoked_at IS NULL)
AND NOT EXISTS (
    SELECT 1 FROM push_attempt a
    WHERE a.notification = {} AND a.device = d.id AND a.outcome IN ('sent', 'failed')
)
ORDER BY d.id
"""
# The notification and its recipient's unread count (the badge).
NOTIFICATION_AND_UNREAD = """
SELECT n.id, n.account, n.category, n.title, n.body, n.subject_kind, n.subject_id, n.pushed_at,
    (SELECT count(*) FROM notification u WHERE u.account = n.account AND u.read_at IS NULL)
    AS unread
FROM notification n WHERE n.id = {}
"""


def message_of(notification: Mapping[str, Any], unread: int) -> PushMessage:
    data = {"notification_id": str(notification["id"]), "category": notification["category"]}
    if notification["subject_kind"]:
        data["subject_kind"] = notification["subject_kind"]
        data["subject_id"] = str(notification["subject_id"])
    return PushMessage(notification["title"], notification["body"], data, badge=unread)


async def _send(
    channel: Channel | None, device: Mapping[str, Any], message: PushMessage
) -> tuple[SendResult, int]:
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
    notification_id: int,
    *,
    job_try: int = 1,
    now: datetime | None = None,
) -> Delivery:
    """Push notification `notification_id` to its recipient's devices (one try)."""
    found = await Notification.raw(NOTIFICATION_AND_UNREAD, notification_id)
    if not found or found[0]["pushed_at"] is not None:
        return Delivery()
    notification = found[0]
    devices = await Device.raw(DEVICES_TO_TRY, notification["account"], notification_id)
    message = message_of(notification, int(notification["unread"]))
    results = await asyncio.gather(
        *(_send(channels.get(device["channel"]), device, message) for device in devices)
    )
    last_try = job_try >= PUSH_TRIES
    at = now or datetime.now(UTC)
    attempts, dead, waits = [], [], []
    counts = dict.fromkeys(AttemptOutcome, 0)
    for device, (result, latency) in zip(devices, results, strict=True):
        outcome = AttemptOutcome(result.outcome.value)
        detail = result.detail
        if outcome is AttemptOutcome.retry:
            if last_try:
                outcome, detail = AttemptOutcome.failed, f"out of tries: {detail}"
            else:
                waits.append(result.retry_after or backoff(job_try))
        if outcome is AttemptOutcome.dead:
            dead.append(device["id"])
        counts[outcome] += 1
        attempts.append(
            PushAttempt(
                notification=notification_id,
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
    if not waits:
        await Notification.update({Notification.pushed_at: at}).where(
            Notification.id == notification_id
        )
    if dead:
        log.info("push %s: removed %s dead devices", notification_id, len(dead))
    return Delivery(
        sent=counts[AttemptOutcome.sent],
        dead=counts[AttemptOutcome.dead],
        failed=counts[AttemptOutcome.failed],
        retry=counts[AttemptOutcome.retry],
        retry_in=max(waits) if waits else None,
    )


async def sweep_pushes(queue: ArqRedis, *, grace: timedelta = SWEEP_GRACE) -> int:
    """Enqueue again the pushes whose time passed with no job in arq; returns how many. arq
    refuses a job id it still holds, so a push with its job queued or running is left be."""
    now = datetime.now(UTC)
    due = await (
        Notification.select(Notification.id)
        .where(
            Notification.pushed_at.is_null()
            & (Notification.push_at <= now - grace)
            & (Notification.push_at > now - SWEEP_WINDOW)
        )
        .order_by(Notification.push_at)
        .limit(SWEEP_BATCH)
    )
    enqueued = 0
    for row in due:
        job_id = f"push:{row['id']}"
        if await Job(job_id, queue).status() is not JobStatus.not_found:
            continue
        if await queue.enqueue_job(PUSH_JOB, row["id"], _job_id=job_id) is not None:
            enqueued += 1
    if enqueued:
        log.warning("push sweep: enqueued %s pushes again", enqueued)
    return enqueued

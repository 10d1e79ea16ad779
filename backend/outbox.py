"""The outbox: what a transaction decided must happen outside the database, written in that
transaction and delivered after it commits.

    async with transaction():
        batch_id = ...  # the rows that call for the job
        await outbox.job("render_form_batch_job", batch_id, job_id=f"forms:{batch_id}")

The entry commits or rolls back with the rows that called for it, so nothing is ever sent for
a transaction that rolled back. When the outermost transaction commits (`db.after_commit`),
`Outbox.deliver` enqueues the entry in arq under its job id and marks it delivered. If Redis
is down at that moment, or the process dies between the commit and the enqueue, the worker's
`sweep_outbox` delivers it (every minute, and at once when the worker finds Redis again).

Exactly once: arq refuses a job id it still holds (queued, running, or its result, kept an
hour), so an entry enqueued twice — the after-commit step and the sweeper racing, or a crash
between the enqueue and the delivered mark — runs once; the delivered mark keeps the sweeper
from enqueuing it again after that hour.

A message (`Outbox.message`, an SMS) is an entry like any other, delivered as the job
`send_outbox_message` carrying only the entry's job id: the phone and text stay in this table
(never in Redis or a log line) and are cleared once sent.

This module imports no domain: the domains hand it job names and ids.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from arq.connections import ArqRedis
from piccolo.columns import JSON, Serial, Timestamptz, Varchar
from piccolo.table import Table
from redis.exceptions import RedisError

from backend.db import after_commit, json_value
from backend.notify.sms import SmsSender

log = logging.getLogger("registry.outbox")

SWEEP_GRACE = timedelta(seconds=10)  # the after-commit step normally delivers within ms
KEEP_DELIVERED = timedelta(days=7)  # then a delivered entry is deleted by the sweeper


class OutboxEntry(Table, tablename="outbox"):
    """One job a committed transaction asked for: `function` with `args`, under arq job id
    `job_id`; `delivered_at` is set once arq has it."""

    id = Serial(primary_key=True)
    function = Varchar(length=100)
    args = JSON(default=[])
    job_id = Varchar(length=200, unique=True)
    created_at = Timestamptz()
    delivered_at = Timestamptz(null=True, default=None, index=True)
    # A message's phone and text ({"phone", "text"}), kept here rather than in Redis or the
    # log, and cleared once sent.
    message = JSON(null=True, default=None)
    sent_at = Timestamptz(null=True, default=None)
    run_at = Timestamptz(null=True, default=None)  # not before (a push after quiet hours)


class Outbox:
    """Writes entries inside the caller's transaction; delivers them to the arq queue."""

    def __init__(self, queue: ArqRedis) -> None:
        self.queue = queue

    async def job(
        self, function: str, *args: Any, job_id: str, run_at: datetime | None = None
    ) -> None:
        """Ask for arq job `function(*args)` once the current transaction commits. Called
        inside `db.transaction()` (outside one it raises: there is nothing to wait for).
        `args` are JSON values (ids); `job_id` names the job for arq's dedupe; `run_at`, if
        given, is the earliest time it runs."""
        await self._write(function, list(args), job_id, None, run_at)

    async def message(self, phone: str, text: str, *, key: str) -> None:
        """Send `text` by SMS to `phone` once the current transaction commits (the worker's
        `send_outbox_message` job sends it). `key` names the message, once: "approval:17"."""
        job_id = f"message:{key}"
        await self._write(SEND_MESSAGE, [job_id], job_id, {"phone": phone, "text": text})

    async def _write(
        self,
        function: str,
        args: list[Any],
        job_id: str,
        message: dict[str, str] | None,
        run_at: datetime | None = None,
    ) -> None:
        entry: dict[str, Any] = {
            "function": function,
            "args": args,
            "job_id": job_id,
            "run_at": run_at,
        }

        async def deliver_it() -> None:
            await self._enqueue([entry])

        after_commit(deliver_it)  # first: outside a transaction it raises, writing nothing
        rows = await OutboxEntry.insert(
            OutboxEntry(
                function=function,
                args=args,
                job_id=job_id,
                created_at=datetime.now(UTC),
                message=message,
                run_at=run_at,
            )
        ).returning(OutboxEntry.id)
        entry["id"] = int(rows[0]["id"])

    async def deliver(self, which: Any = None) -> int:
        """Enqueue the undelivered entries (`which`: a Piccolo condition narrowing them) and
        mark them delivered. With Redis down they stay for the sweeper, and the caller (a
        request whose transaction committed) is not failed for it. Returns how many."""
        query = OutboxEntry.select(
            OutboxEntry.id,
            OutboxEntry.function,
            OutboxEntry.args,
            OutboxEntry.job_id,
            OutboxEntry.run_at,
        ).where(OutboxEntry.delivered_at.is_null())
        if which is not None:
            query = query.where(which)
        return await self._enqueue(await query.order_by(OutboxEntry.id))

    async def _enqueue(self, entries: list[dict[str, Any]]) -> int:
        delivered = 0
        for entry in entries:
            try:
                await self.queue.enqueue_job(
                    entry["function"],
                    *json_value(entry["args"]),
                    _job_id=entry["job_id"],
                    _defer_until=_not_past(_aware(entry.get("run_at"))),
                )
            except (RedisError, OSError) as exc:
                log.warning("job %s waits for Redis (%r)", entry["job_id"], exc)
                break  # the rest would fail the same way; the sweeper delivers them
            await OutboxEntry.update({OutboxEntry.delivered_at: datetime.now(UTC)}).where(
                (OutboxEntry.id == entry["id"]) & OutboxEntry.delivered_at.is_null()
            )
            delivered += 1
        return delivered

    async def sweep(self, grace: timedelta = SWEEP_GRACE) -> int:
        """Deliver what a crash or a Redis outage left behind (entries older than `grace`),
        and delete entries delivered more than `KEEP_DELIVERED` ago (but a message not sent)."""
        now = datetime.now(UTC)
        delivered = await self.deliver(OutboxEntry.created_at <= now - grace)
        await OutboxEntry.delete().where(
            (OutboxEntry.delivered_at < now - KEEP_DELIVERED) & OutboxEntry.message.is_null()
        )  # a message never sent stays, for someone to look at
        if delivered:
            log.warning("swept %s outbox entries left undelivered", delivered)
        return delivered


def _not_past(moment: datetime | None) -> datetime | None:
    """A `run_at` already past is no deferral: arq would give the job a negative expiry (and
    Redis refuse it) once it is more than a day past, as after a long outage."""
    return moment if moment is not None and moment > datetime.now(UTC) else None


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands timestamps back naive (they are stored in UTC)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


SEND_MESSAGE = "send_outbox_message"


async def send_message(sms: SmsSender, job_id: str) -> bool:
    """The job behind `Outbox.message`: send the entry's message unless it was sent already,
    then forget its phone and text. A failure of the gateway raises `SmsError` (the job
    retries); a crash between the send and the mark would send it again, the one case where
    a message can arrive twice. Returns whether it sent."""
    entry = (
        await OutboxEntry.select(OutboxEntry.message)
        .where((OutboxEntry.job_id == job_id) & OutboxEntry.sent_at.is_null())
        .first()
    )
    if entry is None or entry["message"] is None:
        return False
    message = json_value(entry["message"])
    await sms.send(message["phone"], message["text"])
    await OutboxEntry.update(
        {OutboxEntry.message: None, OutboxEntry.sent_at: datetime.now(UTC)}
    ).where(OutboxEntry.job_id == job_id)
    return True

"""arq worker: the jobs and crons, thin calls into the domains.

Production: `python -m backend.worker` (REDIS_URL and DATABASE_URL from the environment);
`arq backend.worker.WorkerSettings` runs the same worker class. Embedded default: `app.py`
runs the same functions in-process.

arq's own loop ends at the first Redis error (a restart, a failover), and a worker ended so
checks nothing until someone restarts it. `ResilientWorker` waits for Redis to come back,
says so in the log, and then sweeps at once: what was queued in a Redis that restarted empty
is found again from PostgreSQL (outbox entries never delivered, uploads left `uploaded`,
imports and form batches left queued).

Jobs read what they need from a typed `ctx` (`backend.resources.WorkerContext`), built from
the same resources as the app's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import arq.worker
from arq import Retry, cron, func
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from backend import outbox
from backend.accounts import audit, audit_verify, refusal_queue
from backend.accounts.admin import seal_inactive_accounts
from backend.config import Settings, get_settings
from backend.messages import reminders as messages_reminders
from backend.notify import devices as _removes_devices_of_ended_sessions  # noqa: F401
from backend.notify import push, schedule
from backend.notify.sms import SmsError
from backend.outbox import SWEEP_GRACE
from backend.parents import reminders as parents_reminders
from backend.parents.archive_tasks import (
    ARCHIVE_CHUNK_TIMEOUT,
    ARCHIVE_TRIES,
    archive_chunk_job,
    start_archive_job,
)
from backend.parents.checks import MAX_ATTEMPTS, warm_up_reader
from backend.parents.tasks import CHECK_TIMEOUT, check_upload_job, sweep_checks
from backend.records import campaign_accounts
from backend.records import reminders as records_reminders
from backend.records import roll_waiting as roll_reminders
from backend.records.forms import MAX_RENDER_ATTEMPTS, RENDER_TIMEOUT
from backend.records.tasks import (
    render_form_batch_job,
    run_import_job,
    sweep_form_batches,
    sweep_imports,
)
from backend.reports import progress_refresh
from backend.reports.exports_tasks import (
    EXPORT_TIMEOUT,
    EXPORT_TRIES,
    run_export_job,
    sweep_exports_job,
)
from backend.resources import Resources, WorkerContext, open_resources

log = logging.getLogger("registry.worker")

# The domains whose reminders join the daily run (each registers itself at import).
DAILY_REMINDERS = (records_reminders, parents_reminders, messages_reminders, roll_reminders)

MESSAGE_TRIES = 5  # an SMS the gateway keeps refusing: tries 30 s, 1, 1.5, 2 min apart


async def seal_inactive_accounts_job(ctx: dict[str, Any]) -> int:
    return await seal_inactive_accounts(WorkerContext.of(ctx).settings)


async def anchor_audit_job(ctx: dict[str, Any]) -> int:
    job = WorkerContext.of(ctx)
    return await audit_verify.anchor_job(job.storage, audit.Keys.of(job.settings))


async def send_outbox_message(ctx: dict[str, Any], job_id: str) -> bool:
    """An SMS a committed transaction asked for (backend/outbox.py); the gateway refusing is
    retried with a growing delay."""
    job = WorkerContext.of(ctx)
    try:
        return await outbox.send_message(job.sms, job_id)
    except SmsError as exc:
        log.warning("message %s not sent (try %s): %s", job_id, job.job_try, exc)
        raise Retry(defer=30 * job.job_try) from exc


async def sweep_outbox(ctx: dict[str, Any], grace_seconds: float | None = None) -> int:
    """Every minute, and at once after the worker finds Redis again (grace 0): deliver the
    jobs committed transactions asked for and nobody enqueued (backend/outbox.py)."""
    grace = SWEEP_GRACE if grace_seconds is None else timedelta(seconds=grace_seconds)
    return await WorkerContext.of(ctx).outbox.sweep(grace)


async def push_notification(ctx: dict[str, Any], notification_ids: int | list[int]) -> str:
    """Push a chunk of notifications (a job enqueued before chunks: one id) to their
    recipients' devices (backend/notify/push.py): the job runs again for the devices left to
    retry, after the gateway's Retry-After or a backoff."""
    job = WorkerContext.of(ctx)
    done = await push.deliver(job.channels, notification_ids, job_try=job.job_try)
    if done.retry_in is not None:
        raise Retry(defer=done.retry_in)
    return f"sent {done.sent}, dead {done.dead}, failed {done.failed}"


async def sweep_pushes(ctx: dict[str, Any], grace_seconds: float | None = None) -> int:
    """Every minute, and at once after the worker finds Redis again (grace 0): enqueue the
    pushes whose time passed with no job in arq (backend/notify/push.py)."""
    grace = push.SWEEP_GRACE if grace_seconds is None else timedelta(seconds=grace_seconds)
    return await push.sweep_pushes(WorkerContext.of(ctx).redis, grace=grace)


async def daily_reminders_job(ctx: dict[str, Any]) -> dict[str, int] | None:
    """Every few minutes: the day's reminders, once per working day at or after the digest
    hour (`backend/notify/schedule.py`); what each domain wrote, or None."""
    job = WorkerContext.of(ctx)
    at = schedule.digest_time(job.settings.digest_at)
    return await schedule.run_if_due(job.outbox, datetime.now(UTC), at)


async def close_campaign_accounts_job(ctx: dict[str, Any]) -> int:
    """Campaign accounts whose campaign's window passed where they work close (issue 12)."""
    return await campaign_accounts.close_ended()


async def refresh_progress_job(ctx: dict[str, Any]) -> int:
    """Every few seconds: count again the schools whose progress changed (docs/progress.md);
    how many were counted."""
    return await progress_refresh.refresh()


async def recount_progress_job(ctx: dict[str, Any]) -> int:
    """Nightly (China time): every school of every live campaign is counted again, so a step
    that fell overdue at midnight shows, and anything a mark missed is healed."""
    return await progress_refresh.mark_live_regions()


async def drain_refusals_job(ctx: dict[str, Any]) -> int:
    """Every 5 seconds: refusals waiting in `pending_refusal` moved into the audit log
    (backend/accounts/refusal_queue.py); how many."""
    moved = total = await refusal_queue.drain()
    while moved == refusal_queue.DRAIN_BATCH:
        moved = await refusal_queue.drain()
        total += moved
    return total


FUNCTIONS: list[Any] = [
    seal_inactive_accounts_job,
    run_import_job,
    sweep_imports,
    # Batches wait their turn for the one PDF thread (backend/records/forms.py).
    func(render_form_batch_job, timeout=RENDER_TIMEOUT, max_tries=MAX_RENDER_ATTEMPTS),
    func(check_upload_job, timeout=CHECK_TIMEOUT + 30, max_tries=MAX_ATTEMPTS),
    sweep_checks,
    anchor_audit_job,
    sweep_form_batches,
    sweep_outbox,
    func(send_outbox_message, max_tries=MESSAGE_TRIES),
    func(push_notification, max_tries=push.PUSH_TRIES),
    sweep_pushes,
    daily_reminders_job,
    # The archive, not deletion (backend/parents/archive.py): a daily run, one job per chunk.
    start_archive_job,
    func(archive_chunk_job, timeout=ARCHIVE_CHUNK_TIMEOUT, max_tries=ARCHIVE_TRIES),
    close_campaign_accounts_job,
    func(run_export_job, timeout=EXPORT_TIMEOUT, max_tries=EXPORT_TRIES),
    sweep_exports_job,
    refresh_progress_job,
    recount_progress_job,
    drain_refusals_job,
]
CHINA_TIME = timezone(timedelta(hours=8), "Asia/Shanghai")  # no daylight saving
CRON_JOBS = [
    cron(seal_inactive_accounts_job, hour={3}, minute={10}, unique=True, run_at_startup=False),
    cron(sweep_imports, minute=set(range(0, 60, 5)), unique=True),
    cron(sweep_checks, second={0}, unique=True),  # every minute
    cron(anchor_audit_job, minute=set(range(0, 60, 10)), second={30}, unique=True),
    cron(sweep_form_batches, minute=set(range(2, 60, 5)), unique=True),
    cron(sweep_outbox, second={20}, unique=True),  # every minute
    cron(sweep_pushes, second={40}, unique=True),  # every minute
    cron(daily_reminders_job, minute=set(range(1, 60, 5)), second={40}, unique=True),
    cron(start_archive_job, hour={2}, minute={40}, unique=True, run_at_startup=False),
    cron(close_campaign_accounts_job, minute=set(range(3, 60, 5)), second={10}, unique=True),
    cron(sweep_exports_job, minute=set(range(3, 60, 5)), second={50}, unique=True),
    cron(refresh_progress_job, second=set(range(0, 60, 5)), unique=True),
    cron(recount_progress_job, hour={0}, minute={5}, unique=True, run_at_startup=False),
    cron(drain_refusals_job, second=set(range(2, 60, 5)), unique=True),
]
POLL_DELAY = 0.05  # seconds: arq's default 0.5 s would add up to half a second to every job


def _log_registry_info() -> None:
    """`arq backend.worker.WorkerSettings` configures arq's own logger only: without this,
    the project's INFO lines (the audit anchor's digest, among others) would be dropped."""
    if logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    for name in ("registry", "backend"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)


async def _startup(ctx: dict[str, Any]) -> None:
    """The production worker opens the app's resources (backend/resources.py) on arq's own
    queue pool, and hands them to the jobs in `ctx` (a `WorkerContext`)."""
    _log_registry_info()
    settings = get_settings()
    stack = AsyncExitStack()
    resources = await stack.enter_async_context(
        open_resources(settings, redis_url(settings), queue=ctx["redis"])
    )
    ctx["close_resources"] = stack.aclose
    ctx.update(resources.worker_context())
    await warm_up_reader()  # load the OCR models before the first photo


async def _shutdown(ctx: dict[str, Any]) -> None:
    await ctx["close_resources"]()


# Redis gone (killed, restarting, unreachable); a WATCH broken by a dropped connection shows
# up as WatchError, a subclass of RedisError, so any RedisError that is not an answer counts.
REDIS_DOWN: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    RedisError,
    OSError,
)
RECONNECT_FIRST = 0.5  # seconds before the first reconnection try; doubled up to the cap
RECONNECT_CAP = 10.0


class ResilientWorker(Worker):
    """arq's Worker whose loop outlives Redis: on a Redis error it logs, waits with backoff
    until Redis answers, logs that, enqueues the sweepers and resumes polling. Jobs running
    at that moment keep running (their state is in the database); on_startup runs once."""

    # No __init__ of its own: arq's command line reads the settings it passes by the
    # signature of the class it builds.
    reconnects = 0
    _startup_wrapped = False

    def _startup_once(self) -> None:
        startup = self.on_startup
        if startup is None or self._startup_wrapped:
            return
        self._startup_wrapped = True
        done = False

        async def once(ctx: dict[str, Any]) -> None:
            nonlocal done
            if not done:
                await startup(ctx)
            done = True

        self.on_startup = once

    async def main(self) -> None:
        self._startup_once()
        delay = RECONNECT_FIRST
        while True:
            started = time.monotonic()
            try:
                await super().main()
                return  # burst mode drained the queue
            except REDIS_DOWN as exc:
                if self.burst:
                    raise
                log.warning("worker lost Redis (%s: %s); reconnecting", type(exc).__name__, exc)
            self._reap_finished()
            if time.monotonic() - started > 60:
                delay = RECONNECT_FIRST  # a fresh outage; a loop of quick failures backs off
            lost_at = time.monotonic()
            while True:
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_CAP)
                if await self._redis_answers():
                    break
            self.reconnects += 1
            self._last_health_check = 0  # `arq --check` reads a key the restart lost
            log.warning(
                "worker reconnected to Redis after %.1f s; sweeping for what it missed",
                time.monotonic() - lost_at,
            )
            await self._sweep_now()

    def _reap_finished(self) -> None:
        """Jobs that ended while Redis was away: forget them here (arq's loop would re-raise
        their Redis error and stop again)."""
        for job_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[job_id]
                if not task.cancelled() and task.exception() is not None:
                    log.warning("job %s ended during the outage: %r", job_id, task.exception())

    async def _redis_answers(self) -> bool:
        try:
            if self._pool is None:  # never connected: let arq's create_pool try again
                assert self.redis_settings is not None
                self._pool = await create_pool(
                    self.redis_settings,
                    retry=self.redis_settings.conn_retries,  # one try: this loop retries
                    job_serializer=self.job_serializer,
                    job_deserializer=self.job_deserializer,
                    default_queue_name=self.queue_name,
                    expires_extra_ms=self.expires_extra_ms,
                )
            return bool(await self.pool.ping())
        except REDIS_DOWN:
            return False

    async def _sweep_now(self) -> None:
        """A Redis that restarted empty lost its queue: the sweepers find it again in the
        database, with no grace period (arq refuses a job id still queued, so nothing runs
        twice)."""
        stamp = int(time.time() * 1000)
        try:
            await self.pool.enqueue_job("sweep_checks", 0, _job_id=f"sweep_checks:now:{stamp}")
            await self.pool.enqueue_job("sweep_imports", _job_id=f"sweep_imports:now:{stamp}")
            await self.pool.enqueue_job(
                "sweep_form_batches", 0, _job_id=f"sweep_batches:now:{stamp}"
            )
            await self.pool.enqueue_job("sweep_outbox", 0, _job_id=f"sweep_outbox:now:{stamp}")
            await self.pool.enqueue_job("sweep_pushes", 0, _job_id=f"sweep_pushes:now:{stamp}")
        except REDIS_DOWN as exc:  # gone again: the next reconnection sweeps
            log.warning("could not enqueue the sweepers: %r", exc)


def redis_url(settings: Settings) -> str:
    return settings.redis_url or settings.redis_probe_url


def redis_settings(settings: Settings) -> RedisSettings:
    return RedisSettings.from_dsn(redis_url(settings))


OPTIONS: dict[str, Any] = {
    "functions": FUNCTIONS,
    "cron_jobs": CRON_JOBS,
    "poll_delay": POLL_DELAY,
    "timezone": CHINA_TIME,
}


def __getattr__(name: str) -> Any:
    """`arq backend.worker.WorkerSettings` builds the settings when it asks, not at import.

    arq's command line has no setting for the worker class: it builds `arq.worker.Worker`,
    which the first Redis error ends for good. Asking for these settings is what that
    command line does, so here arq is told to build `ResilientWorker` instead (a subclass:
    nothing else in arq changes). `python -m backend.worker` needs no such step."""
    if name != "WorkerSettings":
        raise AttributeError(name)
    arq.worker.Worker = ResilientWorker  # type: ignore[misc]
    settings = get_settings()
    return type(
        "WorkerSettings",
        (),
        {
            **OPTIONS,
            "on_startup": _startup,
            "on_shutdown": _shutdown,
            "redis_settings": redis_settings(settings),
        },
    )


def inline_worker(
    resources: Resources, redis_pool: ArqRedis | None = None, **overrides: Any
) -> ResilientWorker:
    """The same jobs, run by the API process itself on its resources (already open); on
    `redis_pool` if given, else on the app's queue pool."""
    options: dict[str, Any] = {
        **OPTIONS,
        "redis_pool": redis_pool or resources.queue,
        "ctx": resources.worker_context(),
        "handle_signals": False,
    }
    options.update(overrides)
    return ResilientWorker(**options)


def main() -> None:
    """`python -m backend.worker`: the production worker."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    worker = ResilientWorker(
        **OPTIONS,
        redis_settings=redis_settings(settings),
        on_startup=_startup,
        on_shutdown=_shutdown,
    )
    worker.run()


if __name__ == "__main__":
    main()

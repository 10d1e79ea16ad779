"""The archive's arq jobs (`parents.archive` does the work): a daily start, then one job per
chunk, each asking for the next in its own transaction's outbox. A run is idempotent and
resumable: everything it looks at is chosen from the database as it stands (rows still naming
a hot key, ledger rows with a hot copy left), so a killed worker, a lost job or a second run
redoes only what is not done; arq retries a chunk a storage fault interrupted.

Progress (`backend.progress`, kind `archive`, the run id): `state` (running, done), `phase`
(upload or evidence) and `last_id` (where it is), `total_upload` and `total_evidence` (what
there was to do at the start), `archived`, `skipped`, `failed`, `removed` (hot copies left by
an earlier run), `updated_at`. `latest_run` names the newest run.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from arq import Retry
from botocore.exceptions import BotoCoreError, ClientError
from redis.asyncio import Redis

from backend import progress
from backend.accounts.audit import Actor
from backend.config import Settings
from backend.db import transaction
from backend.outbox import Outbox
from backend.parents.archive import KINDS, archive_chunk, finish_removals, pending_count
from backend.parents.archive_tables import ArchivedKind
from backend.resources import WorkerContext
from backend.storage import Storage

log = logging.getLogger("registry.archive")

CHINA = timezone(timedelta(hours=8))
CHUNK_JOB = "archive_chunk_job"
LOCK_KEY = "archive:running"  # one run at a time; expires if a run's jobs are all lost
LOCK_SECONDS = 3600  # renewed by every chunk
LATEST_KEY = "archive:latest"
ARCHIVE_TRIES = 5
ARCHIVE_CHUNK_TIMEOUT = 900  # seconds: a chunk of 200 objects on a slow store
# A storage or database fault: the chunk runs again later (what it did stays done).
TRANSIENT = (OSError, BotoCoreError, ClientError)


def run_id_at(now: datetime) -> int:
    """202612020240: the China time a run started, to the minute."""
    return int(now.astimezone(CHINA).strftime("%Y%m%d%H%M"))


def actor_of(run_id: int) -> Actor:
    return Actor.system(f"archive:{run_id}")


async def latest_run(redis: Redis) -> tuple[int, dict[str, str]] | None:
    raw = await redis.get(LATEST_KEY)
    if raw is None:
        return None
    run_id = int(raw)
    return run_id, await progress.read(redis, "archive", run_id)


async def start_run(
    storage: Storage, settings: Settings, redis: Redis, now: datetime | None = None
) -> int | None:
    """Start a run unless one is going: finish the hot copies an earlier run left, count what
    there is to do, and report it. Answers the run id, or None when one is running."""
    now = now or datetime.now(UTC)
    run_id = run_id_at(now)
    if not await redis.set(LOCK_KEY, run_id, nx=True, ex=LOCK_SECONDS):
        log.info("archive run not started: run %s is still going", (await redis.get(LOCK_KEY)))
        return None
    removed = await finish_removals(storage)
    totals = await pending_count(settings, storage, now)
    await redis.set(LATEST_KEY, run_id)
    await progress.report(
        redis,
        "archive",
        run_id,
        state="running",
        phase=KINDS[0].value,
        last_id=0,
        archived=0,
        skipped=0,
        failed=0,
        removed=removed,
        **{f"total_{kind}": count for kind, count in totals.items()},
        updated_at=now.isoformat(timespec="seconds"),
    )
    return run_id


async def run_chunk(
    storage: Storage,
    settings: Settings,
    redis: Redis,
    run_id: int,
    kind: ArchivedKind,
    after_id: int,
) -> tuple[ArchivedKind, int] | None:
    """One chunk of a run; answers where the next starts, or None when the run is done."""
    await redis.expire(LOCK_KEY, LOCK_SECONDS)
    chunk = await archive_chunk(storage, settings, actor_of(run_id), kind, after_id)
    done = await progress.read(redis, "archive", run_id)
    counts = {
        "archived": int(done.get("archived", 0)) + chunk.outcome.archived,
        "skipped": int(done.get("skipped", 0)) + chunk.outcome.skipped,
        "failed": int(done.get("failed", 0)) + len(chunk.outcome.failed),
    }
    for failure in chunk.outcome.failed:
        log.warning("archive run %s: %s", run_id, failure)
    following: tuple[ArchivedKind, int] | None
    if chunk.more:
        following = (kind, chunk.last_id)
    elif kind is not KINDS[-1]:
        following = (KINDS[KINDS.index(kind) + 1], 0)
    else:
        following = None
    await progress.report(
        redis,
        "archive",
        run_id,
        state="running" if following else "done",
        phase=kind.value,
        last_id=chunk.last_id,
        updated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        **counts,
    )
    if following is None:
        await redis.delete(LOCK_KEY)
        log.info("archive run %s done: %s", run_id, counts)
    return following


async def _ask_for(outbox: Outbox, run_id: int, kind: ArchivedKind, after_id: int) -> None:
    async with transaction():
        await outbox.job(
            CHUNK_JOB,
            run_id,
            kind.value,
            after_id,
            job_id=f"archive:{run_id}:{kind.value}:{after_id}",
        )


async def start_archive_job(ctx: dict[str, Any]) -> int | None:
    """Daily (worker cron): start a run and ask for its first chunk."""
    job = WorkerContext.of(ctx)
    run_id = await start_run(job.storage, job.settings, job.redis)
    if run_id is not None:
        await _ask_for(job.outbox, run_id, KINDS[0], 0)
    return run_id


async def archive_chunk_job(ctx: dict[str, Any], run_id: int, kind: str, after_id: int) -> str:
    """One chunk of run `run_id`, then the next is asked for."""
    job = WorkerContext.of(ctx)
    try:
        following = await run_chunk(
            job.storage, job.settings, job.redis, run_id, ArchivedKind(kind), after_id
        )
    except TRANSIENT as exc:
        log.warning(
            "archive chunk %s/%s after %s: %r (try %s)", run_id, kind, after_id, exc, job.job_try
        )
        raise Retry(defer=60 * job.job_try) from exc
    if following is not None:
        await _ask_for(job.outbox, run_id, *following)
        return f"next {following[0].value} after {following[1]}"
    return "done"


async def run_inline(storage: Storage, settings: Settings, redis: Redis) -> int | None:
    """A whole run in this process, chunk after chunk (`python -m backend archive run`)."""
    run_id = await start_run(storage, settings, redis)
    if run_id is None:
        return None
    step: tuple[ArchivedKind, int] | None = (KINDS[0], 0)
    while step is not None:
        step = await run_chunk(storage, settings, redis, run_id, *step)
    return run_id

"""arq jobs of the records domain: thin calls into the services, taking ids."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from arq import Retry
from arq.connections import ArqRedis

from backend.config import Settings
from backend.records import forms
from backend.records.imports import run_import
from backend.records.tables import ImportJob, ImportStatus
from backend.resources import WorkerContext

log = logging.getLogger("registry.forms")

STALE_AFTER = timedelta(minutes=10)
# A batch still `queued` this long after it was issued has no job (its enqueue failed, or
# Redis restarted empty); a job queued but not yet taken keeps its id, so arq refuses the
# sweeper's copy while it waits.
BATCH_SWEEP_GRACE_SECONDS = 60.0


async def run_import_job(ctx: dict[str, Any], job_id: int) -> str:
    return await run_import(job_id, WorkerContext.of(ctx).redis)


async def sweep_imports(ctx: dict[str, Any]) -> int:
    """Re-enqueue imports left behind (enqueue failed, or a worker died mid-job)."""
    cutoff = datetime.now(UTC) - STALE_AFTER
    stale = await ImportJob.select(ImportJob.id).where(
        ImportJob.status.is_in([ImportStatus.queued, ImportStatus.running])
        & (ImportJob.created_at < cutoff)
    )
    for row in stale:
        await WorkerContext.of(ctx).redis.enqueue_job(
            "run_import_job", row["id"], _job_id=f"import:{row['id']}"
        )
    return len(stale)


def render_lease(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.render_lease_seconds)


async def enqueue_render(redis: ArqRedis, batch_id: int, attempt: int = 0) -> None:
    # A fresh job id per attempt: arq keeps a finished job's id (and refuses it) for a while.
    suffix = f":{attempt}" if attempt else ""
    await redis.enqueue_job("render_form_batch_job", batch_id, _job_id=f"forms:{batch_id}{suffix}")


async def render_form_batch_job(ctx: dict[str, Any], batch_id: int) -> str:
    """The photo check's pattern: a transient failure (storage, database) is retried by arq
    while tries remain; anything else would fail the same way again, so the batch fails at
    once; either way it ends `failed` with a message for the registrar, never `running`."""
    job = WorkerContext.of(ctx)
    try:
        return await forms.render_batch(
            job.settings, job.storage, job.redis, batch_id, lease=render_lease(job.settings)
        )
    except (OSError, TimeoutError) as exc:
        log.warning("form batch %s failed (try %s): %r", batch_id, job.job_try, exc)
        if await forms.give_up_or_release(batch_id, exc):
            raise Retry(defer=2 * job.job_try) from exc
        return "failed"
    except asyncio.CancelledError as exc:
        # Out of time, or the worker stops: another try later (the sweeper finds it queued),
        # or failed after the last; never left `running`.
        await forms.give_up_or_release(batch_id, exc)
        raise
    except Exception as exc:
        log.exception("form batch %s could not be rendered", batch_id)
        return await forms.fail_batch(batch_id, repr(exc))


async def sweep_form_batches(
    ctx: dict[str, Any], grace_seconds: float = BATCH_SWEEP_GRACE_SECONDS
) -> int:
    """Every five minutes, and at once after the worker finds Redis again (grace 0):
    re-enqueue batches queued with no job, or left `running` by a worker that died; fail
    those out of tries."""
    job = WorkerContext.of(ctx)
    stale = await forms.left_behind(
        render_lease(job.settings), grace=timedelta(seconds=grace_seconds)
    )
    for batch_id, attempts in stale:
        await enqueue_render(job.redis, batch_id, attempts)
    return len(stale)

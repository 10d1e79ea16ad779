"""arq jobs of the phone side: the photo check and its sweeper; thin calls into checks."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from arq import Retry
from arq.connections import ArqRedis

from backend.config import Settings
from backend.parents import checks
from backend.resources import WorkerContext

log = logging.getLogger("registry.checks")

CHECK_TIMEOUT = 60.0  # seconds for the reader; a photo normally takes about one
# An upload still `uploaded` this long after it was stored has no job (its enqueue failed,
# or Redis restarted empty); a job queued but not yet taken keeps its id, so arq refuses the
# sweeper's copy while it waits.
SWEEP_GRACE_SECONDS = 10.0


def lease(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.check_lease_seconds)


async def enqueue_check(redis: ArqRedis, upload_id: int, attempt: int = 0) -> None:
    # A fresh job id per attempt: arq keeps a finished job's id for an hour.
    await redis.enqueue_job("check_upload_job", upload_id, _job_id=f"check:{upload_id}:{attempt}")


async def check_upload_job(ctx: dict[str, Any], upload_id: int) -> str:
    job = WorkerContext.of(ctx)
    try:
        return await checks.run_check(
            job.settings,
            job.storage,
            upload_id,
            lease=lease(job.settings),
            time_limit=CHECK_TIMEOUT,
            outbox=job.outbox,
        )
    except (OSError, TimeoutError) as exc:  # storage, database, reader
        log.warning("check of upload %s failed (try %s): %r", upload_id, job.job_try, exc)
        if await checks.give_up_or_release(upload_id, exc, job.outbox):
            raise Retry(defer=2 * job.job_try) from exc
        return "check_failed"
    except Exception as exc:
        # Not transient: retrying would fail the same way.
        log.exception("check of upload %s failed", upload_id)
        return await checks.fail(upload_id, repr(exc), job.outbox)


async def sweep_checks(ctx: dict[str, Any], grace_seconds: float = SWEEP_GRACE_SECONDS) -> int:
    """Every minute, and at once after the worker finds Redis again (grace 0)."""
    job = WorkerContext.of(ctx)
    stale = await checks.left_behind(lease(job.settings), grace=timedelta(seconds=grace_seconds))
    for upload_id, attempts in stale:
        await enqueue_check(job.redis, upload_id, attempts)
    return len(stale)

"""arq jobs of the records domain: thin calls into the services, taking ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from backend.records.imports import run_import
from backend.records.tables import FormBatch, ImportJob
from backend.resources import WorkerContext

STALE_AFTER = timedelta(minutes=10)
BATCH_STALE_AFTER = timedelta(minutes=20)  # longer than a render job may run


async def run_import_job(ctx: dict[str, Any], job_id: int) -> str:
    return await run_import(job_id, WorkerContext.of(ctx).redis)


async def sweep_imports(ctx: dict[str, Any]) -> int:
    """Re-enqueue imports left behind (enqueue failed, or a worker died mid-job)."""
    cutoff = datetime.now(UTC) - STALE_AFTER
    stale = await ImportJob.select(ImportJob.id).where(
        ImportJob.status.is_in(["queued", "running"]) & (ImportJob.created_at < cutoff)
    )
    for row in stale:
        await WorkerContext.of(ctx).redis.enqueue_job(
            "run_import_job", row["id"], _job_id=f"import:{row['id']}"
        )
    return len(stale)


async def sweep_form_batches(ctx: dict[str, Any], queued_for_seconds: float = 60) -> int:
    """Re-enqueue form batches left behind: queued with no job (enqueue failed, Redis
    restarted empty, a transient failure), or running long after a worker died mid-render.
    A job id of its own each time: arq refuses an id whose failed result it still keeps."""
    now = datetime.now(UTC)
    stale = await FormBatch.select(FormBatch.id).where(
        (
            (FormBatch.status == "queued")
            & (FormBatch.created_at < now - timedelta(seconds=queued_for_seconds))
        )
        | ((FormBatch.status == "running") & (FormBatch.created_at < now - BATCH_STALE_AFTER))
    )
    stamp = int(now.timestamp())
    for row in stale:
        await WorkerContext.of(ctx).redis.enqueue_job(
            "render_form_batch_job", row["id"], _job_id=f"forms:{row['id']}:swept:{stamp}"
        )
    return len(stale)

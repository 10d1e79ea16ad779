"""arq jobs of the records domain: thin calls into the services, taking ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from backend.records.imports import run_import
from backend.records.tables import ImportJob

STALE_AFTER = timedelta(minutes=10)


async def run_import_job(ctx: dict[str, Any], job_id: int) -> str:
    return await run_import(job_id, ctx["redis"])


async def sweep_imports(ctx: dict[str, Any]) -> int:
    """Re-enqueue imports left behind (enqueue failed, or a worker died mid-job)."""
    cutoff = datetime.now(UTC) - STALE_AFTER
    stale = await ImportJob.select(ImportJob.id).where(
        ImportJob.status.is_in(["queued", "running"]) & (ImportJob.created_at < cutoff)
    )
    for row in stale:
        await ctx["redis"].enqueue_job("run_import_job", row["id"], _job_id=f"import:{row['id']}")
    return len(stale)

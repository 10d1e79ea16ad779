"""arq jobs of exports: thin calls into `backend.reports.exports`, taking ids."""

from __future__ import annotations

import logging
from typing import Any

from arq import Retry

from backend.reports import exports
from backend.resources import WorkerContext

log = logging.getLogger("registry.exports")

EXPORT_TRIES = 3
EXPORT_TIMEOUT = 30 * 60  # seconds: a national list of millions of rows


async def run_export_job(ctx: dict[str, Any], export_id: int) -> str:
    """Make an export's file. A storage or database fault is retried (the export goes back
    to be taken again); anything else fails it for good, with a message for its requester."""
    job = WorkerContext.of(ctx)
    try:
        return await exports.make_file(export_id, job.storage, job.redis)
    except (OSError, TimeoutError) as exc:
        log.warning("export %s failed (try %s): %r", export_id, job.job_try, exc)
        if job.job_try < EXPORT_TRIES:
            raise Retry(defer=10 * job.job_try) from exc
        await exports.fail(export_id, "文件生成失败（存储或数据库暂时不可用），请重新导出")
        return "failed"
    except Exception:
        log.exception("export %s could not be made", export_id)
        await exports.fail(export_id, "文件生成失败，请重新导出")
        return "failed"


async def sweep_exports_job(ctx: dict[str, Any]) -> dict[str, int]:
    """Every five minutes: expired files deleted, exports left behind enqueued again."""
    job = WorkerContext.of(ctx)
    return await exports.sweep(job.storage, job.redis)

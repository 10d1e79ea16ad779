"""arq worker: the jobs and crons, thin calls into the domains.

Production: `arq backend.worker.WorkerSettings` (REDIS_URL and DATABASE_URL from the
environment). Embedded default: `app.py` runs the same functions in-process.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

from arq import cron, func
from arq.connections import RedisSettings
from arq.worker import Worker

from backend.accounts import audit, audit_verify
from backend.accounts.admin import seal_inactive_accounts
from backend.config import Settings, get_settings
from backend.db import close_pool, open_pool
from backend.parents.checks import MAX_ATTEMPTS, warm_up_reader
from backend.parents.tasks import CHECK_TIMEOUT, check_upload_job, sweep_checks
from backend.records.forms import render_batch
from backend.records.tasks import run_import_job, sweep_imports
from backend.storage import make_storage


async def seal_inactive_accounts_job(ctx: dict[str, Any]) -> int:
    settings: Settings = ctx["settings"]
    return await seal_inactive_accounts(settings)


async def anchor_audit_job(ctx: dict[str, Any]) -> int:
    return await audit_verify.anchor_job(ctx["storage"], audit.Keys.of(ctx["settings"]))


async def render_form_batch_job(ctx: dict[str, Any], batch_id: int) -> str:
    return await render_batch(ctx["settings"], ctx["storage"], ctx["redis"], batch_id)


FUNCTIONS: list[Any] = [
    seal_inactive_accounts_job,
    run_import_job,
    sweep_imports,
    render_form_batch_job,
    func(check_upload_job, timeout=CHECK_TIMEOUT + 30, max_tries=MAX_ATTEMPTS),
    sweep_checks,
    anchor_audit_job,
]
CHINA_TIME = timezone(timedelta(hours=8), "Asia/Shanghai")  # no daylight saving
CRON_JOBS = [
    cron(seal_inactive_accounts_job, hour={3}, minute={10}, unique=True, run_at_startup=False),
    cron(sweep_imports, minute=set(range(0, 60, 5)), unique=True),
    cron(sweep_checks, second={0}, unique=True),  # every minute
    cron(anchor_audit_job, minute=set(range(0, 60, 10)), second={30}, unique=True),
]
POLL_DELAY = 0.05  # seconds: arq's default 0.5 s would add up to half a second to every job


async def _startup(ctx: dict[str, Any]) -> None:
    ctx["settings"] = get_settings()
    ctx["storage"] = make_storage(ctx["settings"])
    await open_pool(ctx["settings"])
    await warm_up_reader()  # load the OCR models before the first photo


async def _shutdown(ctx: dict[str, Any]) -> None:
    await close_pool()


def __getattr__(name: str) -> Any:
    """`arq backend.worker.WorkerSettings` builds the settings when it asks, not at import."""
    if name != "WorkerSettings":
        raise AttributeError(name)
    settings = get_settings()
    return type(
        "WorkerSettings",
        (),
        {
            "functions": FUNCTIONS,
            "cron_jobs": CRON_JOBS,
            "on_startup": _startup,
            "on_shutdown": _shutdown,
            "poll_delay": POLL_DELAY,
            "timezone": CHINA_TIME,
            "redis_settings": RedisSettings.from_dsn(
                settings.redis_url or settings.redis_probe_url
            ),
        },
    )


def inline_worker(settings: Settings, redis_pool: Any, **overrides: Any) -> Worker:
    """The same jobs, run by the API process itself (its pools are already open)."""
    options: dict[str, Any] = {
        "functions": FUNCTIONS,
        "cron_jobs": CRON_JOBS,
        "redis_pool": redis_pool,
        "ctx": {"settings": settings, "storage": make_storage(settings)},
        "poll_delay": POLL_DELAY,
        "timezone": CHINA_TIME,
        "handle_signals": False,
    }
    options.update(overrides)
    return Worker(**options)

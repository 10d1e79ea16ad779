"""arq worker: the jobs and crons, thin calls into the domains.

Production: `arq backend.worker.WorkerSettings` (REDIS_URL and DATABASE_URL from the
environment). Embedded default: `app.py` runs the same functions in-process.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

from arq import cron
from arq.connections import RedisSettings
from arq.worker import Worker

from backend.accounts.admin import seal_inactive_accounts
from backend.config import Settings, get_settings
from backend.db import close_pool, open_pool
from backend.records.tasks import run_import_job, sweep_imports


async def seal_inactive_accounts_job(ctx: dict[str, Any]) -> int:
    settings: Settings = ctx["settings"]
    return await seal_inactive_accounts(settings)


FUNCTIONS: list[Any] = [seal_inactive_accounts_job, run_import_job, sweep_imports]
CHINA_TIME = timezone(timedelta(hours=8), "Asia/Shanghai")  # no daylight saving
CRON_JOBS = [
    cron(seal_inactive_accounts_job, hour={3}, minute={10}, unique=True, run_at_startup=False),
    cron(sweep_imports, minute=set(range(0, 60, 5)), unique=True),
]
POLL_DELAY = 0.05  # seconds: arq's default 0.5 s would add up to half a second to every job


async def _startup(ctx: dict[str, Any]) -> None:
    ctx["settings"] = get_settings()
    await open_pool(ctx["settings"])


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
        "ctx": {"settings": settings},
        "poll_delay": POLL_DELAY,
        "timezone": CHINA_TIME,
        "handle_signals": False,
    }
    options.update(overrides)
    return Worker(**options)

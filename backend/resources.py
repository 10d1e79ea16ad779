"""What the app and the worker hold open, built in one place: the database pool, Redis (for
commands and for the job queue), one HTTP client, storage and the senders (SMS, the push channels).

The app opens them in its lifespan and hands them to handlers as dependencies
(`backend/deps.py`); the worker opens the same in its start-up and hands them to jobs as a
`WorkerContext` (arq's `ctx` holds the `Resources`; jobs read them typed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import Redis

from backend.config import Settings
from backend.db import close_pool, open_pool
from backend.notify.channels.base import Channel
from backend.notify.channels.setup import build_channels, http_client
from backend.notify.sms import HttpSmsSender, LoggingSmsSender, SmsSender
from backend.outbox import Outbox
from backend.storage import Storage, make_storage


def make_sms(settings: Settings, http: httpx.AsyncClient) -> SmsSender:
    if settings.sms_url:
        return HttpSmsSender(http, settings.sms_url, settings.sms_token)
    return LoggingSmsSender()


@dataclass(frozen=True)
class Resources:
    settings: Settings
    redis: Redis  # commands (throttles, codes, progress), with short timeouts
    queue: ArqRedis  # the arq job queue
    http: httpx.AsyncClient
    storage: Storage
    sms: SmsSender
    channels: Mapping[str, Channel]  # push channels by name (backend/notify/channels)

    def worker_context(self) -> dict[str, Any]:
        """arq's `ctx` for a worker on these resources (`WorkerContext.of` reads it)."""
        return {"resources": self}


@dataclass(frozen=True)
class WorkerContext:
    """What a job reads, typed: `job = WorkerContext.of(ctx)`, then `job.storage`."""

    settings: Settings
    storage: Storage
    sms: SmsSender
    channels: Mapping[str, Channel]
    redis: ArqRedis  # the worker's own pool: the queue, and commands (progress)
    job_try: int  # 1 on the first run of a job

    @classmethod
    def of(cls, ctx: dict[str, Any]) -> WorkerContext:
        resources: Resources = ctx["resources"]
        return cls(
            settings=resources.settings,
            storage=resources.storage,
            sms=resources.sms,
            channels=resources.channels,
            redis=ctx["redis"],
            job_try=ctx.get("job_try", 1),
        )

    @property
    def outbox(self) -> Outbox:
        return Outbox(self.redis)


@asynccontextmanager
async def open_resources(
    settings: Settings, redis_url: str, queue: ArqRedis | None = None
) -> AsyncIterator[Resources]:
    """Open everything, and close it in reverse on the way out. The worker passes arq's own
    pool as `queue`; the app gets one of its own."""
    async with AsyncExitStack() as stack:
        await open_pool(settings)
        stack.push_async_callback(close_pool)
        # Timeouts: an unreachable Redis answers 503 in seconds instead of hanging requests.
        redis = Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
        stack.push_async_callback(redis.aclose)
        if queue is None:
            queue = await create_pool(RedisSettings.from_dsn(redis_url))
            stack.push_async_callback(queue.aclose)
        http = http_client(settings.push)  # HTTP/2: APNs multiplexes on one connection
        stack.push_async_callback(http.aclose)
        yield Resources(
            settings=settings,
            redis=redis,
            queue=queue,
            http=http,
            storage=make_storage(settings),
            sms=make_sms(settings, http),
            channels=build_channels(settings.push, http),
        )

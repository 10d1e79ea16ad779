"""The Litestar app. `python app.py` runs the embedded default: SQLite under var/, a Redis
found or started, the arq worker in-process, demo data on first start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import uvicorn
from arq import create_pool
from arq.connections import RedisSettings
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from redis.asyncio import Redis

from backend.accounts.controllers import ROUTES as ACCOUNT_ROUTES
from backend.accounts.tokens import AccessTokenVerifier
from backend.config import Settings, get_settings
from backend.db import close_pool, open_pool
from backend.deps import DEPENDENCIES
from backend.http import (
    EXCEPTION_HANDLERS,
    BearerAuthentication,
    request_id_middleware,
    requires_current_password,
)
from backend.logs import uvicorn_log_config
from backend.migrate import migrate
from backend.notify.sms import HttpSmsSender, LoggingSmsSender
from backend.parents.checks import warm_up_reader
from backend.parents.controllers import ROUTES as PARENT_ROUTES
from backend.records.controllers import ROUTES as RECORD_ROUTES
from backend.redis_server import resolve_redis
from backend.refusals import audit_refusal
from backend.seed import format_logins, seed_if_empty
from backend.storage import make_storage
from backend.worker import REDIS_DOWN, inline_worker

log = logging.getLogger("registry")

MAX_REQUEST_BYTES = 25 * 1024 * 1024  # the largest upload (an import file) plus form overhead
PUBLIC_PATHS = [
    "^/health$",
    "^/schema",
    "^/auth/login$",
    "^/auth/refresh$",
    "^/signup/start$",
    "^/signup/confirm$",
]


@get("/health", exclude_from_auth=True, tags=["ops"])
async def health() -> dict[str, str]:
    return {"status": "ok"}


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await task


async def _await_quietly(task: asyncio.Task[None]) -> None:
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await task


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await open_pool(settings)
            stack.push_async_callback(close_pool)
            if not settings.is_postgres:
                await migrate()
            redis_url, private_redis = await resolve_redis(settings)
            if private_redis is not None:
                stack.callback(private_redis.stop)
                keeper = asyncio.create_task(private_redis.keep_alive())
                stack.push_async_callback(_cancel, keeper)
            # Timeouts: an unreachable Redis answers 503 in seconds instead of hanging requests.
            app.state.redis = Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
            stack.push_async_callback(app.state.redis.aclose)
            app.state.arq = await create_pool(RedisSettings.from_dsn(redis_url))
            stack.push_async_callback(app.state.arq.aclose)
            app.state.http = httpx.AsyncClient(timeout=10)
            stack.push_async_callback(app.state.http.aclose)
            app.state.storage = make_storage(settings)
            app.state.sms = (
                HttpSmsSender(app.state.http, settings.sms_url, settings.sms_token)
                if settings.sms_url
                else LoggingSmsSender()
            )
            if settings.seed_demo:
                logins = await seed_if_empty(settings)
                if logins:
                    print(format_logins(logins), flush=True)
            if settings.run_worker_inline:
                warming = asyncio.create_task(warm_up_reader())  # not holding up the start
                stack.push_async_callback(_await_quietly, warming)
                # It outlives Redis restarts: logs, reconnects, sweeps (backend/worker.py).
                worker = inline_worker(settings, app.state.arq)
                task = asyncio.create_task(worker.async_run())
                app.state.worker = worker

                async def stop_worker() -> None:
                    with contextlib.suppress(*REDIS_DOWN):  # Redis may be down at exit
                        await worker.close()
                    await _cancel(task)

                stack.push_async_callback(stop_worker)
            yield

    return Litestar(
        route_handlers=[health, *ACCOUNT_ROUTES, *RECORD_ROUTES, *PARENT_ROUTES],
        lifespan=[lifespan],
        middleware=[
            request_id_middleware,
            DefineMiddleware(BearerAuthentication, exclude=PUBLIC_PATHS),
        ],
        guards=[requires_current_password],
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        after_exception=[audit_refusal],  # every 403 leaves an audit row
        openapi_config=OpenAPIConfig(title="学籍移动端 API", version="0.1.0", path="/schema"),
        state=State({"settings": settings, "verifier": AccessTokenVerifier(settings)}),
        request_max_body_size=MAX_REQUEST_BYTES,
        debug=False,
    )


app = create_app()


def server_config(application: Litestar, settings: Settings) -> uvicorn.Config:
    """How `python app.py` serves: uvicorn, its access log without query strings (they carry
    searched ID numbers and phones; see backend/logs.py)."""
    return uvicorn.Config(
        application,
        host=settings.host,
        port=settings.port,
        log_level="info",
        log_config=uvicorn_log_config(),
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    server = uvicorn.Server(server_config(app, get_settings()))
    server.run()
    if not server.started:
        raise SystemExit(3)  # as uvicorn.run does when the start failed


if __name__ == "__main__":
    main()

"""The Litestar app. `python app.py` runs the embedded default: SQLite under var/, a Redis
found or started, the arq worker in-process, demo data on first start."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import html
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from litestar import Litestar, Request, Router, get
from litestar.datastructures import CacheControlHeader, State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin
from litestar.static_files import create_static_files_router

from backend.accounts.admin_controllers import ROUTES as STAFF_ADMIN_ROUTES
from backend.accounts.controllers import ROUTES as ACCOUNT_ROUTES
from backend.accounts.second_factor_controllers import ROUTES as SECOND_FACTOR_ROUTES
from backend.accounts.support_controllers import ROUTES as SUPPORT_ROUTES
from backend.accounts.tokens import AccessTokenVerifier
from backend.config import Settings, get_settings
from backend.db import fetch_rows
from backend.deps import DEPENDENCIES, RedisDep
from backend.errors import DatabaseUnavailable, ServiceUnavailable
from backend.http import (
    DOCS_SCRIPT_PATH,
    EXCEPTION_HANDLERS,
    BearerAuthentication,
    hostile_input_middleware,
    response_headers_middleware,
)
from backend.logs import uvicorn_log_config
from backend.messages.controllers import ROUTES as MESSAGE_ROUTES
from backend.migrate import migrate
from backend.notify.controllers import ROUTES as NOTIFY_ROUTES
from backend.notify.push_controllers import ROUTES as PUSH_ROUTES
from backend.openapi import errors, finish_schema
from backend.parents.checks import warm_up_reader
from backend.parents.controllers import ROUTES as PARENT_ROUTES
from backend.parents.request_controllers import ROUTES as PARENT_REQUEST_ROUTES
from backend.records.campaign_work_controllers import ROUTES as CAMPAIGN_WORK_ROUTES
from backend.records.change_request_controllers import ROUTES as CHANGE_REQUEST_ROUTES
from backend.records.control_controllers import ROUTES as CONTROL_ROUTES
from backend.records.controllers import ROUTES as RECORD_ROUTES
from backend.records.paper_return_controllers import ROUTES as PAPER_RETURN_ROUTES
from backend.records.problem_controllers import ROUTES as PROBLEM_ROUTES
from backend.records.proof_controllers import ROUTES as PROOF_ROUTES
from backend.records.read_rate_controllers import ROUTES as READ_RATE_ROUTES
from backend.records.review_controllers import ROUTES as REVIEW_ROUTES
from backend.records.roll_controllers import ROUTES as ROLL_ROUTES
from backend.redis_server import resolve_redis
from backend.refusals import audit_refusal
from backend.reports.exports_controllers import ROUTES as EXPORT_ROUTES
from backend.reports.progress_controllers import ROUTES as PROGRESS_ROUTES
from backend.resources import open_resources
from backend.seed import format_logins, seed_if_empty
from backend.transfers.bulletin_controllers import ROUTES as BULLETIN_ROUTES
from backend.transfers.controllers import ROUTES as TRANSFER_ROUTES
from backend.transfers.rule_controllers import ROUTES as CHANGE_RULE_ROUTES
from backend.worker import REDIS_DOWN, inline_worker

log = logging.getLogger("registry")

MAX_REQUEST_BYTES = 25 * 1024 * 1024  # the largest upload (an import file) plus form overhead
READY_TIMEOUT = 2.0  # seconds: a probe waits no longer for the database or Redis
REDIS_OR_TIMEOUT: tuple[type[BaseException], ...] = (*REDIS_DOWN, TimeoutError)
PUBLIC_PATHS = [
    "^/health$",
    "^/health/ready$",
    "^/schema",
    "^/auth/login$",
    "^/auth/refresh$",
    "^/signup/start$",
    "^/signup/confirm$",
    "^/auth/second-factor/(verify|sms|totp|confirm)$",  # a login's ticket, not a token
    "^/m(/|$)",  # the phone pages and their assets (the data they show comes from the API)
]
DOCS_ASSETS = Path(__file__).resolve().parent / "backend" / "static" / "redoc"


@get(
    "/health",
    exclude_from_auth=True,
    tags=["ops"],
    summary="Check the service is up",
    operation_id="getHealth",
)
async def health() -> dict[str, str]:
    """**Who may call**: anyone, signed in or not (load balancers, monitoring).

    Answers `{"status": "ok"}` while the process serves requests; it touches neither the
    database nor Redis.

    **Errors**: none."""
    return {"status": "ok"}


@get(
    "/health/ready",
    exclude_from_auth=True,
    tags=["ops"],
    summary="Check the service can serve: database and Redis answer",
    operation_id="getReadiness",
    responses=errors({503: "database_unavailable service_unavailable"}),
)
async def ready(redis: RedisDep) -> dict[str, str]:
    """**Who may call**: anyone, signed in or not (a load balancer's readiness probe).

    Answers `{"status": "ok"}` when the database answers a query and Redis a `PING`, each
    within 2 seconds; a process that answers `/health` but not this should get no traffic.

    **Errors**: `database_unavailable` (503) the database did not answer;
    `service_unavailable` (503) Redis did not answer."""
    try:
        await asyncio.wait_for(fetch_rows("SELECT 1 AS one"), READY_TIMEOUT)
    except Exception as exc:
        log.warning("not ready: the database did not answer (%r)", exc)
        raise DatabaseUnavailable() from exc
    try:
        await asyncio.wait_for(redis.ping(), READY_TIMEOUT)
    except REDIS_OR_TIMEOUT as exc:
        log.warning("not ready: Redis did not answer (%r)", exc)
        raise ServiceUnavailable() from exc
    return {"status": "ok"}


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await task


class DocsPage(OpenAPIRenderPlugin):
    """`/schema`: Redoc (served from `backend/static/redoc`, no CDN, no web fonts) reading
    `/schema/openapi.json`, with no inline script, so the page runs under `HTML_CSP`
    (backend/http.py). Litestar's own pages inline the schema and load everything from CDNs."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = html.escape(str(openapi_schema["info"]["title"]))
        spec_url = html.escape(self.get_openapi_json_route(request))
        return (
            "<!DOCTYPE html><html><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{title}</title>"
            f"</head><body><redoc spec-url='{spec_url}'></redoc>"
            f"<script src='{DOCS_SCRIPT_PATH}'></script></body></html>"
        ).encode()


def docs_assets(settings: Settings) -> list[Router]:
    """The docs page's script, from the service itself (under `/schema`: public)."""
    if not settings.openapi_enabled:
        return []
    return [
        create_static_files_router(
            path="/schema/assets",
            directories=[DOCS_ASSETS],
            include_in_schema=False,
            cache_control=CacheControlHeader(max_age=86400, public=True),
        )
    ]


def openapi_config(settings: Settings) -> OpenAPIConfig | None:
    """The schema and its docs page, or nothing at all (`/schema` is then a 404)."""
    if not settings.openapi_enabled:
        return None
    return OpenAPIConfig(
        title="学籍移动端 API",
        version="0.1.0",
        description=(
            "The mobile end of the student registry. Sign in with `POST /auth/login` (parents "
            "first sign up with `/signup/*`) and send `Authorization: Bearer <access_token>`; "
            "on 401 `token_expired` trade the refresh token at `POST /auth/refresh`. Every "
            "error is `{code, message, field_errors?, request_id}`: branch on `code` (listed "
            "per status in each operation), show `message` (Chinese)."
        ),
        path="/schema",
        use_handler_docstrings=True,
        render_plugins=[DocsPage(path="/", favicon=""), JsonRenderPlugin()],
    )


@functools.cache
def _freeze_startup_objects() -> None:
    """Leave what the start built (modules, the app, its routes and schema: ≈ 180,000
    objects) out of the garbage collector's full passes. Each pass over them took ≈ 250 ms on
    the bench machine, a stall of every request in flight; afterwards one takes a few ms. Once
    per process (tests start the app many times)."""
    gc.freeze()


async def _await_quietly(task: asyncio.Task[None]) -> None:
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await task


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            redis_url, private_redis = await resolve_redis(settings)
            if private_redis is not None:
                stack.callback(private_redis.stop)
                keeper = asyncio.create_task(private_redis.keep_alive())
                stack.push_async_callback(_cancel, keeper)
            resources = await stack.enter_async_context(open_resources(settings, redis_url))
            if not settings.is_postgres:
                await migrate()
            app.state.resources = resources
            app.state.redis = resources.redis
            app.state.arq = resources.queue
            app.state.storage = resources.storage
            app.state.sms = resources.sms
            if settings.seed_demo:
                logins = await seed_if_empty(settings)
                if logins:
                    print(format_logins(logins), flush=True)
            if settings.run_worker_inline:
                warming = asyncio.create_task(warm_up_reader())  # not holding up the start
                stack.push_async_callback(_await_quietly, warming)
                # It outlives Redis restarts: logs, reconnects, sweeps (backend/worker.py).
                worker = inline_worker(resources)
                task = asyncio.create_task(worker.async_run())
                app.state.worker = worker

                async def stop_worker() -> None:
                    with contextlib.suppress(*REDIS_DOWN):  # Redis may be down at exit
                        await worker.close()
                    await _cancel(task)

                stack.push_async_callback(stop_worker)
            _freeze_startup_objects()
            yield

    app = Litestar(
        route_handlers=[
            health,
            ready,
            *ACCOUNT_ROUTES,
            *STAFF_ADMIN_ROUTES,
            *RECORD_ROUTES,
            *CAMPAIGN_WORK_ROUTES,
            *READ_RATE_ROUTES,
            *REVIEW_ROUTES,
            *CHANGE_REQUEST_ROUTES,
            *PROBLEM_ROUTES,
            *ROLL_ROUTES,
            *PROOF_ROUTES,
            *CONTROL_ROUTES,
            *PARENT_ROUTES,
            *PARENT_REQUEST_ROUTES,
            *MESSAGE_ROUTES,
            *PUSH_ROUTES,
            *NOTIFY_ROUTES,
            *SECOND_FACTOR_ROUTES,
            *SUPPORT_ROUTES,
            *EXPORT_ROUTES,
            *PAPER_RETURN_ROUTES,
            *PROGRESS_ROUTES,
            *TRANSFER_ROUTES,
            *CHANGE_RULE_ROUTES,
            *BULLETIN_ROUTES,
            *docs_assets(settings),
        ],
        lifespan=[lifespan],
        middleware=[
            response_headers_middleware,
            DefineMiddleware(BearerAuthentication, exclude=PUBLIC_PATHS),
            hostile_input_middleware,
        ],
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        after_exception=[audit_refusal],  # every 403 leaves an audit row
        openapi_config=openapi_config(settings),
        state=State({"settings": settings, "verifier": AccessTokenVerifier(settings)}),
        request_max_body_size=MAX_REQUEST_BYTES,
        debug=False,
    )
    if settings.openapi_enabled:
        finish_schema(app.openapi_schema, PUBLIC_PATHS)
    return app


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

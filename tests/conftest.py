"""Test setup: the engine is chosen by TEST_ENGINE (postgres, the default, or sqlite) before
anything imports the app; the schema is built once per run by the real migrations; every
test starts from empty tables and an empty Redis database."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlparse

ENGINE = os.environ.get("TEST_ENGINE", "postgres")
_VAR = Path(tempfile.mkdtemp(prefix="registry-test-"))
os.environ["VAR_DIR"] = str(_VAR)
if ENGINE == "postgres":
    os.environ["DATABASE_URL"] = os.environ.get(
        "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/registry_test"
    )
    if not (urlparse(os.environ["DATABASE_URL"]).path or "").endswith("_test"):
        raise SystemExit("refusing to run tests against a database whose name lacks _test")
elif ENGINE == "sqlite":
    os.environ.pop("DATABASE_URL", None)
else:
    raise SystemExit(f"TEST_ENGINE must be postgres or sqlite, not {ENGINE!r}")
os.environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
os.environ["SEED_DEMO"] = "false"
os.environ["RUN_WORKER_INLINE"] = "false"
# Staff sign in with the password alone in tests that are not about the second factor;
# tests/accounts/test_second_factor.py turns it on (`use_settings`).
os.environ["SECOND_FACTOR_REQUIRED"] = "false"
# Tests read a refusal's audit row right after the request: written inline here;
# tests/accounts/test_refusal_queue.py runs the deferred path and drains it.
os.environ["REFUSAL_AUDIT_DEFERRED"] = "false"
os.environ["JWT_KEYS"] = (
    "k2026:test-signing-key-2026-"
    + "0123456789abcdef" * 3
    + ",k2025:old-signing-key-2025-"
    + "abcdef0123456789" * 3
)
os.environ["JWT_ACTIVE_KID"] = "k2026"
# Tests hash many passwords: a lighter argon2id (still argon2id) keeps the suite quick.
os.environ["ARGON2_TIME_COST"] = "1"
os.environ["ARGON2_MEMORY_KIB"] = "1024"

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import pytest  # noqa: E402
from litestar import Litestar  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from backend.config import Settings, get_settings  # noqa: E402
from backend.db import engine, is_postgres  # noqa: E402
from backend.records import controls, open_campaigns  # noqa: E402


async def _recreate_postgres_database(url: str) -> None:
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = await asyncpg.connect(url.replace(parsed.path, "/postgres"))
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Litestar]:
    from backend.migrate import migrate

    if is_postgres():
        await _recreate_postgres_database(os.environ["DATABASE_URL"])
    await migrate()
    from app import create_app

    application = create_app(settings)
    # The lifespan's task group must be entered and left by one task: keep it in its own.
    started, stop = asyncio.Event(), asyncio.Event()

    async def run() -> None:
        async with application.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run())
    await asyncio.wait(
        [task, asyncio.create_task(started.wait())], return_when=asyncio.FIRST_COMPLETED
    )
    if task.done():
        task.result()
    yield application
    stop.set()
    await task


async def _empty_tables() -> None:
    from piccolo.querystring import QueryString
    from piccolo.table import sort_table_classes

    from backend.piccolo_app import APP_CONFIG

    db = engine()
    ordered = sort_table_classes(list(APP_CONFIG.table_classes))
    tables = [table._meta.tablename for table in reversed(ordered)]  # children first

    if is_postgres():
        await _truncate_postgres(tables)
    else:
        for table in tables:
            await db.run_querystring(QueryString(f"DELETE FROM {table}"))
        if await db.run_querystring(
            QueryString("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")
        ):
            await db.run_querystring(QueryString("DELETE FROM sqlite_sequence"))


async def _truncate_postgres(tables: list[str]) -> None:
    """On a connection of its own, never the app's pool: a transaction a test left open in
    a task (a job cancelled with the burst worker that ran it) can neither take the TRUNCATE
    into itself nor hold it for ever. A lock wait past 15 s ends those transactions, then the
    TRUNCATE runs again; an error fails the next test loudly instead of leaving rows."""
    sql = f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"
    connection = await asyncpg.connect(os.environ["DATABASE_URL"])
    try:
        await connection.execute("SET lock_timeout = '15s'")
        try:
            await connection.execute(sql)
        except asyncpg.LockNotAvailableError:
            await connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                "current_database() AND pid <> pg_backend_pid() AND state LIKE 'idle in%'"
            )
            await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture
async def redis(app: Litestar) -> Redis:
    return app.state.redis  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
async def clean(app: Litestar) -> None:
    await _empty_tables()
    await app.state.redis.flushdb()
    open_campaigns.forget()  # the campaigns it remembered were emptied with the tables
    controls.forget()  # so were the provinces' field controls


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c

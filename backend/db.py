"""The database engine: SQLite under var/ by default, PostgreSQL when DATABASE_URL says so.

Piccolo is the data layer everywhere. Two things here exist for speed, measured in
bench/http_auth.py: `fetch_row` sends a hand-written query straight to the driver (Piccolo
spends ≈170 µs building each query's SQL), and the PostgreSQL pool skips asyncpg's
per-release reset query (a second round trip per request) since this code never sets
session state, listens or takes session-level advisory locks.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.finder import engine_finder
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.querystring import QueryString

from backend.config import Settings


def make_engine(settings: Settings) -> Engine:  # type: ignore[type-arg]
    if settings.is_postgres:
        return PostgresEngine(config={"dsn": settings.database_url})
    if settings.database_url and not settings.database_url.startswith("sqlite"):
        raise ValueError("DATABASE_URL must be postgresql://… or sqlite:///path")
    path = settings.sqlite_path
    if settings.database_url:
        path = type(path)(settings.database_url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return SQLiteEngine(path=str(path), timeout=30)


def engine() -> Engine:  # type: ignore[type-arg]
    found = engine_finder()
    if found is None:
        raise RuntimeError("piccolo_conf.py defines no DB")
    return found


def is_postgres() -> bool:
    return isinstance(engine(), PostgresEngine)


async def _no_session_reset(connection: Any) -> None:
    """asyncpg has already rolled back any open transaction before calling this."""


async def open_pool(settings: Settings) -> None:
    db = engine()
    if isinstance(db, PostgresEngine):
        await db.start_connection_pool(
            min_size=2, max_size=settings.db_pool_size, reset=_no_session_reset
        )
    else:
        await db.run_querystring(QueryString("PRAGMA journal_mode=WAL"))


async def close_pool() -> None:
    db = engine()
    if isinstance(db, PostgresEngine) and db.pool is not None:
        await db.close_connection_pool()


@lru_cache(maxsize=256)
def _numbered(sql: str) -> str:
    counter = iter(range(1, 1000))
    return re.sub(r"\{\}", lambda _m: f"${next(counter)}", sql)


async def fetch_row(sql: str, *args: Any) -> dict[str, Any] | None:
    """One row of a hand-written query with `{}` placeholders, outside any transaction."""
    db = engine()
    if isinstance(db, PostgresEngine) and db.pool is not None:
        async with db.pool.acquire() as connection:
            record = await connection.fetchrow(_numbered(sql), *args)
        return dict(record) if record is not None else None
    rows = await db.run_querystring(QueryString(sql, *args))
    return dict(rows[0]) if rows else None


@asynccontextmanager
async def transaction() -> AsyncIterator[None]:
    """A write transaction. On SQLite it takes the write lock at once (BEGIN IMMEDIATE), so
    two writers queue instead of failing half-way."""
    db = engine()
    if isinstance(db, SQLiteEngine):
        async with db.transaction(transaction_type=TransactionType.immediate):
            yield
    else:
        async with db.transaction():
            yield

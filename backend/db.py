"""The database engine: SQLite under var/ by default, PostgreSQL when DATABASE_URL says so.

Piccolo is the data layer everywhere. Three things here exist for speed, measured in
bench/http_auth.py: `fetch_row` (and `fetch_rows`) sends a hand-written query straight to the
driver (Piccolo spends ≈170 µs building each query's SQL); the PostgreSQL pool skips
asyncpg's per-release reset query (a second round trip per request) since this code never
sets session state, listens or takes session-level advisory locks; and on PostgreSQL
`fetch_row` runs on a `ReadLane` of its own (see there) instead of borrowing from the pool.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

import asyncpg
import msgspec
from piccolo.engine.base import Engine
from piccolo.engine.finder import engine_finder
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.querystring import QueryString

from backend.config import Settings

log = logging.getLogger("registry.db")


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


class ReadLane:
    """Up to `size` autocommit connections, apart from Piccolo's pool, for `fetch_row` alone.

    Every authenticated request reads its principal through here, so two things matter:
    - fairness: waiters are served first come, first served (`asyncio.Semaphore` hands a
      freed slot straight to the oldest waiter). asyncpg's pool queue lets a newcomer take
      a just-released connection ahead of a woken waiter, which sends the loser to the back
      of the line: with 64 clients on 16 connections that alone put p99 near 100 ms;
    - cost: no pool bookkeeping, reset hook or `asyncio.shield` task per release (≈50 µs
      of CPU a request on the bench machine).
    Connections open on demand (none until the first read). A connection whose query did
    not finish cleanly (cancelled, broken socket) is dropped, never reused; one the server
    closed while idle is noticed and replaced.
    """

    def __init__(self, connect: Callable[[], Awaitable[Any]], size: int) -> None:
        self._connect = connect
        self._slots = asyncio.Semaphore(size)
        self._idle: list[Any] = []

    async def fetchrow(self, sql: str, args: tuple[Any, ...]) -> Any:
        return await self._query("fetchrow", sql, args)

    async def fetch(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        records: list[Any] = await self._query("fetch", sql, args)
        return records

    async def _query(self, method: str, sql: str, args: tuple[Any, ...]) -> Any:
        async with self._slots:
            while self._idle:
                connection = self._idle.pop()
                if connection.is_closed():
                    continue
                try:
                    return await self._run(connection, method, sql, args)
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                    if not connection.is_closed():
                        raise
                    break  # the server dropped it while idle: a read is safe to send again
            return await self._run(await self._connect(), method, sql, args)

    async def _run(self, connection: Any, method: str, sql: str, args: tuple[Any, ...]) -> Any:
        try:
            result = await getattr(connection, method)(sql, *args)
        except asyncpg.PostgresError:
            if not connection.is_closed():
                self._idle.append(connection)  # the server refused the query; the link is fine
            raise
        except BaseException:
            connection.terminate()  # cancelled mid-query or broken: never reuse it
            raise
        self._idle.append(connection)
        return result

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()


_lane: ReadLane | None = None


async def open_pool(settings: Settings) -> None:
    global _lane
    db = engine()
    if isinstance(db, PostgresEngine):
        await db.start_connection_pool(
            min_size=2, max_size=settings.db_pool_size, reset=_no_session_reset
        )
        config = dict(db.config)
        _lane = ReadLane(lambda: asyncpg.connect(**config), settings.db_pool_size)
    else:
        await db.run_querystring(QueryString("PRAGMA journal_mode=WAL"))


async def close_pool() -> None:
    global _lane
    if _lane is not None:
        lane, _lane = _lane, None
        await lane.close()
    db = engine()
    if isinstance(db, PostgresEngine) and db.pool is not None:
        await db.close_connection_pool()


@lru_cache(maxsize=256)
def _numbered(sql: str) -> str:
    counter = iter(range(1, 1000))
    return re.sub(r"\{\}", lambda _m: f"${next(counter)}", sql)


async def fetch_row(sql: str, *args: Any) -> dict[str, Any] | None:
    """One row of a hand-written query with `{}` placeholders, outside any transaction."""
    if _lane is not None:
        record = await _lane.fetchrow(_numbered(sql), args)
        return dict(record) if record is not None else None
    db = engine()
    rows = await db.run_querystring(QueryString(sql, *args))
    return dict(rows[0]) if rows else None


async def fetch_rows(sql: str, *args: Any) -> list[dict[str, Any]]:
    """Every row of a hand-written query with `{}` placeholders, outside any transaction
    (`fetch_row`'s lane on PostgreSQL). Write it in SQL both engines read alike."""
    if _lane is not None:
        return [dict(record) for record in await _lane.fetch(_numbered(sql), args)]
    rows = await engine().run_querystring(QueryString(sql, *args))
    return [dict(row) for row in rows]


async def fetch_records(sql: str, *args: Any) -> list[Mapping[str, Any]]:
    """`fetch_rows` for a hot read of many rows: on PostgreSQL the driver's records as they
    come (read by column name; copying a row of 40 columns into a dict costs ≈ 3–8 µs)."""
    if _lane is not None:
        return list(await _lane.fetch(_numbered(sql), args))
    return list(await fetch_rows(sql, *args))


def json_value(raw: Any) -> Any:
    """A JSON column's value: Piccolo hands JSON back as text, unless a driver decoded it.
    msgspec reads it in a third of `json.loads`'s time (a check's report is ≈ 4 KB on every
    poll of an upload); what msgspec refuses and Python reads (NaN, a number past float's
    range) goes to `json.loads`."""
    if not isinstance(raw, str | bytes):
        return raw
    try:
        return _decode_json(raw)
    except msgspec.DecodeError:
        return json.loads(raw)


_decode_json = msgspec.json.Decoder().decode


AfterCommit = Callable[[], Awaitable[None]]
# The steps waiting for the outermost `transaction()` of this task to commit; None outside one.
_after_commit: ContextVar[list[AfterCommit] | None] = ContextVar("after_commit", default=None)


def after_commit(step: AfterCommit) -> None:
    """Run `step` once the outermost `transaction()` around this call commits; never if it
    rolls back. Outside `transaction()` this raises: there is no commit to wait for."""
    steps = _after_commit.get()
    if steps is None:
        raise RuntimeError("after_commit() needs an open db.transaction()")
    steps.append(step)


@asynccontextmanager
async def _begin(db: Engine) -> AsyncIterator[None]:  # type: ignore[type-arg]
    if isinstance(db, SQLiteEngine):
        async with db.transaction(transaction_type=TransactionType.immediate):
            yield
    else:
        async with db.transaction():
            yield


@asynccontextmanager
async def transaction() -> AsyncIterator[None]:
    """A write transaction. On SQLite it takes the write lock at once (BEGIN IMMEDIATE), so
    two writers queue instead of failing half-way. Inside another one it joins it (as Piccolo
    does), and its `after_commit` steps wait for the outer one's commit.

    The steps run after the commit, in order; one that fails is logged and does not fail the
    caller, whose writes are committed (the outbox's sweeper retries what it left)."""
    db = engine()
    if _after_commit.get() is not None or db.current_transaction.get() is not None:
        async with _begin(db):
            yield
        return
    steps: list[AfterCommit] = []
    token = _after_commit.set(steps)
    try:
        async with _begin(db):
            yield
    finally:
        _after_commit.reset(token)
    for step in steps:
        try:
            await step()
        except Exception:
            log.exception("a step after a commit failed")

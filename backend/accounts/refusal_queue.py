"""Refusals audited without making the refused caller wait for the audit chain.

An out-of-scope read (`scope.get_scoped`) and a 403 (`backend/refusals.py`) each owe the audit
log a row. Appending to the log takes the chain's lock, reads the chain's end and computes its
HMAC inside a transaction: about 4 ms a refusal answered. Instead the refusal is written to
`pending_refusal` (one INSERT, in a context of its own so a transaction the request rolls back
does not take it along) and the worker's `drain_refusals` moves pending rows into the audit log
every few seconds, each with the moment it happened.

Why a table and not a Redis list or an asyncio task: a task dies with the process, and Redis
runs here without persistence (scripts/services.sh) — both lose refusals on a crash. The row
is committed before the 404 or 403 leaves; the drain writes the audit rows and deletes the
pending ones in one transaction (rows locked with SKIP LOCKED), so a refusal is audited
exactly once whoever crashes when.

`REFUSAL_AUDIT_DEFERRED=false` writes the audit row inline instead (the test suite, whose
tests read the row right after the request).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from piccolo.columns import BigSerial, Integer, Text, Timestamptz, Varchar
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

from backend.accounts import audit
from backend.accounts.audit import Actor, Entry
from backend.accounts.audit_seal import Sealer
from backend.config import get_settings
from backend.db import engine, is_postgres, transaction

log = logging.getLogger("registry.audit")

DRAIN_BATCH = 500


class PendingRefusal(Table, tablename="pending_refusal"):
    """A refusal the audit log has not taken in yet (`drain` moves it there)."""

    id = BigSerial(primary_key=True)
    at = Timestamptz()
    actor_id = Integer(null=True, default=None)
    actor_role = Varchar(length=20, null=True, default=None)
    client_addr = Varchar(length=64, null=True, default=None)
    request_id = Varchar(length=64, null=True, default=None)
    action = Varchar(length=40)
    entity = Varchar(length=40)
    entity_id = Varchar(length=64, null=True, default=None)
    after = Text(null=True, default=None)  # canonical JSON


def deferred() -> bool:
    return get_settings().refusal_audit_deferred


async def record_refusal(
    actor: Actor, action: str, entity: str, entity_id: object = None, after: Any = None
) -> None:
    """The refusal's audit row, now (inline) or through `pending_refusal` (deferred). Either
    way in a context of its own: never joined to, nor rolled back with, the request's
    transaction."""
    if deferred():
        write = _pend(actor, action, entity, entity_id, after)
    else:
        write = audit.record(actor, action, entity, entity_id, after=after)
    await asyncio.create_task(write, context=contextvars.Context())


async def _pend(actor: Actor, action: str, entity: str, entity_id: object, after: Any) -> None:
    await PendingRefusal.insert(
        PendingRefusal(
            at=datetime.now(UTC),
            actor_id=actor.account_id,
            actor_role=actor.role,
            client_addr=actor.client_addr,
            request_id=actor.request_id,
            action=action,
            entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            after=audit.canonical(Sealer.of().seal(after)),  # sealed like the audit row
        )
    )


_PEND_IF_EXISTS = (
    "INSERT INTO pending_refusal (at, actor_id, actor_role, client_addr, request_id, action, "
    "entity, entity_id) SELECT {}, {}, {}, {}, {}, {}, {}, {} WHERE ({})"
)


async def record_if_exists(
    actor: Actor, table: type[Table], where: Any, action: str, entity: str, entity_id: object
) -> None:
    """A read found nothing in scope: audit the refusal if the row exists outside it. Deferred,
    the existence check and the pending row are one statement run for every miss, so a row
    outside the scope and a row that does not exist cost the same (no timing tells them
    apart); inline, the check then the audit row inside the caller's transaction."""
    if not deferred():
        if await table.exists().where(where):
            await audit.record(actor, action, entity, entity_id)
        return
    exists = table.exists().where(where).querystrings[0]
    write = PendingRefusal.raw(
        _PEND_IF_EXISTS,
        datetime.now(UTC),
        actor.account_id,
        actor.role,
        actor.client_addr,
        actor.request_id,
        action,
        entity,
        None if entity_id is None else str(entity_id),
        exists,
    ).run()
    if not is_postgres() and engine().current_transaction.get() is not None:
        # SQLite has one writer: a second connection would wait on the caller's transaction
        # until it times out. The row joins that transaction (and goes if it rolls back).
        await write
        return
    await asyncio.create_task(write, context=contextvars.Context())


def _actor(row: Mapping[str, Any]) -> Actor:
    return Actor(row["actor_id"], row["actor_role"], row["client_addr"], row["request_id"])


async def drain(limit: int = DRAIN_BATCH) -> int:
    """Move up to `limit` pending refusals into the audit log (oldest first) and delete them,
    in one transaction. Returns how many moved."""
    async with transaction():
        if isinstance(engine(), PostgresEngine):
            rows: list[dict[str, Any]] = await PendingRefusal.raw(
                "SELECT * FROM pending_refusal ORDER BY id LIMIT {} FOR UPDATE SKIP LOCKED",
                limit,
            )
        else:  # SQLite: one writer at a time
            rows = await PendingRefusal.select().order_by(PendingRefusal.id).limit(limit)
        if not rows:
            return 0
        for row in rows:
            after = json.loads(row["after"]) if row["after"] else None
            entry = Entry(row["action"], row["entity"], row["entity_id"], None, after)
            await audit.record_many(_actor(row), [entry], at=_aware(row["at"]))
        await PendingRefusal.delete().where(PendingRefusal.id.is_in([r["id"] for r in rows]))
    log.debug("drained %s refusals into the audit log", len(rows))
    return len(rows)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

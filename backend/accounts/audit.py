"""The append-only, hash-chained audit log.

Each row's hash covers its content and the hash of the row before it in its chain, so
changing, deleting or inserting any row breaks every later link; `verify()` walks the
chains and names the first row that does not fit. Rows are spread over a few chains (by
actor) so concurrent writers rarely queue on the same chain lock.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from piccolo.engine.postgres import PostgresEngine

from backend.accounts.tables import AuditLog
from backend.db import engine, transaction

GENESIS = "0" * 64
CHAINS = 8  # changing it later is safe: every row keeps its chain number
_LOCK_NAMESPACE = 0x4155  # pg_advisory_xact_lock(namespace, chain)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting, from where: everything an audit row says about the request."""

    account_id: int | None = None
    role: str | None = None
    client_addr: str | None = None
    request_id: str | None = None

    @classmethod
    def system(cls, job: str) -> Actor:
        return cls(role="system", request_id=job)


def canonical(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def row_hash(row: dict[str, Any]) -> str:
    at: datetime = row["at"]
    material = [
        row["chain"],
        row["seq"],
        row["prev_hash"],
        at.astimezone(UTC).isoformat(timespec="microseconds"),
        row["actor_id"],
        row["actor_role"],
        row["client_addr"],
        row["request_id"],
        row["action"],
        row["entity"],
        row["entity_id"],
        row["before"],
        row["after"],
    ]
    return hashlib.sha256(canonical(material).encode()).hexdigest()  # type: ignore[union-attr]


def chain_of(actor: Actor) -> int:
    key = str(actor.account_id) if actor.account_id is not None else (actor.client_addr or "")
    return zlib.crc32(key.encode()) % CHAINS


@dataclass(frozen=True, slots=True)
class Entry:
    action: str
    entity: str
    entity_id: object = None
    before: Any = None
    after: Any = None


async def record(
    actor: Actor,
    action: str,
    entity: str,
    entity_id: object = None,
    *,
    before: Any = None,
    after: Any = None,
) -> None:
    """Append one row. Inside the caller's transaction when there is one (so the change and
    its audit row commit together), else in a transaction of its own."""
    await record_many(actor, [Entry(action, entity, entity_id, before, after)])


async def record_many(actor: Actor, entries: list[Entry], batch: int = 500) -> None:
    """Append rows for one actor: one chain lock, one look-up of the chain's end."""
    if not entries:
        return
    chain = chain_of(actor)
    async with transaction():
        if isinstance(engine(), PostgresEngine):
            await AuditLog.raw("SELECT pg_advisory_xact_lock({}, {})", _LOCK_NAMESPACE, chain)
        last = (
            await AuditLog.select(AuditLog.seq, AuditLog.hash)
            .where(AuditLog.chain == chain)
            .order_by(AuditLog.seq, ascending=False)
            .first()
        )
        seq, prev_hash = (last["seq"], last["hash"]) if last else (0, GENESIS)
        now = datetime.now(UTC)
        rows: list[dict[str, Any]] = []
        for entry in entries:
            seq += 1
            row: dict[str, Any] = {
                "chain": chain,
                "seq": seq,
                "prev_hash": prev_hash,
                "at": now,
                "actor_id": actor.account_id,
                "actor_role": actor.role,
                "client_addr": actor.client_addr,
                "request_id": actor.request_id,
                "action": entry.action,
                "entity": entry.entity,
                "entity_id": None if entry.entity_id is None else str(entry.entity_id),
                "before": canonical(entry.before),
                "after": canonical(entry.after),
            }
            row["hash"] = prev_hash = row_hash(row)
            rows.append(row)
        postgres = isinstance(engine(), PostgresEngine)
        for start in range(0, len(rows), batch):
            if postgres:
                await _insert_unnest(rows[start : start + batch])
            else:
                await AuditLog.insert(*(AuditLog(**row) for row in rows[start : start + batch]))


# The same rows as `AuditLog.insert(*rows)`, in the same order, as one statement with one
# array parameter per column: Piccolo builds SQL for every value of a multi-row insert, which
# made writing the audit rows about a third of a large import's time (bench/records.py).
_UNNEST_INSERT = (
    'INSERT INTO audit_log (chain, seq, prev_hash, hash, "at", actor_id, actor_role, '
    'client_addr, request_id, action, entity, entity_id, "before", "after") '
    "SELECT {}::smallint, t.seq, t.prev_hash, t.hash, {}::timestamptz, {}::integer, "
    "{}::varchar, {}::varchar, {}::varchar, t.action, t.entity, t.entity_id, t.b, t.a "
    "FROM unnest({}::integer[], {}::varchar[], {}::varchar[], {}::varchar[], {}::varchar[], "
    "{}::varchar[], {}::text[], {}::text[]) "
    "WITH ORDINALITY AS t(seq, prev_hash, hash, action, entity, entity_id, b, a, n) "
    "ORDER BY t.n"
)
_VARYING = ("seq", "prev_hash", "hash", "action", "entity", "entity_id", "before", "after")


async def _insert_unnest(rows: list[dict[str, Any]]) -> None:
    first = rows[0]  # chain, time and actor are the same for every row of one call
    await AuditLog.raw(
        _UNNEST_INSERT,
        first["chain"],
        first["at"],
        first["actor_id"],
        first["actor_role"],
        first["client_addr"],
        first["request_id"],
        *([row[c] for row in rows] for c in _VARYING),
    )


@dataclass(frozen=True, slots=True)
class VerifyResult:
    rows: int
    broken_id: int | None = None
    broken_chain: int | None = None
    broken_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_id is None


async def verify(batch: int = 5000) -> VerifyResult:
    """Walk every chain in order; report the first row (lowest id) that breaks its chain."""
    chains = [r["chain"] for r in await AuditLog.select(AuditLog.chain).distinct()]
    total = 0
    first_broken: VerifyResult | None = None
    for chain in sorted(chains):
        prev_hash, expected_seq, after_seq = GENESIS, 1, 0
        while True:
            rows = (
                await AuditLog.select()
                .where((AuditLog.chain == chain) & (AuditLog.seq > after_seq))
                .order_by(AuditLog.seq)
                .limit(batch)
            )
            if not rows:
                break
            for row in rows:
                total += 1
                reason = None
                if row["seq"] != expected_seq:
                    reason = f"sequence gap: expected {expected_seq}, found {row['seq']}"
                elif row["prev_hash"] != prev_hash:
                    reason = "link to the previous row is broken"
                elif row_hash(row) != row["hash"]:
                    reason = "row content does not match its hash"
                if reason and (first_broken is None or row["id"] < first_broken.broken_id):
                    first_broken = VerifyResult(0, row["id"], chain, row["seq"], reason)
                if reason:
                    break
                prev_hash, expected_seq = row["hash"], expected_seq + 1
            else:
                after_seq = rows[-1]["seq"]
                continue
            break
    if first_broken is not None:
        return VerifyResult(
            total,
            first_broken.broken_id,
            first_broken.broken_chain,
            first_broken.broken_seq,
            first_broken.reason,
        )
    return VerifyResult(total)

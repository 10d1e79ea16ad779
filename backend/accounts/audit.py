"""The append-only audit log: keyed hash chains, anchored outside the database.

Each row's `hash` is an HMAC-SHA256, under a key kept outside the database (`AUDIT_KEY`,
named per row by `key_id` so keys can rotate), of its content and the hash of the row before
it in its chain. Whoever can write to the database but does not hold the key cannot change,
insert or delete a row and recompute the rest: every later link breaks.

Deleting the newest rows of a chain breaks no link, so every few minutes
`audit_verify.anchor()` writes each chain's head (last seq, last hash), signed with the key,
to the object storage and to the log. `audit_verify.verify()` walks every chain with the key
and checks that each reaches at least the latest anchor's head; it names the first row that
does not fit, or the missing tail. What is written after the latest anchor can still be cut
unnoticed: the window is the anchoring interval (10 minutes, `backend/worker.py`).

No ID number, phone or address is stored in the clear: `before` and `after` go through
`audit_seal.Sealer.seal` here, the one place rows are written (keyed hash + ciphertext per
sensitive value; `rows_mentioning` finds a value's rows, `python -m backend audit reveal` opens
one row). The chain's HMAC covers the sealed text, so `verify` needs no seal key.

Rows are spread over a few chains (by actor) so concurrent writers rarely queue on the same
chain lock.
"""

from __future__ import annotations

import hmac
import json
import logging
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from piccolo.engine.postgres import PostgresEngine

from backend.accounts.audit_seal import Sealer
from backend.accounts.tables import AuditLog
from backend.config import Settings, get_settings
from backend.db import engine, transaction

log = logging.getLogger("registry.audit")

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


@dataclass(frozen=True, slots=True)
class Keys:
    """The audit keys by id; new rows and anchors are signed with the active one."""

    secrets: Mapping[str, str]
    active: str

    @classmethod
    def of(cls, settings: Settings) -> Keys:
        return cls(settings.audit_keys, settings.audit_active_kid)

    def mac(self, kid: str, text: str) -> str:
        # The one-shot form: OpenSSL computes it without an HMAC object per row.
        return hmac.digest(self.secrets[kid].encode(), text.encode(), "sha256").hex()


def keys_or_settings(keys: Keys | None) -> Keys:
    return keys if keys is not None else Keys.of(get_settings())


def _material(row: dict[str, Any]) -> str:
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
    return canonical(material)  # type: ignore[return-value]


def row_hash(row: dict[str, Any], keys: Keys) -> str:
    """The HMAC of a row under the key its `key_id` names (KeyError: a key we do not hold)."""
    return keys.mac(row["key_id"], f"{row['key_id']}|{_material(row)}")


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


async def record_many(
    actor: Actor,
    entries: list[Entry],
    batch: int = 500,
    keys: Keys | None = None,
    at: datetime | None = None,
    sealer: Sealer | None = None,
) -> None:
    """Append rows for one actor: one chain lock, one look-up of the chain's end. `at`: when
    it happened, if earlier than now (a refusal taken in from `refusal_queue`)."""
    if not entries:
        return
    keys = keys_or_settings(keys)
    sealer = sealer or Sealer.of()
    sealed = [(canonical(sealer.seal(e.before)), canonical(sealer.seal(e.after))) for e in entries]
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
        now = at or datetime.now(UTC)
        rows: list[dict[str, Any]] = []
        for entry, (before, after) in zip(entries, sealed, strict=True):
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
                "before": before,
                "after": after,
                "key_id": keys.active,
            }
            row["hash"] = prev_hash = row_hash(row, keys)
            rows.append(row)
        postgres = isinstance(engine(), PostgresEngine)
        for start in range(0, len(rows), batch):
            if postgres:
                await _insert_unnest(rows[start : start + batch])
            else:
                await AuditLog.insert(*(AuditLog(**row) for row in rows[start : start + batch]))


async def rows_mentioning(value: str, sealer: Sealer | None = None) -> list[int]:
    """The ids of the rows whose before or after holds `value` (an ID number, a phone, an
    address), found by its keyed hash under every seal key held, without opening any row."""
    digests = (sealer or Sealer.of()).digests(value)
    found: set[int] = set()
    for digest in digests:
        # LIKE narrows (`_` is a wildcard there, so a candidate is checked again below).
        pattern = f"%{digest}%"
        rows = await AuditLog.select(AuditLog.id, AuditLog.before, AuditLog.after).where(
            AuditLog.before.like(pattern) | AuditLog.after.like(pattern)
        )
        found.update(r["id"] for r in rows if digest in (r["before"] or "") + (r["after"] or ""))
    return sorted(found)


# The same rows as `AuditLog.insert(*rows)`, in the same order, as one statement with one
# array parameter per column: Piccolo builds SQL for every value of a multi-row insert, which
# made writing the audit rows about a third of a large import's time (bench/records.py).
_UNNEST_INSERT = (
    'INSERT INTO audit_log (chain, seq, prev_hash, hash, "at", actor_id, actor_role, '
    'client_addr, request_id, key_id, action, entity, entity_id, "before", "after") '
    "SELECT {}::smallint, t.seq, t.prev_hash, t.hash, {}::timestamptz, {}::integer, "
    "{}::varchar, {}::varchar, {}::varchar, {}::varchar, "
    "t.action, t.entity, t.entity_id, t.b, t.a "
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
        first["key_id"],
        *([row[c] for row in rows] for c in _VARYING),
    )

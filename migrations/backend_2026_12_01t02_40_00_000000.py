"""Re-chain the existing audit rows under the audit key (HMAC-SHA256), and index (chain, seq).

Before this, each row's hash was a plain SHA-256, which anyone with write access to the
database could recompute. This migration, in the migration's transaction and with writers
locked out (PostgreSQL):

1. walks every chain with the old SHA-256 rules and notes the first row, if any, where the
   old chain was already broken;
2. rewrites every row's `prev_hash`/`hash` as the HMAC chain under the active `AUDIT_KEY`
   (`key_id` set), keeping every row's content, order and seq;
3. appends one `audit_rekeyed` row to each chain, itself chained, that says how many rows
   were re-keyed and whether the old chain verified (and where it broke if not), so the
   re-keying is itself in the log and a break found before it is not laundered away.

Stop the API and workers of the previous release while it runs: rows they append with the
old rules afterwards would not verify. Empty tables (new installations) are untouched.

The row format and the HMAC are frozen copies of `backend/accounts/audit.py` as of this
migration, so later changes there cannot change what this migration does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import (
    BigSerial,
    Integer,
    SmallInt,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.finder import engine_finder
from piccolo.table import Table

ID = "2026-12-01T02:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "re-chain existing audit rows under the audit key; index audit_log (chain, seq)"

GENESIS = "0" * 64


class _AuditLog(Table, tablename="audit_log"):
    id = BigSerial(primary_key=True)
    chain = SmallInt()
    seq = Integer()
    prev_hash = Varchar(length=64)
    hash = Varchar(length=64)
    at = Timestamptz()
    actor_id = Integer(null=True, default=None)
    actor_role = Varchar(length=20, null=True, default=None)
    client_addr = Varchar(length=64, null=True, default=None)
    request_id = Varchar(length=64, null=True, default=None)
    action = Varchar(length=40)
    entity = Varchar(length=40)
    entity_id = Varchar(length=64, null=True, default=None)
    before = Text(null=True, default=None)
    after = Text(null=True, default=None)
    key_id = Varchar(length=16, null=True, default=None)


def _canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def _material(row: dict[str, Any]) -> str:
    at: datetime = row["at"]
    return _canonical(
        [
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
    )


def _legacy(row: dict[str, Any]) -> str:
    return hashlib.sha256(_material(row).encode()).hexdigest()


def _keyed(row: dict[str, Any], kid: str, secret: str) -> str:
    text = f"{kid}|{_material(row)}"
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


async def _rechain() -> None:
    from backend.config import get_settings

    settings = get_settings()
    kid, secret = settings.audit_active_kid, settings.audit_keys[settings.audit_active_kid]
    postgres = isinstance(engine_finder(), PostgresEngine)
    if postgres:
        # Writers of the previous release queue (or time out) instead of forking a chain.
        await _AuditLog.raw("LOCK TABLE audit_log IN EXCLUSIVE MODE")
    await _AuditLog.raw("CREATE INDEX IF NOT EXISTS audit_log_chain_seq ON audit_log (chain, seq)")
    chains = sorted(r["chain"] for r in await _AuditLog.select(_AuditLog.chain).distinct())
    now = datetime.now(UTC)
    for chain in chains:
        rows = (
            await _AuditLog.select()
            .where(_AuditLog.chain == chain)
            .order_by(_AuditLog.seq)
            .order_by(_AuditLog.id)
        )
        legacy_prev, legacy_seq, broken_at = GENESIS, 0, None
        prev = GENESIS
        updates: list[tuple[int, str, str]] = []
        for row in rows:
            if broken_at is None and (
                row["seq"] != legacy_seq + 1
                or row["prev_hash"] != legacy_prev
                or _legacy(row) != row["hash"]
            ):
                broken_at = row["id"]
            legacy_prev, legacy_seq = row["hash"], row["seq"]
            row["prev_hash"] = prev
            prev = _keyed(row, kid, secret)
            updates.append((row["id"], row["prev_hash"], prev))
        if postgres:
            for start in range(0, len(updates), 5000):
                part = updates[start : start + 5000]
                await _AuditLog.raw(
                    "UPDATE audit_log SET prev_hash = t.p, hash = t.h, key_id = {} "
                    "FROM unnest({}::bigint[], {}::varchar[], {}::varchar[]) AS t(id, p, h) "
                    "WHERE audit_log.id = t.id",
                    kid,
                    [u[0] for u in part],
                    [u[1] for u in part],
                    [u[2] for u in part],
                )
        else:
            for row_id, prev_hash, digest in updates:
                await _AuditLog.update(
                    {_AuditLog.prev_hash: prev_hash, _AuditLog.hash: digest, _AuditLog.key_id: kid}
                ).where(_AuditLog.id == row_id)
        marker: dict[str, Any] = {
            "chain": chain,
            "seq": legacy_seq + 1,
            "prev_hash": prev,
            "at": now,
            "actor_id": None,
            "actor_role": "system",
            "client_addr": None,
            "request_id": "migration-" + ID,
            "action": "audit_rekeyed",
            "entity": "audit_log",
            "entity_id": None,
            "before": _canonical({"hash": "sha256", "legacy_broken_at_id": broken_at}),
            "after": _canonical({"hash": "hmac-sha256", "key_id": kid, "rows": len(updates)}),
            "key_id": kid,
        }
        marker["hash"] = _keyed(marker, kid, secret)
        await _AuditLog.insert(_AuditLog(**marker))
        verdict = "verified" if broken_at is None else f"BROKEN from row id={broken_at}"
        print(f"\n    audit chain {chain}: {len(updates)} rows re-keyed; old chain {verdict}")


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="backend", description=DESCRIPTION)
    manager.add_raw(_rechain)
    return manager

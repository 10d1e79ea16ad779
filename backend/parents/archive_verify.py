"""`python -m backend archive verify`: every archived object checked against what was
recorded when it moved (`parents.archive`). The audit row's hash is the one to trust: the audit
chain is keyed and anchored (`python -m backend audit verify`), the ledger is a plain table."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from backend.accounts.tables import AuditLog
from backend.parents.archive import table_of
from backend.parents.archive_tables import ArchivedKind, ArchivedObject
from backend.storage import ObjectMissing, Storage

log = logging.getLogger("registry.archive")


@dataclass
class Verified:
    checked: int = 0
    bad: list[str] = field(default_factory=list)  # "upload:12 …", what does not agree


async def verify_archive(storage: Storage, batch: int = 1000) -> Verified:
    """Every archived object against its record: the row still names the archive key, the
    object there hashes to the ledger's SHA-256, and so does the audit row written when it
    moved (the audit chain itself is checked by `python -m backend audit verify`)."""
    result = Verified()
    after = 0
    while True:
        rows = (
            await ArchivedObject.select()
            .where(ArchivedObject.id > after)
            .order_by(ArchivedObject.id)
            .limit(batch)
        )
        for row in rows:
            result.checked += 1
            problem = await _disagreement(storage, row)
            if problem:
                result.bad.append(f"{row['object_ref']} {problem}")
                log.error("archive verify: %s %s", row["object_ref"], problem)
        if len(rows) < batch:
            return result
        after = int(rows[-1]["id"])


async def _disagreement(storage: Storage, row: Mapping[str, Any]) -> str | None:
    kind = ArchivedKind(row["kind"])
    named = (
        await table_of(kind)
        .select(table_of(kind).storage_key)
        .where(table_of(kind).id == row["object_id"])
        .first()
    )
    if named is None or named["storage_key"] != row["archive_key"]:
        return "row no longer names its archive key"
    entries = await AuditLog.select(AuditLog.after).where(
        (AuditLog.action == "archive")
        & (AuditLog.entity == kind.value)
        & (AuditLog.entity_id == str(row["object_id"]))
    )
    hashes = {json.loads(entry["after"] or "{}").get("sha256") for entry in entries}
    if hashes != {row["sha256"]}:
        return "ledger and audit trail disagree on its hash"
    try:
        stored = await storage.sha256(row["archive_key"])
    except ObjectMissing:
        return "missing from the archive"
    if stored != row["sha256"]:
        return "bytes in the archive differ from the hash recorded when it moved"
    return None

"""The append-only audit log: keyed hash chains, anchored outside the database.

Each row's `hash` is an HMAC-SHA256, under a key kept outside the database (`AUDIT_KEY`,
named per row by `key_id` so keys can rotate), of its content and the hash of the row before
it in its chain. Whoever can write to the database but does not hold the key cannot change,
insert or delete a row and recompute the rest: every later link breaks.

Deleting the newest rows of a chain breaks no link, so every few minutes `anchor()` writes
each chain's head (last seq, last hash), signed with the key, to the object storage and to
the log. `verify()` walks every chain with the key and checks that each reaches at least the
latest anchor's head; it names the first row that does not fit, or the missing tail. What
is written after the latest anchor can still be cut unnoticed: the window is the anchoring
interval (10 minutes, `backend/worker.py`).

Rows are spread over a few chains (by actor) so concurrent writers rarely queue on the same
chain lock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from piccolo.engine.postgres import PostgresEngine

from backend.accounts.tables import AuditLog
from backend.config import Settings, get_settings
from backend.db import engine, transaction
from backend.storage import Storage

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
        return hmac.new(self.secrets[kid].encode(), text.encode(), hashlib.sha256).hexdigest()


def _keys(keys: Keys | None) -> Keys:
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


def legacy_row_hash(row: dict[str, Any]) -> str:
    """The unkeyed SHA-256 the log used before keys (what the keying migration checked)."""
    return hashlib.sha256(_material(row).encode()).hexdigest()


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
    actor: Actor, entries: list[Entry], batch: int = 500, keys: Keys | None = None
) -> None:
    """Append rows for one actor: one chain lock, one look-up of the chain's end."""
    if not entries:
        return
    keys = _keys(keys)
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


# --- verifying and anchoring -----------------------------------------------------------

ANCHOR_LATEST = "audit-anchors/latest.json"


def _anchor_history_key(at: datetime) -> str:
    return f"audit-anchors/{at.astimezone(UTC):%Y/%m/%d/%H%M%S.%f}.json"


class AnchorError(Exception):
    """The latest anchor cannot be trusted (bad signature, unknown key) or cannot be read."""


@dataclass(frozen=True, slots=True)
class Anchor:
    """Every chain's head (last seq, its hash) at one moment, signed with an audit key."""

    at: datetime
    kid: str
    heads: dict[int, tuple[int, str]]
    mac: str = ""

    def body(self) -> str:
        heads = {str(chain): [seq, digest] for chain, (seq, digest) in sorted(self.heads.items())}
        value = {"v": 1, "at": self.at.isoformat(), "kid": self.kid, "heads": heads}
        return canonical(value)  # type: ignore[return-value]

    def signed(self, keys: Keys) -> Anchor:
        at = self.at.astimezone(UTC)
        unsigned = Anchor(at, keys.active, self.heads)
        return Anchor(at, keys.active, self.heads, keys.mac(keys.active, unsigned.body()))

    def to_json(self) -> bytes:
        return json.dumps({**json.loads(self.body()), "mac": self.mac}, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, keys: Keys) -> Anchor:
        try:
            raw = json.loads(data)
            heads = {int(c): (int(s), str(h)) for c, (s, h) in raw["heads"].items()}
            anchor = cls(datetime.fromisoformat(raw["at"]), str(raw["kid"]), heads, raw["mac"])
        except (ValueError, KeyError, TypeError) as error:
            raise AnchorError(f"the latest anchor is unreadable: {error!r}") from error
        if anchor.kid not in keys.secrets:
            raise AnchorError(f"the latest anchor is signed with key id {anchor.kid!r}, not held")
        if not hmac.compare_digest(keys.mac(anchor.kid, anchor.body()), str(anchor.mac)):
            raise AnchorError("the latest anchor's signature does not match: it was altered")
        return anchor


def _absent(error: Exception) -> bool:
    if isinstance(error, FileNotFoundError):
        return True
    code = getattr(error, "response", {}).get("Error", {}).get("Code")  # botocore ClientError
    return code in {"NoSuchKey", "404", "NotFound"}


async def latest_anchor(storage: Storage, keys: Keys | None = None) -> Anchor | None:
    """The latest anchor, checked against the key; None if none was ever written."""
    try:
        data = await storage.get(ANCHOR_LATEST)
    except Exception as error:
        if _absent(error):
            return None
        raise AnchorError(f"the latest anchor cannot be read: {error!r}") from error
    return Anchor.from_json(data, _keys(keys))


async def heads() -> dict[int, tuple[int, str]]:
    """Each chain's last (seq, hash), as the database holds it now."""
    ends = await AuditLog.raw("SELECT chain, MAX(seq) AS seq FROM audit_log GROUP BY chain")
    found: dict[int, tuple[int, str]] = {}
    for end in ends:
        row = await _row_at(end["chain"], end["seq"])
        if row is not None:
            found[int(end["chain"])] = (int(end["seq"]), str(row["hash"]))
    return found


async def _row_at(chain: int, seq: int) -> dict[str, Any] | None:
    row = (
        await AuditLog.select(AuditLog.id, AuditLog.hash)
        .where((AuditLog.chain == chain) & (AuditLog.seq == seq))
        .order_by(AuditLog.id)
        .first()
    )
    return row


@dataclass(frozen=True, slots=True)
class VerifyResult:
    rows: int
    broken_id: int | None = None
    broken_chain: int | None = None
    broken_seq: int | None = None
    reason: str | None = None
    anchor: Anchor | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass(slots=True)
class _Walk:
    rows: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS
    broken: VerifyResult | None = None
    hashes_at: dict[int, tuple[int, str]] = field(default_factory=dict)  # seq → (id, hash)


async def _walk(
    chain: int,
    keys: Keys,
    after_seq: int = 0,
    prev_hash: str = GENESIS,
    watch: int | None = None,
    batch: int = 5000,
) -> _Walk:
    """Check the rows of `chain` after `after_seq` in order, the first linking to
    `prev_hash`; stop at the first that does not fit. Remember the row at seq `watch`."""
    walk = _Walk(last_seq=after_seq, last_hash=prev_hash)
    while True:
        rows = (
            await AuditLog.select()
            .where((AuditLog.chain == chain) & (AuditLog.seq > walk.last_seq))
            .order_by(AuditLog.seq)
            .order_by(AuditLog.id)
            .limit(batch)
        )
        for row in rows:
            walk.rows += 1
            reason = None
            if row["seq"] != walk.last_seq + 1:
                reason = f"sequence gap: expected {walk.last_seq + 1}, found {row['seq']}"
            elif row["prev_hash"] != walk.last_hash:
                reason = "link to the previous row is broken"
            elif row["key_id"] not in keys.secrets:
                reason = f"row is signed with key id {row['key_id']!r}, which is not held"
            elif not hmac.compare_digest(row_hash(row, keys), row["hash"]):
                reason = "row content does not match its keyed hash"
            if reason:
                walk.broken = VerifyResult(0, row["id"], chain, row["seq"], reason)
                return walk
            if row["seq"] == watch:
                walk.hashes_at[row["seq"]] = (row["id"], row["hash"])
            walk.last_seq, walk.last_hash = row["seq"], row["hash"]
        if len(rows) < batch:
            return walk


def _against_anchor(chain: int, walk: _Walk, anchor: Anchor) -> VerifyResult | None:
    """Does an intact chain reach the anchor's head for it?"""
    if chain not in anchor.heads:
        return None
    seq, digest = anchor.heads[chain]
    when = anchor.at.isoformat(timespec="seconds")
    if walk.last_seq < seq:
        return VerifyResult(
            0,
            None,
            chain,
            walk.last_seq + 1,
            f"missing tail: chain {chain} ends at seq {walk.last_seq}, but the anchor of "
            f"{when} recorded seq {seq}: rows {walk.last_seq + 1}..{seq} were removed",
        )
    row_id, found = walk.hashes_at.get(seq, (None, ""))
    if not hmac.compare_digest(found, digest):
        return VerifyResult(
            0,
            row_id,
            chain,
            seq,
            f"row differs from the anchor of {when}: the chain was rewritten or cut and "
            "written again from here",
        )
    return None


async def verify(
    storage: Storage | None = None, keys: Keys | None = None, batch: int = 5000
) -> VerifyResult:
    """Walk every chain in order with the key and, given the storage, check that each reaches
    the latest anchor. Report the first row (lowest id) that breaks its chain, else the
    first chain that falls short of the anchor."""
    keys = _keys(keys)
    anchor = await latest_anchor(storage, keys) if storage is not None else None
    chains = {r["chain"] for r in await AuditLog.select(AuditLog.chain).distinct()}
    chains |= set(anchor.heads if anchor else ())
    total = 0
    broken: list[VerifyResult] = []
    short: list[VerifyResult] = []
    for chain in sorted(chains):
        watch = anchor.heads[chain][0] if anchor and chain in anchor.heads else None
        walk = await _walk(chain, keys, watch=watch, batch=batch)
        total += walk.rows
        if walk.broken is not None:
            broken.append(walk.broken)
        elif anchor is not None and (problem := _against_anchor(chain, walk, anchor)):
            short.append(problem)
    if broken:
        first = min(broken, key=lambda b: b.broken_id or 0)
    elif short:
        first = short[0]
    else:
        return VerifyResult(total, anchor=anchor)
    return VerifyResult(
        total, first.broken_id, first.broken_chain, first.broken_seq, first.reason, anchor
    )


async def anchor(storage: Storage, keys: Keys | None = None) -> Anchor:
    """Sign every chain's head and write it to the storage (history and `latest`) and the log.

    Only heads that extend the previous anchor with rows that verify are ever signed, so a
    chain cut or rewritten since then is never blessed by a newer anchor: AnchorError."""
    keys = _keys(keys)
    previous = await latest_anchor(storage, keys)
    now_heads = await heads()
    before = previous.heads if previous is not None else {}
    for chain in sorted(set(now_heads) | set(before)):
        seq, digest = before.get(chain, (0, GENESIS))  # a new chain is walked from its start
        if seq:
            row = await _row_at(chain, seq)
            if row is None or not hmac.compare_digest(str(row["hash"]), digest):
                when = previous.at.isoformat(timespec="seconds") if previous else "-"
                raise AnchorError(
                    f"chain {chain} no longer holds seq {seq} as anchored at {when}: not anchoring"
                )
        walk = await _walk(chain, keys, seq, digest)
        if walk.broken is not None:
            raise AnchorError(
                f"row id={walk.broken.broken_id} (chain {chain}, seq "
                f"{walk.broken.broken_seq}): {walk.broken.reason}: not anchoring"
            )
    signed = Anchor(datetime.now(UTC), keys.active, now_heads).signed(keys)
    data = signed.to_json()
    await storage.put(_anchor_history_key(signed.at), data, "application/json")
    await storage.put(ANCHOR_LATEST, data, "application/json")
    log.info("audit anchor %s", data.decode())
    return signed


async def anchor_job(storage: Storage, keys: Keys) -> int:
    """The worker's schedule: anchor, or say loudly in the log why not. The chains anchored."""
    try:
        signed = await anchor(storage, keys)
    except AnchorError as error:
        log.error("audit log not anchored: %s", error)
        return 0
    return len(signed.heads)

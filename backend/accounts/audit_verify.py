"""Proving the audit log intact: `verify()` walks every chain with the audit key and checks
that each reaches the latest anchor; `anchor()` signs every chain's head into the object
storage and the log (see `backend.accounts.audit` for the chain itself).

An anchor is `{"v", "at", "kid", "heads": {chain: [seq, hash]}, "mac"}`, the mac an HMAC of
the rest under the key `kid` names, stored as `audit-anchors/latest.json` and a dated copy.
`anchor()` only signs heads that extend the previous anchor with rows that verify, so a
chain cut or rewritten since then is never blessed by a newer anchor.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backend.accounts.audit import GENESIS, Keys, canonical, keys_or_settings, row_hash
from backend.accounts.tables import AuditLog
from backend.storage import Storage

log = logging.getLogger("registry.audit")

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
    response = getattr(error, "response", None)  # botocore's ClientError
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code in {"NoSuchKey", "404", "NotFound"}


async def latest_anchor(storage: Storage, keys: Keys | None = None) -> Anchor | None:
    """The latest anchor, checked against the key; None if none was ever written."""
    try:
        data = await storage.get(ANCHOR_LATEST)
    except Exception as error:
        if _absent(error):
            return None
        raise AnchorError(f"the latest anchor cannot be read: {error!r}") from error
    return Anchor.from_json(data, keys_or_settings(keys))


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
            elif row["key_id"] is None:
                reason = "row is not keyed (written by code older than the audit key)"
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
    keys = keys_or_settings(keys)
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
    keys = keys_or_settings(keys)
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

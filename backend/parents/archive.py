"""The archive, not deletion: the photographed forms are the record's electronic archive
(notice 001: 作为电子档案存档), kept for the record's life. Once a campaign has settled its
photos, and the evidence photos of its time, move from their hot keys to the archive prefix
(on S3: into the archive's storage class) and stay readable through the same endpoints.

**Settled.** A campaign settles `archive_after_days` (30) days after its end (`ends_at`,
which closing sets to the moment of closing). An object of a settled campaign moves unless its
student still has a change request pending (`in_review`, `returned`) or a problem-record
action awaiting review (`in_review`, `sent_back`): those wait for a later run. Objects:

- an upload (a photographed form) belongs to its own campaign;
- an evidence photo (a change request's, a problem action's, a student's proof) belongs to
  every campaign covering its region that ended after it was made: it moves when one of them
  has settled.

**One object** (`archive_one`) moves in four steps, each safe to repeat:

1. read the hot bytes and hash them (sha256); an evidence photo's size must match the one
   stored with it;
2. copy them to `archive_prefix + hot key` (S3: a server-side copy into the storage class)
   and check the copy's sha256 against the bytes read;
3. in one transaction: point the row at the archive key (only if it still names the hot
   key), write the ledger row (`archived_object`) and the audit row with the hash;
4. remove the hot key and mark the ledger row.

A run stopped anywhere leaves either the hot key named and a spare copy at the archive key
(step 2 again overwrites it: one archive copy), or the archive key named and the hot key
still there (the next run removes it, from the ledger): no object is lost or kept twice.
Reads never miss: the row names a key that holds the object, and a reader who read the row
just before step 3 finds it under the archive prefix (`storage.read_current`).

Nothing here, or anywhere else, deletes a photo or an evidence object on a schedule: the
one removal is of a hot key whose bytes are verified in the archive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from piccolo.columns import Column

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.scope_rules import region_prefix
from backend.config import Settings
from backend.db import transaction
from backend.parents.archive_tables import ArchivedKind, ArchivedObject, ref_of
from backend.parents.tables import Upload
from backend.records.problem_tables import ActionState, ProblemAction
from backend.records.review_tables import ChangeRequest, Evidence, RequestState
from backend.records.tables import Campaign
from backend.storage import ObjectMissing, Storage, sha256_hex

log = logging.getLogger("registry.archive")

# What keeps a student's objects hot: something of the record still being decided.
PENDING_REQUEST = (RequestState.in_review.value, RequestState.returned.value)
PENDING_ACTION = (ActionState.in_review.value, ActionState.sent_back.value)
KINDS = (ArchivedKind.upload, ArchivedKind.evidence)  # the order a run takes them in


@dataclass(frozen=True, slots=True)
class Settled:
    """A settled campaign: its id, region and end."""

    id: int
    region_code: str
    ends_at: datetime

    def covers(self, region_code: str, made_at: datetime) -> bool:
        return region_code.startswith(region_prefix(self.region_code)) and made_at < self.ends_at


async def settled_campaigns(settings: Settings, now: datetime) -> list[Settled]:
    """Campaigns that ended `archive_after_days` or more ago (closed ones included)."""
    cutoff = now - timedelta(days=settings.archive_after_days)
    rows = (
        await Campaign.select(Campaign.id, Campaign.region_code, Campaign.ends_at)
        .where(Campaign.ends_at <= cutoff)
        .order_by(Campaign.id)
    )
    return [Settled(row["id"], row["region_code"], row["ends_at"]) for row in rows]


def _busy_students() -> tuple[Any, Any]:
    return (
        ChangeRequest.select(ChangeRequest.student).where(
            ChangeRequest.state.is_in(list(PENDING_REQUEST))
        ),
        ProblemAction.select(ProblemAction.student).where(
            ProblemAction.state.is_in(list(PENDING_ACTION))
        ),
    )


def _region_in(column: Column, region_code: str) -> Any:
    prefix = region_prefix(region_code)
    return (column >= prefix.ljust(6, "0")) & (column <= prefix.ljust(6, "9"))


def table_of(kind: ArchivedKind) -> Any:
    """`Upload` or `Evidence` (typed Any: mypy cannot see columns through `type[Table]`)."""
    return Upload if kind is ArchivedKind.upload else Evidence


def _settled_where(kind: ArchivedKind, settled: Sequence[Settled]) -> Any:
    """The rows of `kind` whose campaign has settled (student and key not yet looked at)."""
    if kind is ArchivedKind.upload:
        return Upload.campaign.is_in([c.id for c in settled])
    where: Any = None
    for campaign in settled:
        one = _region_in(Evidence.region_code, campaign.region_code) & (
            Evidence.created_at < campaign.ends_at
        )
        where = one if where is None else where | one
    return where


async def candidates(
    kind: ArchivedKind,
    settled: Sequence[Settled],
    prefix: str,
    after_id: int,
    limit: int,
) -> list[dict[str, Any]]:
    """The next `limit` objects of `kind` to archive, by id after `after_id`."""
    if not settled:
        return []
    table = table_of(kind)
    columns: list[Any] = [table.id, table.storage_key, table.region_code, table.created_at]
    columns.append(Upload.campaign if kind is ArchivedKind.upload else Evidence.size_bytes)
    rows: list[dict[str, Any]] = (
        await table.select(*columns)
        .where(_where(kind, settled, prefix, after_id))
        .order_by(table.id)
        .limit(limit)
    )
    return rows


def _where(kind: ArchivedKind, settled: Sequence[Settled], prefix: str, after_id: int) -> Any:
    table = table_of(kind)
    requests, actions = _busy_students()
    return (
        _settled_where(kind, settled)
        & (table.id > after_id)
        & table.storage_key.not_like(prefix + "%")
        & table.student.not_in(requests)
        & table.student.not_in(actions)
    )


def _campaign_of(
    kind: ArchivedKind, row: Mapping[str, Any], settled: Sequence[Settled]
) -> int | None:
    """The settled campaign that lets the object go (None: none, after all)."""
    if kind is ArchivedKind.upload:
        return int(row["campaign"])
    made_at: datetime = row["created_at"]
    if made_at.tzinfo is None:  # SQLite answers naive UTC
        made_at = made_at.replace(tzinfo=UTC)
    return next((c.id for c in settled if c.covers(row["region_code"], made_at)), None)


@dataclass
class Outcome:
    """What one chunk (or one object) did."""

    archived: int = 0
    skipped: int = 0  # moved meanwhile by another run, or already in the archive
    failed: list[str] = field(default_factory=list)  # "upload:12 missing" …

    def add(self, other: Outcome) -> None:
        self.archived += other.archived
        self.skipped += other.skipped
        self.failed.extend(other.failed)


async def archive_one(
    storage: Storage,
    settings: Settings,
    actor: Actor,
    kind: ArchivedKind,
    row: Mapping[str, Any],
    campaign_id: int,
) -> Outcome:
    table = table_of(kind)
    object_id, hot = int(row["id"]), str(row["storage_key"])
    ref = ref_of(kind, object_id)
    if hot.startswith(storage.archive_prefix):
        return Outcome(skipped=1)
    try:
        data = await storage.get(hot)
    except ObjectMissing:
        now_named = await table.select(table.storage_key).where(table.id == object_id).first()
        if now_named is not None and now_named["storage_key"] != hot:
            return Outcome(skipped=1)  # another run moved it a moment ago
        log.error("archive: %s names %s, which is missing; left as it is", ref, hot)
        return Outcome(failed=[f"{ref} missing"])
    digest = await asyncio.to_thread(sha256_hex, data)  # megabytes: not on the loop
    if kind is ArchivedKind.evidence and int(row["size_bytes"]) != len(data):
        log.error("archive: %s has %s bytes, its row says %s", ref, len(data), row["size_bytes"])
        return Outcome(failed=[f"{ref} size differs"])
    target = await storage.copy_to_archive(hot, settings.archive_storage_class)
    copied = await storage.sha256(target)
    if copied != digest:
        log.error("archive: the copy of %s at %s does not match its bytes", ref, target)
        return Outcome(failed=[f"{ref} copy differs"])
    storage_class = settings.archive_storage_class if settings.storage == "s3" else ""
    now = datetime.now(UTC)
    async with transaction():
        moved = (
            await table.update({table.storage_key: target})
            .where((table.id == object_id) & (table.storage_key == hot))
            .returning(table.id)
        )
        if not moved:
            return Outcome(skipped=1)
        await ArchivedObject.insert(
            ArchivedObject(
                object_ref=ref,
                kind=kind.value,
                object_id=object_id,
                campaign=campaign_id,
                hot_key=hot,
                archive_key=target,
                sha256=digest,
                size_bytes=len(data),
                storage_class=storage_class,
                archived_at=now,
            )
        )
        await audit.record(
            actor,
            "archive",
            kind.value,
            object_id,
            before={"storage_key": hot},
            after={
                "storage_key": target,
                "sha256": digest,
                "size_bytes": len(data),
                "storage_class": storage_class,
                "campaign": campaign_id,
            },
        )
    await _remove_hot(storage, ref, hot)
    return Outcome(archived=1)


async def _remove_hot(storage: Storage, ref: str, hot: str) -> None:
    """Step 4: the hot copy goes only once the row names the verified archive copy."""
    await storage.delete(hot)
    await ArchivedObject.update({ArchivedObject.hot_removed_at: datetime.now(UTC)}).where(
        ArchivedObject.object_ref == ref
    )


async def finish_removals(storage: Storage, limit: int = 1000) -> int:
    """Hot copies a stopped run left behind (step 3 done, step 4 not): removed now, after
    checking the archive copy still holds the bytes it moved with. A lost or altered archive
    copy keeps its hot copy (logged; `archive verify` names it) and the run goes on.
    Returns how many hot copies were removed."""
    rows = (
        await ArchivedObject.select(
            ArchivedObject.object_ref,
            ArchivedObject.hot_key,
            ArchivedObject.archive_key,
            ArchivedObject.sha256,
        )
        .where(ArchivedObject.hot_removed_at.is_null())
        .order_by(ArchivedObject.id)
        .limit(limit)
    )
    removed = 0
    for row in rows:
        try:
            stored = await storage.sha256(row["archive_key"])
        except ObjectMissing:
            stored = None
        if stored != row["sha256"]:
            log.error(
                "archive: %s is %s in the archive; its hot copy %s stays",
                row["object_ref"],
                "missing" if stored is None else "altered",
                row["hot_key"],
            )
            continue
        await _remove_hot(storage, row["object_ref"], row["hot_key"])
        removed += 1
    return removed


@dataclass
class Chunk:
    outcome: Outcome
    last_id: int
    more: bool  # a full chunk: there may be more of this kind


async def archive_chunk(
    storage: Storage,
    settings: Settings,
    actor: Actor,
    kind: ArchivedKind,
    after_id: int,
    now: datetime | None = None,
) -> Chunk:
    """Archive the next `archive_chunk` objects of `kind` after `after_id`."""
    settled = await settled_campaigns(settings, now or datetime.now(UTC))
    rows = await candidates(kind, settled, storage.archive_prefix, after_id, settings.archive_chunk)
    outcome = Outcome()
    for row in rows:
        campaign = _campaign_of(kind, row, settled)
        if campaign is None:  # the query and the rule disagree: leave it, and say so
            log.error("archive: %s:%s matched no settled campaign", kind.value, row["id"])
            outcome.skipped += 1
            continue
        outcome.add(await archive_one(storage, settings, actor, kind, row, campaign))
    last_id = int(rows[-1]["id"]) if rows else after_id
    return Chunk(outcome, last_id, more=len(rows) == settings.archive_chunk)


async def pending_count(settings: Settings, storage: Storage, now: datetime) -> dict[str, int]:
    """How many objects of each kind a run would archive now (its progress' total)."""
    settled = await settled_campaigns(settings, now)
    counts = {kind.value: 0 for kind in KINDS}
    if not settled:
        return counts
    for kind in KINDS:
        table = table_of(kind)
        counts[kind.value] = await table.count().where(
            _where(kind, settled, storage.archive_prefix, 0)
        )
    return counts

"""Telling users something: `notify` writes the notifications (the inbox), and, once the
transaction commits, publishes each on Redis for the live stream and asks the outbox for the
pushes: one job per chunk of up to `PUSH_CHUNK` notifications that go at the same time (past
each recipient's quiet hours unless it is urgent).

    async with transaction():
        ...  # the change that calls for it
        await inbox.notify(outbox, [account_id], Note(Category.verdict, "确认表核对完成",
                           subject=("upload", upload_id), once=f"verdict:{upload_id}"))
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from redis.exceptions import RedisError

from backend.db import after_commit
from backend.notify.categories import BEHAVIOUR, Category
from backend.notify.quiet import DEFAULT_QUIET, QuietHours
from backend.notify.tables import Notification, Preference
from backend.outbox import Outbox

log = logging.getLogger("registry.notify")

PUSH_JOB = "push_notification"
PUSH_CHUNK = 200  # notifications per push job: one job reads, sends and records them together


def push_job_id(notification_ids: Sequence[int]) -> str:
    """The arq job id of a chunk of notifications (sorted ids): `push:17` for one,
    `push:17-216` for a chunk (the sweeper reads the range back to leave queued ones alone)."""
    first, last = notification_ids[0], notification_ids[-1]
    return f"push:{first}" if first == last else f"push:{first}-{last}"


def push_chunks(
    due: Sequence[tuple[int, datetime]], size: int | None = None
) -> list[tuple[datetime, list[int]]]:
    """(notification id, push time) → chunks of at most `size` ids sharing a push time (quiet
    hours differ by user), each id in one chunk, ids sorted."""
    by_time: dict[datetime, list[int]] = {}
    for notification_id, push_at in due:
        by_time.setdefault(push_at, []).append(notification_id)
    size = size or PUSH_CHUNK
    chunks = []
    for push_at, ids in sorted(by_time.items()):
        ids.sort()
        chunks += [(push_at, ids[i : i + size]) for i in range(0, len(ids), size)]
    return chunks


def stream_channel(account_id: int) -> str:
    """The Redis pub/sub channel one user's live stream listens on."""
    return f"notify:{account_id}"


@dataclass(frozen=True)
class Note:
    """One notification, before it has recipients. `once` names it so that it is written at
    most once per recipient, ever ("due_soon:review_step:17"); None: every call writes."""

    category: Category
    title: str
    body: str = ""
    subject: tuple[str, int] | None = None
    once: str | None = None


@dataclass(frozen=True)
class UserSettings:
    muted: frozenset[str]
    quiet: QuietHours | None  # None: quiet hours turned off


def _time(value: str) -> time | None:
    try:
        hour, minute = value.split(":")
        return time(int(hour), int(minute))
    except ValueError:
        return None


async def _settings_of(account_ids: Sequence[int]) -> dict[int, UserSettings]:
    rows = await Preference.select(
        Preference.account,
        Preference.muted,
        Preference.quiet_start,
        Preference.quiet_end,
        Preference.quiet_enabled,
    ).where(Preference.account.is_in(list(account_ids)))
    found: dict[int, UserSettings] = {}
    for row in rows:
        muted = row["muted"]
        if isinstance(muted, str):
            muted = json.loads(muted)
        start, end = _time(row["quiet_start"]), _time(row["quiet_end"])
        quiet = QuietHours(start, end) if start and end else DEFAULT_QUIET
        found[row["account"]] = UserSettings(
            frozenset(muted or ()), quiet if row["quiet_enabled"] else None
        )
    return found


async def notify(
    outbox: Outbox,
    account_ids: Sequence[int],
    note: Note,
    *,
    now: datetime | None = None,
) -> list[int]:
    """Write `note` to each account's inbox (inside the caller's transaction) and, after the
    commit, stream it and push it. Returns the ids written (fewer than the accounts where
    `note.once` was already written for some)."""
    recipients = sorted(set(account_ids))
    if not recipients:
        return []
    now = now or datetime.now(UTC)
    behaviour = BEHAVIOUR[note.category]
    settings = await _settings_of(recipients)
    rows = []
    for account_id in recipients:
        user = settings.get(account_id)
        muted = behaviour.may_turn_off and user is not None and note.category in user.muted
        quiet = DEFAULT_QUIET if user is None else user.quiet
        if muted:
            push_at = None
        elif behaviour.urgent or quiet is None:
            push_at = now
        else:
            push_at = quiet.push_at(now)
        rows.append(
            Notification(
                account=account_id,
                category=note.category.value,
                title=note.title,
                body=note.body,
                subject_kind=note.subject[0] if note.subject else None,
                subject_id=note.subject[1] if note.subject else None,
                dedupe_key=f"{note.once}:{account_id}" if note.once else None,
                created_at=now,
                push_at=push_at,
            )
        )
    written = await (
        Notification.insert(*rows)
        .on_conflict(target=Notification.dedupe_key, action="DO NOTHING")
        .returning(Notification.id, Notification.account, Notification.push_at)
    )
    due = [(row["id"], row["push_at"]) for row in written if row["push_at"] is not None]
    for push_at, ids in push_chunks(due):
        await outbox.job(PUSH_JOB, ids, job_id=push_job_id(ids), run_at=push_at)
    events = [(row["account"], _event(row["id"], note, now)) for row in written]

    async def publish() -> None:
        try:
            for account_id, event in events:
                await outbox.queue.publish(stream_channel(account_id), event)
        except (RedisError, OSError) as exc:  # the inbox has it; an open app re-reads it
            log.warning("live stream missed %s notifications (%r)", len(events), exc)

    if events:
        after_commit(publish)
    return [row["id"] for row in written]


def _event(notification_id: int, note: Note, now: datetime) -> str:
    body: dict[str, Any] = {
        "id": notification_id,
        "category": note.category.value,
        "title": note.title,
        "body": note.body,
        "subject_kind": note.subject[0] if note.subject else None,
        "subject_id": note.subject[1] if note.subject else None,
        "created_at": now.isoformat(),
    }
    return json.dumps(body, ensure_ascii=False)

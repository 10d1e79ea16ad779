"""One's own inbox: the list (newest first), the unread count the app polls, marking read,
and the test notification a user sends themselves from the settings screen."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from backend import quota
from backend.accounts.principal import Principal
from backend.db import transaction
from backend.errors import NotFound, TooManyAttempts
from backend.notify.categories import BEHAVIOUR, Category
from backend.notify.inbox import Note, notify
from backend.notify.schemas import MarkedRead, NotificationRead, NotificationSubject, UnreadCount
from backend.notify.tables import Notification
from backend.outbox import Outbox
from backend.pages import Page, window

TESTS_PER_HOUR = 5
TEST_TITLE = "测试通知"
TEST_BODY = "看到这条通知，说明这台设备可以收到推送。"

READ_COLUMNS = (
    Notification.id,
    Notification.category,
    Notification.title,
    Notification.body,
    Notification.subject_kind,
    Notification.subject_id,
    Notification.created_at,
    Notification.read_at,
)


def _subject_kind(value: str | None) -> NotificationSubject | str | None:
    try:
        return None if value is None else NotificationSubject(value)
    except ValueError:  # a kind newer than this enum: passed on as it is
        return value


def notification_read(row: dict[str, Any]) -> NotificationRead:
    category = Category(row["category"])
    return NotificationRead(
        id=row["id"],
        category=category,
        category_label=BEHAVIOUR[category].label,
        title=row["title"],
        body=row["body"],
        subject_kind=_subject_kind(row["subject_kind"]),  # type: ignore[arg-type]
        subject_id=row["subject_id"],
        created_at=row["created_at"],
        read_at=row["read_at"],
    )


def _mine(principal: Principal) -> Any:
    return Notification.account == principal.account_id


async def list_mine(
    principal: Principal, *, unread_only: bool, page: int, page_size: int
) -> Page[NotificationRead]:
    where = _mine(principal)
    if unread_only:
        where &= Notification.read_at.is_null()
    w = window(page, page_size)
    rows, total = await w.fetch(
        Notification.select(*READ_COLUMNS).where(where).order_by(Notification.id, ascending=False),
        Notification.count().where(where),
    )
    return w.page([notification_read(row) for row in rows], total)


async def unread_count(principal: Principal) -> UnreadCount:
    """One range of the `notification_unread` index (account, read_at IS NULL)."""
    count = await Notification.count().where(_mine(principal) & Notification.read_at.is_null())
    return UnreadCount(unread=int(count))


async def get_mine(principal: Principal, notification_id: int) -> NotificationRead:
    row = (
        await Notification.select(*READ_COLUMNS)
        .where(_mine(principal) & (Notification.id == notification_id))
        .first()
    )
    if row is None:  # another user's is as missing as one that never was
        raise NotFound("未找到该通知")
    return notification_read(row)


async def mark_read(principal: Principal, notification_id: int) -> NotificationRead:
    """Read now (or when it was first read: marking twice changes nothing)."""
    await Notification.update({Notification.read_at: datetime.now(UTC)}).where(
        _mine(principal) & (Notification.id == notification_id) & Notification.read_at.is_null()
    )
    return await get_mine(principal, notification_id)


async def mark_all_read(principal: Principal, up_to: int | None) -> MarkedRead:
    """Every unread one, or those up to the id `up_to` (the newest the app has shown: one
    that arrives meanwhile stays unread)."""
    where = _mine(principal) & Notification.read_at.is_null()
    if up_to is not None:
        where &= Notification.id <= up_to
    marked = await (
        Notification.update({Notification.read_at: datetime.now(UTC)})
        .where(where)
        .returning(Notification.id)
    )
    return MarkedRead(marked=len(marked))


async def send_test(principal: Principal, redis: Redis, outbox: Outbox) -> NotificationRead:
    """A test notification to oneself: in the inbox, on the live stream, pushed at once to
    every device of the caller (quiet hours or not). A few an hour."""
    hourly = quota.Quota(f"notify-test:account:{principal.account_id}", TESTS_PER_HOUR, 3600)
    refused = await quota.take(redis, [hourly])
    if refused is not None:
        raise TooManyAttempts(
            f"测试通知每小时最多发送 {TESTS_PER_HOUR} 次，"
            f"请 {max(refused.retry_after // 60, 1)} 分钟后再试",
            code="too_many_test_notifications",
            retry_after=refused.retry_after,
        )
    async with transaction():
        [written] = await notify(
            outbox, [principal.account_id], Note(Category.test, TEST_TITLE, TEST_BODY)
        )
    return await get_mine(principal, written)

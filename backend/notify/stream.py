"""The live stream: server-sent events of a user's new notifications while the app is open.

`notify.inbox.notify` publishes each notification, after its commit, on the Redis channel
`stream_channel(account_id)`; every API process streams what its own clients' channels
carry, so a notification written by any process (or the worker) reaches a client connected
to any other. A client that reconnects names the last id it saw (`Last-Event-ID`, or
`last_event_id`), and what it missed is replayed from the table first.

An open stream holds one Redis connection (its subscription) and no database connection:
the database is read only for the replay. A comment line every `KEEPALIVE_SECONDS` keeps
proxies from closing an idle stream and finds a client that went away.

A browser's `EventSource` cannot send an `Authorization` header: it first asks for a ticket
(`POST /notifications/stream-ticket`, with its bearer token), good once within
`TICKET_SECONDS`, and opens `/notifications/stream?ticket=...`.

A stream outlives the request that opened it, so it asks every
`stream_session_check_seconds` whether its session still stands (signed out, its password
changed elsewhere, the account sealed or disabled): if not, it sends `session_ended` and
closes, and the app signs in again."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from litestar.response import ServerSentEventMessage
from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend.accounts.principal import Principal
from backend.accounts.tokens import AccessClaims, InvalidToken
from backend.notify.categories import BEHAVIOUR, Category
from backend.notify.inbox import stream_channel
from backend.notify.service import READ_COLUMNS, notification_read
from backend.notify.tables import Notification

log = logging.getLogger("registry.notify.stream")

KEEPALIVE_SECONDS = 15.0
TICKET_SECONDS = 60
REPLAY_LIMIT = 100  # a client away longer reads the rest from GET /notifications
RECONNECT_MS = 3000  # what the client waits before reconnecting (the `retry:` field)
EVENT = "notification"
ENDED_EVENT = "session_ended"


def _ticket_key(ticket: str) -> str:
    return "stream-ticket:" + hashlib.sha256(ticket.encode()).hexdigest()


async def issue_ticket(redis: Redis, principal: Principal) -> str:
    ticket = secrets.token_urlsafe(24)
    value = json.dumps({"account": principal.account_id, "session": str(principal.session_id)})
    await redis.set(_ticket_key(ticket), value, ex=TICKET_SECONDS)
    return ticket


async def redeem_ticket(redis: Redis, ticket: str) -> AccessClaims:
    """The session a ticket was issued to; a ticket works once (then, or late: 401)."""
    value = await redis.getdel(_ticket_key(ticket))
    if value is None:
        raise InvalidToken("连接凭证无效或已过期，请重新获取", code="invalid_stream_ticket")
    found = json.loads(value)
    return AccessClaims(
        account_id=int(found["account"]),
        session_id=uuid.UUID(found["session"]),
        expires_at=time.time() + TICKET_SECONDS,
    )


def _message(event: dict[str, Any]) -> ServerSentEventMessage:
    with contextlib.suppress(ValueError):
        event["category_label"] = BEHAVIOUR[Category(event["category"])].label
    return ServerSentEventMessage(
        data=json.dumps(event, ensure_ascii=False, default=str), event=EVENT, id=event["id"]
    )


async def _missed(account_id: int, after_id: int) -> list[dict[str, Any]]:
    rows = (
        await Notification.select(*READ_COLUMNS)
        .where((Notification.account == account_id) & (Notification.id > after_id))
        .order_by(Notification.id)
        .limit(REPLAY_LIMIT)
    )
    return [
        {
            "id": read.id,
            "category": read.category.value,
            "title": read.title,
            "body": read.body,
            "subject_kind": read.subject_kind,
            "subject_id": read.subject_id,
            "created_at": read.created_at.isoformat(),
        }
        for read in map(notification_read, rows)
    ]


async def events(
    redis: Redis,
    account_id: int,
    last_event_id: int | None,
    signed_in: Callable[[], Awaitable[bool]],
    check_seconds: float,
) -> AsyncIterator[ServerSentEventMessage]:
    """The stream of one user's notifications, until the client goes (the response cancels
    this generator), Redis does (the client reconnects and is replayed what it missed), or
    `signed_in()`, asked every `check_seconds`, says the session has ended."""
    pubsub = redis.pubsub()
    try:
        # Subscribed before the replay is read: nothing falls between the two.
        await pubsub.subscribe(stream_channel(account_id))
        yield ServerSentEventMessage(data=None, comment="connected", retry=RECONNECT_MS)
        newest = last_event_id or 0
        if last_event_id is not None:
            for event in await _missed(account_id, last_event_id):
                newest = max(newest, event["id"])
                yield _message(event)
        quiet_since = checked_at = time.monotonic()
        while True:
            if time.monotonic() - checked_at >= check_seconds:
                checked_at = time.monotonic()
                if not await signed_in():
                    yield ServerSentEventMessage(data="{}", event=ENDED_EVENT, retry=RECONNECT_MS)
                    return
            # Short waits: the command client's socket timeout also bounds a pub/sub read.
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None:
                if time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                    quiet_since = time.monotonic()
                    yield ServerSentEventMessage(data=None, comment="keep-alive")
                continue
            event = json.loads(message["data"])
            if event["id"] <= newest:  # replayed already
                continue
            newest = event["id"]
            quiet_since = time.monotonic()
            yield _message(event)
    except (RedisError, OSError) as exc:
        log.warning("live stream of an account ended: Redis failed (%r)", exc)
    finally:
        with contextlib.suppress(RedisError, OSError, asyncio.CancelledError):
            await asyncio.shield(_close(pubsub))


async def _close(pubsub: Any) -> None:
    await pubsub.unsubscribe()
    await pubsub.aclose()

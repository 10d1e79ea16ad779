"""Why a push did (not) arrive: the attempts to push one account's notifications, for an
account admin over that account. Tokens are masked: enough to tell devices apart."""

from __future__ import annotations

from datetime import datetime

import msgspec

from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.scope import get_scoped
from backend.accounts.tables import Account
from backend.masking import mask_push_token
from backend.notify.tables import AttemptOutcome, ChannelName, PushAttempt
from backend.pages import Page, window


class PushAttemptRead(msgspec.Struct):
    id: int
    notification_id: int
    category: str
    channel: ChannelName
    outcome: AttemptOutcome
    http_code: int | None  # the gateway's HTTP status; None: no answer (a timeout)
    latency_ms: int
    detail: str  # the gateway's reason ("too many requests", "UNREGISTERED", "timeout", …)
    device_id: int | None  # None: the device was removed since (a dead token)
    token: str | None  # masked: "fcm-…6789"
    at: datetime


async def list_attempts(
    principal: Principal,
    actor: Actor,
    account_id: int,
    notification_id: int | None,
    page: int,
    page_size: int,
) -> Page[PushAttemptRead]:
    require(principal, Action.read_push_attempts)
    await get_scoped(
        actor, principal.scope, Account, Account.id == account_id, "account", account_id
    )
    where = PushAttempt.notification.account == account_id
    if notification_id is not None:
        where &= PushAttempt.notification == notification_id
    query = (
        PushAttempt.select(
            *PushAttempt.all_columns(),
            PushAttempt.notification.category.as_alias("category"),
            PushAttempt.device.token.as_alias("token"),
        )
        .where(where)
        .order_by(PushAttempt.id, ascending=False)
    )
    w = window(page, page_size)
    rows, total = await w.fetch(query, PushAttempt.count().where(where))
    return w.page(
        [
            PushAttemptRead(
                id=row["id"],
                notification_id=row["notification"],
                category=row["category"],
                channel=ChannelName(row["channel"]),
                outcome=AttemptOutcome(row["outcome"]),
                http_code=row["http_status"],
                latency_ms=row["latency_ms"],
                detail=row["detail"],
                device_id=row["device"],
                token=mask_push_token(row["token"]) if row["token"] else None,
                at=row["at"],
            )
            for row in rows
        ],
        total,
    )

"""The one interface every push channel implements, and what a send can come to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Outcome(StrEnum):
    sent = "sent"
    retry = "retry"  # 429 (with `retry_after`), 5xx, a timeout: try again later
    dead = "dead"  # the token is gone for good: remove the device
    failed = "failed"  # refused for good (a bad request, bad credentials): do not retry


@dataclass(frozen=True)
class PushMessage:
    """What a push carries: no personal data, only a title, a short body and ids."""

    title: str
    body: str = ""
    data: Mapping[str, str] = field(default_factory=dict)  # ids: notification, subject
    badge: int | None = None  # the unread count, where the platform shows one


@dataclass(frozen=True)
class Target:
    token: str  # registration token, device token, subscription endpoint, webhook URL
    keys: Mapping[str, str] = field(default_factory=dict)  # Web Push p256dh/auth; webhook secret


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    http_status: int | None = None
    retry_after: float | None = None  # seconds, from the gateway's Retry-After
    detail: str = ""  # the gateway's reason (never the payload)


class Channel(Protocol):
    name: str

    async def send(self, target: Target, message: PushMessage) -> SendResult: ...

"""Sending an SMS: a generic HTTP gateway (JSON POST), or, in the embedded default, the log."""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

import httpx

from backend.masking import mask_phone

log = logging.getLogger("registry.sms")


class SmsError(Exception):
    """The gateway did not accept the message."""


@runtime_checkable
class SmsSender(Protocol):
    async def send(self, phone: str, text: str) -> None: ...


class LoggingSmsSender:
    """The embedded default: no gateway, the message goes to the log with the phone masked
    (and is kept in memory, in full, for tests)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, phone: str, text: str) -> None:
        self.sent.append((phone, text))
        del self.sent[:-100]
        log.warning("SMS to %s: %s", mask_phone(phone), text)


class HttpSmsSender:
    """POST {"phone", "text"} with a bearer token to the provider's URL; 2xx is success."""

    def __init__(self, client: httpx.AsyncClient, url: str, token: str | None) -> None:
        self.client = client
        self.url = url
        self.token = token

    async def send(self, phone: str, text: str) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = await self.client.post(
                self.url, json={"phone": phone, "text": text}, headers=headers, timeout=10
            )
        except httpx.HTTPError as exc:
            raise SmsError(str(exc)) from exc
        if response.status_code // 100 != 2:
            raise SmsError(f"gateway answered {response.status_code}")

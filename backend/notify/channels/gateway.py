"""What every channel does with HTTP: one request with a timeout, and the answers all gateways
share (429 with Retry-After, 5xx, a timeout, an unreachable host: try again later)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from backend.notify.channels.base import Outcome, PushMessage, SendResult, Target

log = logging.getLogger("registry.push")

RETRY_AFTER_CAP = 3600.0  # seconds: a gateway asking for longer is asked again in an hour


def retry_after(headers: httpx.Headers, *names: str) -> float | None:
    """Seconds to wait from `Retry-After` (seconds or an HTTP date), or another header that
    carries seconds (JPush's X-Rate-Limit-Reset)."""
    for name in ("retry-after", *names):
        value = headers.get(name)
        if not value:
            continue
        try:
            seconds = float(value)
        except ValueError:
            try:
                seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
            except (TypeError, ValueError):
                continue
        return min(max(seconds, 0.0), RETRY_AFTER_CAP)
    return None


async def request(
    http: httpx.AsyncClient, method: str, url: str, *, seconds: float, **kwargs: Any
) -> httpx.Response | SendResult:
    """The gateway's response, or a `retry` result when it could not be had."""
    try:
        return await http.request(method, url, timeout=seconds, **kwargs)
    except httpx.TimeoutException:
        return SendResult(Outcome.retry, detail="timeout")
    except httpx.TransportError as exc:
        return SendResult(Outcome.retry, detail=f"unreachable: {type(exc).__name__}")


def transient(response: httpx.Response, *retry_headers: str) -> SendResult | None:
    """429 and 5xx: try again (after the gateway's Retry-After when it gives one)."""
    status = response.status_code
    if status == 429:
        wait = retry_after(response.headers, *retry_headers)
        return SendResult(Outcome.retry, status, wait, "too many requests")
    if status >= 500:
        wait = retry_after(response.headers, *retry_headers)
        return SendResult(Outcome.retry, status, wait, f"gateway error {status}")
    return None


def reason(response: httpx.Response, limit: int = 120) -> str:
    """The gateway's short answer, for the attempt's detail (never the payload we sent)."""
    return response.text[:limit].replace("\n", " ")


class Unconfigured:
    """A channel whose credentials are not set: the push is logged (title and ids only) and
    the attempt is `failed`, so an admin sees why nothing arrived."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def send(self, target: Target, message: PushMessage) -> SendResult:
        log.info(
            "push not sent (%s not configured): %s %s",
            self.name,
            message.title,
            dict(message.data),
        )
        return SendResult(Outcome.failed, detail="channel not configured")

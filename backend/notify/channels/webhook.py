"""A school's own system: a JSON POST to its URL, signed with HMAC-SHA256 under the secret it
registered, over the timestamp and the body, so it can refuse forgeries and replays.

    X-Registry-Timestamp: 1764590400
    X-Registry-Signature: sha256=<hex of HMAC-SHA256(secret, "1764590400." + body)>

The receiver recomputes the signature and refuses a timestamp more than 5 minutes away from
its own clock (docs/notifications.md)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from backend.notify.channels.addresses import refused_unless_public
from backend.notify.channels.base import Outcome, PushMessage, SendResult, Target
from backend.notify.channels.gateway import reason, request, transient

TIMESTAMP_HEADER = "X-Registry-Timestamp"
SIGNATURE_HEADER = "X-Registry-Signature"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


class WebhookChannel:
    name = "webhook"

    def __init__(
        self, http: httpx.AsyncClient, *, timeout: float = 10.0, private_hosts: bool = False
    ) -> None:
        self.http = http
        self.timeout = timeout
        self.private_hosts = private_hosts  # a school system on a private network may be allowed

    async def send(self, target: Target, message: PushMessage) -> SendResult:
        secret = target.keys.get("secret", "")
        if not secret or not target.token.startswith(("https://", "http://")):
            return SendResult(Outcome.failed, detail="webhook without a URL and a secret")
        if not self.private_hosts:
            refused = await refused_unless_public(target.token)
            if refused is not None:
                return refused
        timestamp = str(int(time.time()))
        body = json.dumps(
            {
                "title": message.title,
                "body": message.body,
                "data": dict(message.data),
                "badge": message.badge,
            },
            ensure_ascii=False,
        ).encode()
        response = await request(
            self.http,
            "POST",
            target.token,
            seconds=self.timeout,
            content=body,
            headers={
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: signature(secret, timestamp, body),
            },
            follow_redirects=False,
        )
        if isinstance(response, SendResult):
            return response
        status = response.status_code
        if 200 <= status < 300:
            return SendResult(Outcome.sent, status)
        if status in (404, 410):
            return SendResult(Outcome.dead, status, detail="webhook gone")
        return transient(response) or SendResult(Outcome.failed, status, detail=reason(response))

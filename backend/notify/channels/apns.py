"""Apple Push Notification service: token authentication (an ES256 JWT naming the key id and
the team, renewed well within Apple's hour) over HTTP/2, the shared client multiplexing every
send on one connection."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jwt

from backend.notify.channels.base import Outcome, PushMessage, SendResult, Target
from backend.notify.channels.gateway import reason, request, transient

TOKEN_RENEW_AFTER = 50 * 60  # Apple refuses a provider token older than an hour
DEAD_REASONS = {"BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic"}


class ApnsChannel:
    name = "apns"

    def __init__(
        self,
        http: httpx.AsyncClient,
        signing_key: str,
        *,
        key_id: str,
        team_id: str,
        topic: str,
        base_url: str,
        timeout: float = 10.0,
    ) -> None:
        self.http = http
        self.signing_key = signing_key
        self.key_id = key_id
        self.team_id = team_id
        self.topic = topic
        self.base_url = base_url
        self.timeout = timeout
        self._token: tuple[str, float] | None = None  # (JWT, monotonic time it was made)

    @classmethod
    def from_file(cls, http: httpx.AsyncClient, path: str, **options: Any) -> ApnsChannel:
        return cls(http, Path(path).read_text(), **options)

    def provider_token(self) -> str:
        if self._token is None or time.monotonic() - self._token[1] > TOKEN_RENEW_AFTER:
            token = jwt.encode(
                {"iss": self.team_id, "iat": int(time.time())},
                self.signing_key,
                algorithm="ES256",
                headers={"kid": self.key_id},
            )
            self._token = (token, time.monotonic())
        return self._token[0]

    async def send(self, target: Target, message: PushMessage) -> SendResult:
        aps: dict[str, Any] = {
            "alert": {"title": message.title, "body": message.body},
            "sound": "default",
        }
        if message.badge is not None:
            aps["badge"] = message.badge
        payload = {"aps": aps, **message.data}
        headers = {
            "authorization": f"bearer {self.provider_token()}",
            "apns-topic": self.topic,
            "apns-push-type": "alert",
            "apns-priority": "10",
            "content-type": "application/json",
        }
        if message.data.get("notification_id"):
            # A second delivery of the same notification replaces the first on the phone.
            headers["apns-collapse-id"] = f"n{message.data['notification_id']}"
        response = await request(
            self.http,
            "POST",
            f"{self.base_url}/3/device/{quote(target.token, safe='')}",
            seconds=self.timeout,
            content=json.dumps(payload, ensure_ascii=False).encode(),
            headers=headers,
        )
        if isinstance(response, SendResult):
            return response
        status = response.status_code
        if status == 200:
            return SendResult(Outcome.sent, status)
        why = _reason(response)
        if status == 410 or why in DEAD_REASONS:
            return SendResult(Outcome.dead, status, detail=why or "unregistered")
        if status == 403 and why == "ExpiredProviderToken":
            self._token = None
            return SendResult(Outcome.retry, status, detail=why)
        return transient(response) or SendResult(Outcome.failed, status, detail=why)


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json().get("reason", ""))
    except ValueError:
        return reason(response)

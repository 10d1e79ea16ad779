"""Firebase Cloud Messaging, HTTP v1: an OAuth2 access token got from the service account's
key (an RS256 JWT exchanged at the token endpoint, kept until shortly before it expires), then
one POST per message with it as the bearer."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt

from backend.notify.channels.base import Outcome, PushMessage, SendResult, Target
from backend.notify.channels.gateway import reason, request, transient

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
TOKEN_LIFETIME = 3600  # what Google grants for a self-signed assertion
RENEW_BEFORE = 300  # seconds before expiry a new token is asked for


class FcmChannel:
    name = "fcm"

    def __init__(
        self,
        http: httpx.AsyncClient,
        service_account: dict[str, Any],
        *,
        base_url: str,
        token_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.http = http
        self.account = service_account
        self.project_id: str = service_account["project_id"]
        self.token_url = token_url or service_account["token_uri"]
        self.send_url = f"{base_url}/v1/projects/{self.project_id}/messages:send"
        self.timeout = timeout
        self._token: tuple[str, float] | None = None  # (access token, monotonic expiry)
        self._lock = asyncio.Lock()

    @classmethod
    def from_file(cls, http: httpx.AsyncClient, path: str, **options: Any) -> FcmChannel:
        return cls(http, json.loads(Path(path).read_text()), **options)

    async def access_token(self) -> str | SendResult:
        async with self._lock:  # one exchange, however many sends wait for it
            if self._token and self._token[1] > time.monotonic():
                return self._token[0]
            now = int(time.time())
            assertion = jwt.encode(
                {
                    "iss": self.account["client_email"],
                    "scope": SCOPE,
                    "aud": self.token_url,
                    "iat": now,
                    "exp": now + TOKEN_LIFETIME,
                },
                self.account["private_key"],
                algorithm="RS256",
                headers={"kid": self.account.get("private_key_id", "")},
            )
            response = await request(
                self.http,
                "POST",
                self.token_url,
                seconds=self.timeout,
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                    "assertion": assertion,
                },
            )
            if isinstance(response, SendResult):
                return response
            if response.status_code != 200:
                return transient(response) or SendResult(
                    Outcome.failed, response.status_code, detail=f"token: {reason(response)}"
                )
            answer = response.json()
            expires_in = int(answer.get("expires_in", TOKEN_LIFETIME))
            self._token = (answer["access_token"], time.monotonic() + expires_in - RENEW_BEFORE)
            return self._token[0]

    async def send(self, target: Target, message: PushMessage) -> SendResult:
        token = await self.access_token()
        if isinstance(token, SendResult):
            return token
        notification_id = message.data.get("notification_id", "")
        android: dict[str, Any] = {"notification": {"tag": f"n{notification_id}"}}
        if message.badge is not None:
            android["notification"]["notification_count"] = message.badge
        body: dict[str, Any] = {
            "message": {
                "token": target.token,
                "notification": {"title": message.title, "body": message.body},
                "data": dict(message.data),
                "android": android,
            }
        }
        if message.badge is not None:
            body["message"]["apns"] = {"payload": {"aps": {"badge": message.badge}}}
        response = await request(
            self.http,
            "POST",
            self.send_url,
            seconds=self.timeout,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        if isinstance(response, SendResult):
            return response
        status = response.status_code
        if status == 200:
            return SendResult(Outcome.sent, status)
        if status == 401:  # revoked or expired early: ask for a new one next time
            self._token = None
            return SendResult(Outcome.retry, status, detail="access token refused")
        code = _error_code(response)
        if status == 404 or code == "UNREGISTERED":
            return SendResult(Outcome.dead, status, detail=code or "not found")
        return transient(response) or SendResult(
            Outcome.failed, status, detail=code or reason(response)
        )


def _error_code(response: httpx.Response) -> str:
    """FCM's `errorCode` from the error's details (UNREGISTERED, INVALID_ARGUMENT, …)."""
    try:
        error = response.json().get("error", {})
    except ValueError:
        return ""
    for item in error.get("details", []):
        if isinstance(item, dict) and item.get("errorCode"):
            return str(item["errorCode"])
    return str(error.get("status", ""))

"""JPush REST v3 (极光推送), common on Chinese Android phones: basic auth with the app key and
master secret, one registration id per push."""

from __future__ import annotations

from typing import Any

import httpx

from backend.notify.channels.base import Outcome, PushMessage, SendResult, Target
from backend.notify.channels.gateway import reason, request, retry_after, transient

# JPush's error codes: 1011 "cannot find user by this audience" (the registration id is
# unknown or inactive for 255 days): the device is gone. 2002 and 2008: over the rate limit.
DEAD_CODES = {1011}
RATE_LIMIT_CODES = {2002, 2008}
TIME_TO_LIVE = 24 * 3600  # seconds JPush keeps it for a phone that is offline


class JPushChannel:
    name = "jpush"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        app_key: str,
        master_secret: str,
        base_url: str,
        timeout: float = 10.0,
    ) -> None:
        self.http = http
        self.auth = httpx.BasicAuth(app_key, master_secret)
        self.url = f"{base_url}/v3/push"
        self.timeout = timeout

    async def send(self, target: Target, message: PushMessage) -> SendResult:
        extras = dict(message.data)
        ios: dict[str, Any] = {
            "alert": {"title": message.title, "body": message.body},
            "extras": extras,
        }
        if message.badge is not None:
            ios["badge"] = message.badge
        body = {
            "platform": "all",
            "audience": {"registration_id": [target.token]},
            "notification": {
                "android": {
                    "alert": message.body or message.title,
                    "title": message.title,
                    "extras": extras,
                },
                "ios": ios,
            },
            "options": {"time_to_live": TIME_TO_LIVE},
        }
        response = await request(
            self.http, "POST", self.url, seconds=self.timeout, json=body, auth=self.auth
        )
        if isinstance(response, SendResult):
            return response
        status = response.status_code
        if status == 200:
            return SendResult(Outcome.sent, status)
        code = _error_code(response)
        if code in DEAD_CODES:
            return SendResult(Outcome.dead, status, detail=f"jpush {code}")
        if code in RATE_LIMIT_CODES:
            wait = retry_after(response.headers, "x-rate-limit-reset")
            return SendResult(Outcome.retry, status, wait, detail=f"jpush {code}")
        return transient(response, "x-rate-limit-reset") or SendResult(
            Outcome.failed, status, detail=f"jpush {code}" if code else reason(response)
        )


def _error_code(response: httpx.Response) -> int | None:
    try:
        code = response.json().get("error", {}).get("code")
    except (ValueError, AttributeError):
        return None
    return int(code) if isinstance(code, int | str) and str(code).isdigit() else None

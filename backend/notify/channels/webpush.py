"""Web Push: the payload encrypted for the browser's subscription (aes128gcm, RFC 8291, with
http-ece) and the request signed with our VAPID key (RFC 8292, with py-vapid). The
subscription's endpoint is the push service's own URL."""

from __future__ import annotations

import base64
import json
import os
import time
from urllib.parse import urlsplit

import http_ece
import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from backend.notify.channels.addresses import refused_unless_public
from backend.notify.channels.base import Outcome, PushMessage, SendResult, Target
from backend.notify.channels.gateway import reason, request, transient

TTL_SECONDS = 24 * 3600  # how long the push service keeps it for a browser that is offline
VAPID_LIFETIME = 12 * 3600  # each signed header; renewed an hour before it runs out


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


class WebPushChannel:
    name = "webpush"

    def __init__(
        self,
        http: httpx.AsyncClient,
        vapid: Vapid02,
        *,
        subject: str,
        timeout: float = 10.0,
        private_hosts: bool = False,
    ) -> None:
        self.http = http
        self.private_hosts = private_hosts  # endpoints on private addresses (tests) allowed
        self.vapid = vapid
        self.subject = subject
        self.timeout = timeout
        self._headers: dict[str, tuple[str, float]] = {}  # by origin: (Authorization, expiry)

    @classmethod
    def from_file(cls, http: httpx.AsyncClient, path: str, **options: object) -> WebPushChannel:
        return cls(http, Vapid02.from_file(path), **options)  # type: ignore[arg-type]

    def authorization(self, endpoint: str) -> str:
        parts = urlsplit(endpoint)
        origin = f"{parts.scheme}://{parts.netloc}"
        cached = self._headers.get(origin)
        if cached and cached[1] > time.time() + 3600:
            return cached[0]
        expires = int(time.time()) + VAPID_LIFETIME
        header = str(
            self.vapid.sign({"aud": origin, "sub": self.subject, "exp": expires})["Authorization"]
        )
        self._headers[origin] = (header, expires)
        return header

    async def send(self, target: Target, message: PushMessage) -> SendResult:
        try:
            receiver = b64url_decode(target.keys["p256dh"])
            auth = b64url_decode(target.keys["auth"])
        except (KeyError, ValueError):
            return SendResult(Outcome.dead, detail="subscription without valid keys")
        if not self.private_hosts:
            refused = await refused_unless_public(target.token)
            if refused is not None:
                return refused
        payload = json.dumps(
            {
                "title": message.title,
                "body": message.body,
                "data": dict(message.data),
                "badge": message.badge,
            },
            ensure_ascii=False,
        ).encode()
        body = http_ece.encrypt(
            payload,
            salt=os.urandom(16),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            dh=receiver,
            auth_secret=auth,
            version="aes128gcm",
        )
        response = await request(
            self.http,
            "POST",
            target.token,
            seconds=self.timeout,
            content=body,
            headers={
                "Authorization": self.authorization(target.token),
                "Content-Encoding": "aes128gcm",
                "Content-Type": "application/octet-stream",
                "TTL": str(TTL_SECONDS),
                "Urgency": "normal",
            },
        )
        if isinstance(response, SendResult):
            return response
        status = response.status_code
        if status in (200, 201, 202):
            return SendResult(Outcome.sent, status)
        if status in (404, 410):
            return SendResult(Outcome.dead, status, detail="subscription gone")
        return transient(response) or SendResult(Outcome.failed, status, detail=reason(response))

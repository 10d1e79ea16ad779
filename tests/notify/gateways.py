"""Local fake push gateways: one real HTTP server per channel, each checking the auth the real
one checks, keeping what it received (decrypted, for Web Push), and playing the failures a
test asks for. Any test (or the bench) can use them:

    from tests.notify.gateways import Failure, Gateways, start_gateways

    @pytest.fixture
    async def gateways(tmp_path: Path) -> AsyncIterator[Gateways]:
        async with start_gateways(tmp_path) as running:
            yield running

    async def test_x(gateways: Gateways) -> None:
        channels = gateways.channels()  # the real channel classes, pointed at the gateways
        gateways.fail("apns", token, Failure.rate_limited(7))  # its next answer for that token
        ...
        gateways.received["apns"]  # every accepted push: token, payload, headers

What each server checks:

- FCM (HTTP/1.1): the token endpoint decodes the OAuth assertion with the service account's
  public key (RS256; iss, aud, scope, exp) and hands out an access token; sends need it as
  the bearer (401 otherwise).
- APNs: HTTP/2 over TLS (hypercorn, ALPN h2, a certificate from a CA made here that the
  client is told to trust through `PushSettings.ca_file`). TLS rather than h2c with prior
  knowledge because that is what the real gateway speaks and what the shared client must
  negotiate: a client that fell back to HTTP/1.1 is refused (505). The bearer must be an ES256
  JWT with our key id in its header, our team as issuer and an `iat` within the hour; the
  `apns-topic` and `apns-push-type` headers must be set.
- Web Push (HTTP/1.1): the VAPID header's key must be ours and its JWT verify (ES256, aud =
  this origin, a future exp, a sub); the body must decrypt (aes128gcm) with the private key of
  the subscription the gateway made (`webpush_subscription()`).
- JPush (HTTP/1.1): basic auth with the app key and master secret.
- Webhook (HTTP/1.1): the HMAC-SHA256 signature over timestamp and body with the hook's
  secret (`webhook_target()`), the timestamp within 5 minutes.

A request that fails its check is answered as the real gateway would (401/403) and kept in
`refused`, so a test can assert there were none.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hmac
import ipaddress
import json
import secrets
import socket
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import http_ece
import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypercorn.asyncio import serve
from hypercorn.config import Config
from py_vapid import Vapid02

from backend.config import PushSettings
from backend.notify.channels.base import Channel, Target
from backend.notify.channels.setup import build_channels, http_client
from backend.notify.channels.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature

CHANNELS = ("fcm", "apns", "webpush", "jpush", "webhook")
APNS_KEY_ID = "ABC123DEFG"
APNS_TEAM_ID = "TEAM123456"
APNS_TOPIC = "cn.edu.registry.mobile"
JPUSH_APP_KEY = "jpush-app-key"
JPUSH_SECRET = "jpush-master-secret"
FCM_PROJECT = "registry-test"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Failure:
    """One answer a gateway gives instead of accepting: `kind` is rate_limited (429 with
    Retry-After), error (500), timeout (no answer for `hold` seconds) or dead (the channel's
    own "this token is gone")."""

    kind: str
    retry_after: int | None = None
    hold: float = 3.0

    @classmethod
    def rate_limited(cls, seconds: int) -> Failure:
        return cls("rate_limited", retry_after=seconds)

    @classmethod
    def error(cls) -> Failure:
        return cls("error")

    @classmethod
    def timeout(cls, hold: float = 3.0) -> Failure:
        return cls("timeout", hold=hold)

    @classmethod
    def dead(cls) -> Failure:
        return cls("dead")


@dataclass(frozen=True)
class Received:
    channel: str
    token: str  # the device token, registration id, subscription or hook id
    payload: dict[str, Any]  # what the gateway got (Web Push: decrypted)
    headers: dict[str, str]
    http_version: str
    client: tuple[str, int]  # the connection it came on
    at: float  # time.time() when it arrived


# What each channel answers for a dead token.
DEAD_ANSWERS: dict[str, tuple[int, dict[str, Any]]] = {
    "fcm": (
        404,
        {
            "error": {
                "code": 404,
                "status": "NOT_FOUND",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                        "errorCode": "UNREGISTERED",
                    }
                ],
            }
        },
    ),
    "apns": (410, {"reason": "Unregistered", "timestamp": 1764590400000}),
    "webpush": (410, {}),
    "jpush": (400, {"error": {"code": 1011, "message": "cannot find user by this audience"}}),
    "webhook": (410, {}),
}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _pem(key: Any) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate it signed for 127.0.0.1: (ca, cert, key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "registry test gateways CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "gateway.pem", directory / "gateway.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(_pem(key))
    return paths


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        event = await receive()
        chunks.append(event.get("body", b""))
        if not event.get("more_body"):
            return b"".join(chunks)


async def _answer(
    send: Send,
    status: int,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    content = json.dumps(body).encode() if body is not None else b""
    raw = [(b"content-type", b"application/json")]
    raw += [(name.encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": content})


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        self.status, self.reason = status, reason


@dataclass
class Gateways:
    """The five servers, their credentials, what they received and what they will fail."""

    directory: Path
    tls: tuple[str, ...] = ("apns",)  # the servers on HTTP/2 over TLS; the others HTTP/1.1
    urls: dict[str, str] = field(default_factory=dict)
    received: dict[str, list[Received]] = field(default_factory=lambda: defaultdict(list))
    refused: list[tuple[str, str]] = field(default_factory=list)  # (channel, why)
    failures: dict[tuple[str, str], list[Failure]] = field(default_factory=dict)
    token_exchanges: int = 0
    timeout_seconds: float = 1.0  # what the channels built by `settings()` wait

    def __post_init__(self) -> None:
        self.fcm_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.apns_key = ec.generate_private_key(ec.SECP256R1())
        self.vapid = Vapid02()
        self.vapid.generate_keys()
        self.access_tokens: set[str] = set()
        self.apns_verified: dict[str, dict[str, Any]] = {}  # provider token -> its claims
        self.subscriptions: dict[str, tuple[ec.EllipticCurvePrivateKey, bytes]] = {}
        self.hooks: dict[str, str] = {}  # hook id -> secret
        self.ca_file, self.cert_file, self.key_file = _tls_files(self.directory)

    # --- what tests use ---

    def fail(self, channel: str, token: str, *answers: Failure) -> None:
        """The next answers for `token` on `channel`, in order; then it is accepted."""
        self.failures.setdefault((channel, token), []).extend(answers)

    def settings(self, **changes: Any) -> PushSettings:
        """Push settings with every channel configured and pointed at these gateways."""
        account = {
            "type": "service_account",
            "project_id": FCM_PROJECT,
            "private_key_id": "fcm-key-1",
            "private_key": _pem(self.fcm_key).decode(),
            "client_email": "push@registry-test.iam.gserviceaccount.com",
            "token_uri": f"{self.urls['fcm']}/token",
        }
        (self.directory / "fcm.json").write_text(json.dumps(account))
        (self.directory / "apns.p8").write_bytes(_pem(self.apns_key))
        self.vapid.save_key(str(self.directory / "vapid.pem"))
        base = {
            "timeout_seconds": self.timeout_seconds,
            "ca_file": str(self.ca_file),
            "fcm_service_account_file": str(self.directory / "fcm.json"),
            "fcm_base_url": self.urls["fcm"],
            "apns_key_file": str(self.directory / "apns.p8"),
            "apns_key_id": APNS_KEY_ID,
            "apns_team_id": APNS_TEAM_ID,
            "apns_topic": APNS_TOPIC,
            "apns_base_url": self.urls["apns"],
            "vapid_private_key_file": str(self.directory / "vapid.pem"),
            "vapid_subject": "mailto:ops@registry.example",
            "jpush_app_key": JPUSH_APP_KEY,
            "jpush_master_secret": JPUSH_SECRET,
            "jpush_base_url": self.urls["jpush"],
            "push_private_hosts": True,  # these gateways listen on 127.0.0.1
        }
        return PushSettings(**{**base, **changes})

    @asynccontextmanager
    async def client_and_channels(
        self, **changes: Any
    ) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Channel]]]:
        """The production client (HTTP/2, trusting the gateways' CA) and channels on it."""
        settings = self.settings(**changes)
        async with http_client(settings) as http:
            yield http, build_channels(settings, http)

    def webpush_subscription(self) -> Target:
        """A browser's subscription: the endpoint on this gateway and its p256dh/auth keys;
        the gateway keeps the private key to decrypt what it receives."""
        key = ec.generate_private_key(ec.SECP256R1())
        auth = secrets.token_bytes(16)
        sub_id = secrets.token_hex(8)
        self.subscriptions[sub_id] = (key, auth)
        public = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        keys = {"p256dh": _b64url(public), "auth": _b64url(auth)}
        return Target(f"{self.urls['webpush']}/push/{sub_id}", keys)

    def webhook_target(self) -> Target:
        hook_id = secrets.token_hex(6)
        self.hooks[hook_id] = secrets.token_urlsafe(24)
        return Target(f"{self.urls['webhook']}/hook/{hook_id}", {"secret": self.hooks[hook_id]})

    def count(self, channel: str | None = None) -> int:
        return sum(len(items) for name, items in self.received.items() if channel in (None, name))

    # --- the servers ---

    def _app(self, channel: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        handler = getattr(self, f"_{channel}")

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "lifespan":
                while (await receive())["type"] != "lifespan.shutdown":
                    await send({"type": "lifespan.startup.complete"})
                await send({"type": "lifespan.shutdown.complete"})
                return
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            body = await _body(receive)
            try:
                token, payload = handler(scope, headers, body)
            except Refused as refused:
                self.refused.append((channel, refused.reason))
                await _answer(send, refused.status, {"reason": refused.reason})
                return
            if token is None:  # the FCM token endpoint: answered by the handler's payload
                await _answer(send, 200, payload)
                return
            pending = self.failures.get((channel, token))
            if pending:
                failure = pending.pop(0)
                if failure.kind == "timeout":
                    await asyncio.sleep(failure.hold)
                    await _answer(send, 503)
                elif failure.kind == "rate_limited":
                    retry = {"Retry-After": str(failure.retry_after)}
                    await _answer(send, 429, {"reason": "TooManyRequests"}, retry)
                elif failure.kind == "error":
                    await _answer(send, 500, {"reason": "InternalServerError"})
                else:
                    status, answer = DEAD_ANSWERS[channel]
                    await _answer(send, status, answer)
                return
            self.received[channel].append(
                Received(
                    channel,
                    token,
                    payload,
                    headers,
                    scope["http_version"],
                    tuple(scope["client"]),
                    time.time(),
                )
            )
            if channel == "apns":
                await _answer(send, 200, None, {"apns-id": secrets.token_hex(16)})
            elif channel == "webpush":
                await _answer(send, 201, {})
            else:
                await _answer(send, 200, {"name": f"projects/x/messages/{secrets.token_hex(4)}"})

        return app

    def _fcm(self, scope: Scope, headers: dict[str, str], body: bytes) -> tuple[str | None, Any]:
        if scope["path"] == "/token":
            form = dict(item.split("=", 1) for item in body.decode().split("&"))
            if form.get("grant_type") != "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer":
                raise Refused(400, "unsupported_grant_type")
            try:
                claims = jwt.decode(
                    form["assertion"],
                    self.fcm_key.public_key(),
                    algorithms=["RS256"],
                    audience=f"{self.urls['fcm']}/token",
                    options={"require": ["iss", "aud", "iat", "exp"]},
                )
            except (KeyError, jwt.PyJWTError) as exc:
                raise Refused(400, f"invalid_grant: {exc}") from exc
            if claims.get("scope") != "https://www.googleapis.com/auth/firebase.messaging":
                raise Refused(400, "invalid_scope")
            self.token_exchanges += 1
            token = secrets.token_urlsafe(24)
            self.access_tokens.add(token)
            return None, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
        if scope["path"] != f"/v1/projects/{FCM_PROJECT}/messages:send":
            raise Refused(404, "no such project")
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in self.access_tokens:
            raise Refused(401, "UNAUTHENTICATED")
        message = json.loads(body)["message"]
        return message["token"], message

    def _apns(self, scope: Scope, headers: dict[str, str], body: bytes) -> tuple[str, Any]:
        if scope["http_version"] != "2":
            raise Refused(505, "HTTP/2 required")
        bearer = headers.get("authorization", "").removeprefix("bearer ")
        # A provider token is verified once, then known (as Apple does: the sender is told to
        # reuse it for up to an hour); its age is checked on every request.
        claims = self.apns_verified.get(bearer)
        if claims is None:
            try:
                if jwt.get_unverified_header(bearer).get("kid") != APNS_KEY_ID:
                    raise Refused(403, "InvalidProviderToken")
                claims = jwt.decode(
                    bearer,
                    self.apns_key.public_key(),
                    algorithms=["ES256"],
                    issuer=APNS_TEAM_ID,
                    options={"require": ["iss", "iat"]},
                )
            except jwt.PyJWTError as exc:
                raise Refused(403, "InvalidProviderToken") from exc
            self.apns_verified[bearer] = claims
        if claims["iat"] < time.time() - 3600:
            raise Refused(403, "ExpiredProviderToken")
        if headers.get("apns-topic") != APNS_TOPIC:
            raise Refused(400, "BadTopic")
        if headers.get("apns-push-type") not in {"alert", "background"}:
            raise Refused(400, "InvalidPushType")
        return scope["path"].removeprefix("/3/device/"), json.loads(body)

    def _webpush(self, scope: Scope, headers: dict[str, str], body: bytes) -> tuple[str, Any]:
        sub_id = scope["path"].removeprefix("/push/")
        if sub_id not in self.subscriptions:
            raise Refused(404, "no such subscription")
        scheme, _, params = headers.get("authorization", "").partition(" ")
        fields = dict(item.strip().split("=", 1) for item in params.split(",") if "=" in item)
        ours = self.vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        if scheme != "vapid" or _b64url_decode(fields.get("k", "")) != ours:
            raise Refused(401, "VAPID key unknown")
        try:
            claims = jwt.decode(
                fields["t"],
                self.vapid.public_key,
                algorithms=["ES256"],
                audience=self.urls["webpush"],
                options={"require": ["aud", "exp", "sub"]},
            )
        except (KeyError, jwt.PyJWTError) as exc:
            raise Refused(403, f"VAPID signature: {exc}") from exc
        if claims["exp"] > time.time() + 24 * 3600:
            raise Refused(403, "VAPID exp more than 24 hours away")
        if headers.get("content-encoding") != "aes128gcm" or "ttl" not in headers:
            raise Refused(400, "aes128gcm and TTL required")
        key, auth = self.subscriptions[sub_id]
        try:
            plain = http_ece.decrypt(body, private_key=key, auth_secret=auth, version="aes128gcm")
        except Exception as exc:  # http_ece raises its own and cryptography's errors
            raise Refused(400, f"payload does not decrypt: {exc!r}") from exc
        return sub_id, json.loads(plain)

    def _jpush(self, scope: Scope, headers: dict[str, str], body: bytes) -> tuple[str, Any]:
        expected = base64.b64encode(f"{JPUSH_APP_KEY}:{JPUSH_SECRET}".encode()).decode()
        if headers.get("authorization") != f"Basic {expected}":
            raise Refused(401, "1004 authentication failed")
        payload = json.loads(body)
        return payload["audience"]["registration_id"][0], payload

    def _webhook(self, scope: Scope, headers: dict[str, str], body: bytes) -> tuple[str, Any]:
        hook_id = scope["path"].removeprefix("/hook/")
        secret = self.hooks.get(hook_id)
        if secret is None:
            raise Refused(404, "no such hook")
        timestamp = headers.get(TIMESTAMP_HEADER.lower(), "")
        if not timestamp.isdigit() or abs(int(timestamp) - time.time()) > 300:
            raise Refused(401, "stale timestamp")
        if not hmac.compare_digest(
            headers.get(SIGNATURE_HEADER.lower(), ""), signature(secret, timestamp, body)
        ):
            raise Refused(401, "bad signature")
        return hook_id, json.loads(body)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Gateways]:
        stop = asyncio.Event()
        tasks = []
        for channel in CHANNELS:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            sock.listen(1024)
            port = sock.getsockname()[1]
            config = Config()
            config.bind = [f"fd://{sock.detach()}"]
            config.accesslog = None
            config.errorlog = None
            config.graceful_timeout = 0.2
            # hypercorn closes a connection after 1,000 requests by default, cutting the streams
            # in flight; the real gateways keep one open for far longer.
            config.keep_alive_max_requests = 1_000_000
            if channel in self.tls:
                config.certfile, config.keyfile = str(self.cert_file), str(self.key_file)
                config.alpn_protocols = ["h2"]
                config.h2_max_concurrent_streams = 1000
                self.urls[channel] = f"https://127.0.0.1:{port}"
            else:
                self.urls[channel] = f"http://127.0.0.1:{port}"
            tasks.append(
                asyncio.create_task(serve(self._app(channel), config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
            )
        await asyncio.sleep(0.05)
        try:
            yield self
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)


@asynccontextmanager
async def start_gateways(
    directory: Path | None = None, tls: tuple[str, ...] = ("apns",)
) -> AsyncIterator[Gateways]:
    """The five gateways on free local ports, their keys and certificates in `directory`;
    the channels named in `tls` on HTTP/2 over TLS (APNs always is), the others HTTP/1.1."""
    async with AsyncExitStack() as stack:
        if directory is None:
            import tempfile

            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        gateways = Gateways(directory, tuple({"apns", *tls}))
        yield await stack.enter_async_context(gateways.running())

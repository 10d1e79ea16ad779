"""What every request passes through: a request id, the caller's identity, a check of the
input no handler could do better, one error shape, and the same safety headers on every answer.

Errors reach the client as `{"code", "message", "field_errors"?, "request_id"}`; a stack
trace or SQL never does, and a 500 has the same shape.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, HTTPRequestEvent, Message, Receive, ReceiveMessage, Scope, Send
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from backend.accounts.audit import Actor
from backend.accounts.permissions import RULES, Action, require
from backend.accounts.principal import (
    Principal,
    load_principal,
    principal_args,
    principal_of,
    with_principal,
)
from backend.accounts.schemas import DB_ID_MAX
from backend.accounts.support import audit_request
from backend.accounts.tokens import AccessClaims
from backend.config import Settings
from backend.db import fetch_records
from backend.errors import (
    BadRequest,
    DomainError,
    Forbidden,
    InvalidCharacters,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)
from backend.validation import field_errors, required_error

log = logging.getLogger("registry.http")

BEARER_REALM = 'Bearer realm="registry"'

NO_STORE = {"Cache-Control": "no-store"}  # photos of minors' forms are never cached

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

STATUS_MESSAGES = {
    400: ("bad_request", "请求有误"),
    401: ("unauthorized", "请先登录"),
    403: ("forbidden", "您的角色无权进行此操作"),
    404: ("not_found", "未找到该记录"),
    405: ("method_not_allowed", "不支持该请求方法"),
    413: ("payload_too_large", "上传内容过大"),
    415: ("unsupported_media_type", "不支持的内容类型"),
    429: ("too_many_requests", "请求过于频繁，请稍后再试"),
    500: ("internal_error", "服务器内部错误，请稍后再试"),
}

# Sent with every answer, errors included. API answers carry minors' personal data and tokens:
# nothing is cached unless a response sets its own Cache-Control (a static asset may).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# The only HTML is the OpenAPI docs page (`/schema`, when enabled): Redoc served by the service
# itself (backend/static/redoc, pinned; CDNs are slow or blocked in China), no web fonts, no
# inline script; Redoc injects its styles, fetches the schema from here and searches in a blob
# worker. No outside host is allowed.
DOCS_SCRIPT_PATH = "/schema/assets/redoc.standalone.js"
HTML_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; "
    "img-src 'self' data:; font-src data:; connect-src 'self'; worker-src blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _encoded(headers: dict[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((name.lower().encode(), value.encode()) for name, value in headers.items())


_API_HEADERS = _encoded({**SECURITY_HEADERS, "Content-Security-Policy": API_CSP})
_HTML_HEADERS = _encoded({**SECURITY_HEADERS, "Content-Security-Policy": HTML_CSP})
_NO_STORE = (b"cache-control", b"no-store")


def new_request_id() -> str:
    # Unique, not secret: it names a request in logs and answers. `random` (reseeded in
    # each forked worker) costs no system call per request, unlike uuid4.
    return f"{random.getrandbits(128):032x}"


def response_headers_middleware(app: ASGIApp) -> ASGIApp:
    """Give each request an id (the caller's own, if well-formed) and echo it back; add
    nosniff, no framing, a CSP (the docs page's for HTML, `default-src 'none'` otherwise) and
    `Cache-Control: no-store` unless the response chose its own caching. One wrapper of
    `send` for both: this runs on every request."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {bytes(name).lower() for name, _ in headers}
                html = any(
                    bytes(name).lower() == b"content-type"
                    and bytes(value).lower().startswith(b"text/html")
                    for name, value in headers
                )
                for name, value in (
                    *(_HTML_HEADERS if html else _API_HEADERS),
                    _NO_STORE,
                    (b"x-request-id", request_id.encode()),
                ):
                    if name not in present:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware


def _security_headers(content_type: str) -> dict[str, str]:
    html = content_type.lower().startswith("text/html")
    return {
        **SECURITY_HEADERS,
        "Content-Security-Policy": HTML_CSP if html else API_CSP,
        "Cache-Control": "no-store",
    }


# ---- hostile input ---------------------------------------------------------------------------
# What the tester sent to get 500s, refused in one place before any handler runs: NUL (which
# PostgreSQL text cannot hold) anywhere in the request, ids past the id column's range (the same
# 404 as a missing row), and bodies too large or nested too deep to be a request of this API
# (msgspec recurses per level: 100,000 levels was a RecursionError).

BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_JSON_SPECIAL = re.compile(rb'["\\\[\]{}]')


class JsonExpected(UnsupportedMediaType):
    code = "json_expected"
    message = "请以 JSON 格式提交（Content-Type: application/json）"


class MultipartExpected(UnsupportedMediaType):
    code = "multipart_expected"
    message = "请以 multipart/form-data 格式上传，文件放在 file 字段中"


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


def _expected_media(scope: Scope) -> RequestEncodingType | str | None:
    handler = scope.get("route_handler")
    field = getattr(handler, "parsed_data_field", None)
    if field is None:
        return None
    return getattr(field.kwarg_definition, "media_type", None) or RequestEncodingType.JSON


def _check_media_type(scope: Scope) -> None:
    """A body of the kind the operation reads, or 415 saying which kind: JSON for the JSON
    operations (a form post or a raw photo is not), multipart with its file part for uploads."""
    content_type = dict(scope["headers"]).get(b"content-type")
    expected = _expected_media(scope)
    if content_type is None or expected is None:
        return
    if expected == RequestEncodingType.JSON and not _is_json(content_type):
        raise JsonExpected()
    if expected == RequestEncodingType.MULTI_PART and not content_type.lower().startswith(
        b"multipart/form-data"
    ):
        noun = scope["route_handler"].opt.get("upload_noun", "文件")
        raise MultipartExpected(f"请以 multipart/form-data 格式上传，{noun}放在 file 字段中")


def json_hazard(body: bytes, max_depth: int) -> str | None:
    """`"nul"` if a JSON text holds a NUL (raw or `\\u0000`, keys included), `"deep"` if its
    arrays and objects nest deeper than `max_depth`, else None. One linear pass that skips string
    contents, so brackets inside strings do not count and an escaped backslash is not an escape."""
    if b"\x00" in body:
        return "nul"
    depth, in_string, pos = 0, False, 0
    search = _JSON_SPECIAL.search
    while match := search(body, pos):
        char, pos = body[match.start()], match.end()
        if in_string:
            if char == 0x22:  # "
                in_string = False
            elif char == 0x5C:  # \ escapes the next character
                if body[pos : pos + 5] == b"u0000":
                    return "nul"
                pos += 1
        elif char == 0x22:
            in_string = True
        elif char in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > max_depth:
                return "deep"
        elif char in (0x5D, 0x7D):  # ] }
            depth -= 1
    return None


def hostile_input_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await app(scope, receive, send)
            return
        if (
            "\x00" in scope["path"]
            or b"%00" in scope["query_string"]
            or b"\x00" in scope["query_string"]
            or any(b"\x00" in value for _, value in scope["headers"])
        ):
            raise InvalidCharacters()
        for value in (scope.get("path_params") or {}).values():
            if isinstance(value, int) and not 1 <= value <= DB_ID_MAX:
                raise NotFound()
        if scope.get("method") in BODY_METHODS:
            _check_media_type(scope)
            receive = await _checked_body(scope, receive)
        await app(scope, receive, send)

    return middleware


async def _checked_body(scope: Scope, receive: Receive) -> Receive:
    """Read a non-multipart body (every JSON body; uploads are multipart and bounded by the
    app's own limit), refuse it if hazardous, and hand the handler a receive that replays it."""
    headers = dict(scope["headers"])
    if headers.get(b"content-type", b"").lower().startswith(b"multipart/"):
        return receive
    settings: Settings = scope["app"].state.settings
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > settings.max_json_bytes:
            raise PayloadTooLarge.limit("提交的内容", settings.max_json_bytes)
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    hazard = json_hazard(body, settings.max_json_depth)
    if hazard == "nul":
        raise InvalidCharacters()
    if hazard == "deep":
        raise BadRequest("提交的数据层级过深", code="too_deeply_nested")
    replayed = False

    async def replay() -> ReceiveMessage:
        nonlocal replayed
        if not replayed:
            replayed = True
            event: HTTPRequestEvent = {"type": "http.request", "body": body, "more_body": False}
            return event
        return await receive()

    return replay


def request_id_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    state = connection.scope.get("state") or {}
    return state.get("request_id")


def client_addr_of(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings) -> str:
    """The address the request came from. Behind `trusted_proxy_hops` proxies, each appending
    the address it saw to `X-Forwarded-For`, that is the element so many places from the right
    (werkzeug's ProxyFix `x_for`, uvicorn's proxy headers): everything left of it was written
    by the client and proves nothing. Too few elements or no address there: the peer."""
    peer = connection.client.host if connection.client else "-"
    hops = settings.trusted_proxy_hops
    if hops <= 0:
        return peer
    chain = [
        element.strip()
        for line in connection.headers.getall("x-forwarded-for", [])
        for element in line.split(",")
    ]
    if len(chain) < hops:
        return peer
    try:
        return str(ipaddress.ip_address(chain[-hops]))
    except ValueError:
        return peer


def actor_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Actor:
    settings: Settings = connection.app.state.settings
    user = connection.scope.get("user")
    addr = client_addr_of(connection, settings)
    if isinstance(user, Principal):
        return user.actor(addr, request_id_of(connection))
    return Actor(None, None, addr, request_id_of(connection))


# A route with this option checks its caller in the statement of its read (`read_as_caller`)
# instead of a query of its own: the parent's hot reads, one database round trip each.
PRINCIPAL_IN_READ = "principal_in_read"


class BearerAuthentication(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        # Straight from the scope (ASGI header names are lower case): `connection.headers`
        # would parse every header of the request for this one.
        header = next(
            (value for name, value in connection.scope["headers"] if name == b"authorization"),
            b"",
        ).decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized()
        state = connection.app.state
        claims = state.verifier.verify(token.strip())
        if connection.route_handler.opt.get(PRINCIPAL_IN_READ):
            return AuthenticationResult(user=None, auth=claims)  # the handler's read checks
        principal = await load_principal(state.settings, claims)
        # Here rather than in an app-wide guard: Litestar copies the route handler for each
        # guard it runs (≈ 20 µs a copy), on every request.
        _require_current_password(principal, connection.route_handler)
        if principal.scope.grant_id is not None:  # a sysadmin under a support grant
            actor = principal.actor(
                client_addr_of(connection, state.settings), request_id_of(connection)
            )
            await audit_request(
                principal,
                actor,
                str(dict(connection.scope).get("method", "WEBSOCKET")),
                connection.url.path,
            )
        return AuthenticationResult(user=principal, auth=claims)


async def read_as_caller(
    connection: ASGIConnection[Any, Any, Any, Any],
    read_sql: str,
    *args: Any,
    key: str,
    order_by: Sequence[str] = (),
) -> tuple[Principal, list[Mapping[str, Any]]]:
    """On a `PRINCIPAL_IN_READ` route: the caller's account and session read in the same
    statement as `read_sql` (`principal.with_principal`), checked exactly as every other
    route checks them (sealed, disabled, logged out, password to change), and the read's rows
    (those whose `key` column is not NULL). Build `read_sql` from the token's claims
    (`claims_of`), never from what the rows say, and use its rows only as the caller that
    comes back may see them: the statement runs before the caller is known."""
    claims = claims_of(connection)
    rows = await fetch_records(with_principal(read_sql, order_by), *principal_args(claims), *args)
    principal = principal_of(connection.app.state.settings, claims, rows[0] if rows else None)
    connection.scope["user"] = principal
    _require_current_password(principal, connection.route_handler)
    return principal, [row for row in rows if row[key] is not None]


async def load_caller(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """On a `PRINCIPAL_IN_READ` route whose read cannot carry the check: the caller checked on
    its own, as the middleware does on every other route."""
    principal = await load_principal(connection.app.state.settings, claims_of(connection))
    connection.scope["user"] = principal
    _require_current_password(principal, connection.route_handler)
    return principal


def claims_of(connection: ASGIConnection[Any, Any, Any, Any]) -> AccessClaims:
    claims = connection.scope.get("auth")
    if not isinstance(claims, AccessClaims):
        raise Unauthorized()
    return claims


def _require_current_password(user: Any, handler: BaseRouteHandler) -> None:
    """An expired (or admin-set) password must be changed before anything else: checked
    where the caller is loaded (`BearerAuthentication`, `read_as_caller`, `load_caller`)."""
    if (
        isinstance(user, Principal)
        and user.password_change_required
        and not handler.opt.get("allow_expired_password")
    ):
        raise Forbidden("密码已过期或为初始密码，请先修改密码", code="password_change_required")


Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


def allowed(action: Action) -> Guard:
    """A guard refusing, before the request's body is read, whoever may not take `action`
    (`backend/accounts/permissions.py`), with the action's own code. For checks that need
    no row; a check on a row is the service's `require_over`, or the scope's 404."""

    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        if handler.opt.get(PRINCIPAL_IN_READ):
            return  # the caller is known only after the read: it calls `require` itself
        user = connection.scope.get("user")
        if not isinstance(user, Principal):
            raise RULES[action].refusal.error()
        require(user, action)

    guard.__name__ = guard.__qualname__ = f"allowed_{action.value}"
    return guard


def _error(
    request: Request[Any, Any, Any],
    status: int,
    code: str,
    message: str,
    field_errors: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    # Unrouted requests (404, 405) never reach the app's middleware, and errors raised by a
    # middleware leave past the others' send wrappers: the id and safety headers are set here.
    request_id = request_id_of(request) or new_request_id()
    headers = {
        **_security_headers("application/json"),
        **(headers or {}),
        "X-Request-ID": request_id,
    }
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if field_errors:
        body["field_errors"] = field_errors
    return Response(body, status_code=status, headers=headers)


def domain_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, DomainError)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    if exc.status == 401 and request.headers.get("authorization") is not None:
        # RFC 6750: a token was sent and refused; `token_expired` tells the client to refresh.
        challenge = f'{BEARER_REALM}, error="invalid_token", error_description="{exc.code}"'
        headers = {**(headers or {}), "WWW-Authenticate": challenge}
    elif exc.status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": BEARER_REALM}
    return _error(request, exc.status, exc.code, exc.message, exc.field_errors, headers)


def validation_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, ValidationException)
    items = exc.extra if isinstance(exc.extra, list) else []
    if any(isinstance(i, dict) and i.get("message") == "'data'" for i in items):
        multipart = _expected_media(request.scope) == RequestEncodingType.MULTI_PART
        message = f"请求缺少内容，请以 {'multipart/form-data' if multipart else 'JSON'} 格式提交"
        return _error(request, 400, "body_missing", message)
    handler = request.scope.get("route_handler")
    if explained := required_error(items, handler):
        field, code, message = explained
        return _error(request, 400, code, message, {field: message})
    fields = field_errors(items, handler)
    return _error(request, 400, "validation_error", "提交的数据不符合要求，请检查后重试", fields)


def http_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if isinstance(exc, NotAuthorizedException):
        status = 401
    elif isinstance(exc, PermissionDeniedException):
        status = 403
    code, message = STATUS_MESSAGES.get(status, ("http_error", "请求未能完成"))
    if isinstance(exc, NotFoundException):
        # Litestar's own 404 means no route matched; a missing record is a DomainError NotFound.
        code, message = "no_such_path", "请求的地址不存在，请检查路径"
    elif status == 400 and str(exc.detail).startswith("JSON is malformed"):
        code, message = "malformed_json", "提交的内容不是有效的 JSON"
    elif status == 400 and exc.detail == "Invalid multipart/form-data":
        code, message = "malformed_multipart", "上传的内容不是有效的 multipart/form-data"
    elif status == 400 and exc.detail == "Request Entity Too Large":  # too many multipart parts
        code, message = "too_many_parts", "上传的内容分段过多"
    elif status == 413:
        # Past the operation's `request_max_body_size`: its own words for the limit, if any.
        handler = request.scope.get("route_handler")
        limit = getattr(handler, "opt", {}).get("too_large")
        if limit is not None:
            code, message = limit.code, limit.message
    if status >= 500:
        log.error("request %s failed: %r", request_id_of(request), exc, exc_info=exc)
    return _error(request, status, code, message)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("request %s failed", request_id_of(request), exc_info=exc)
    code, message = STATUS_MESSAGES[500]
    return _error(request, 500, code, message)


def redis_down_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Redis unreachable wherever it is used (throttles, codes, the queue): 503 and
    Retry-After, not a 500; what the request wrote before is its service's business."""
    log.warning("request %s: Redis unavailable (%s)", request_id_of(request), type(exc).__name__)
    return domain_error_handler(request, ServiceUnavailable())


def undecodable_part_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A multipart text part (one without a file name) that is not UTF-8: Litestar's parser
    decodes it before any handler runs. Anywhere else a UnicodeDecodeError is a bug (500)."""
    if _expected_media(request.scope) == RequestEncodingType.MULTI_PART:
        message = (
            "上传的内容不是有效的 multipart/form-data：文字部分须为 UTF-8 编码，照片须带文件名"
        )
        return _error(request, 400, "malformed_multipart", message)
    return internal_error_handler(request, exc)


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    UnicodeDecodeError: undecodable_part_handler,
    DomainError: domain_error_handler,
    RedisConnectionError: redis_down_handler,
    RedisTimeoutError: redis_down_handler,
    ValidationException: validation_error_handler,
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
}

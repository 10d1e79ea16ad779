"""What every request passes through: a request id, the caller's identity, one error shape.

Errors reach the client as `{"code", "message", "field_errors"?, "request_id"}`; a stack
trace or SQL never does, and a 500 has the same shape.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import uuid
from typing import Any

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from backend.accounts.audit import Actor
from backend.accounts.principal import Principal, load_principal
from backend.accounts.roles import STAFF_ROLES
from backend.config import Settings
from backend.errors import DomainError, Forbidden, ServiceUnavailable, Unauthorized

log = logging.getLogger("registry.http")

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


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Give each request an id (the caller's own, if well-formed) and echo it back."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await app(scope, receive, send_with_id)

    return middleware


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


class BearerAuthentication(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized()
        state = connection.app.state
        claims = state.verifier.verify(token.strip())
        principal = await load_principal(state.settings, claims)
        return AuthenticationResult(user=principal, auth=claims)


async def requires_current_password(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """An expired (or admin-set) password must be changed before anything else."""
    user = connection.scope.get("user")
    if (
        isinstance(user, Principal)
        and user.password_change_required
        and not handler.opt.get("allow_expired_password")
    ):
        raise Forbidden("密码已过期或为初始密码，请先修改密码", code="password_change_required")


async def requires_staff(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    user = connection.scope.get("user")
    if not isinstance(user, Principal) or user.role not in STAFF_ROLES:
        raise Forbidden()


def _error(
    request: Request[Any, Any, Any],
    status: int,
    code: str,
    message: str,
    field_errors: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    request_id = request_id_of(request)
    if request_id is None:
        # Unrouted requests (404, 405) never reach the app's middleware: give them an id here.
        request_id = uuid.uuid4().hex
        headers = {**(headers or {}), "X-Request-ID": request_id}
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if field_errors:
        body["field_errors"] = field_errors
    return Response(body, status_code=status, headers=headers)


def domain_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, DomainError)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return _error(request, exc.status, exc.code, exc.message, exc.field_errors, headers)


def validation_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, ValidationException)
    fields: dict[str, str] = {}
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            key = str(item.get("key") or item.get("source") or "body")
            fields[key] = f"取值无效：{item.get('message', '')}"
    return _error(request, 400, "validation_error", "提交的数据不符合要求，请检查后重试", fields)


def http_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if isinstance(exc, NotAuthorizedException):
        status = 401
    elif isinstance(exc, PermissionDeniedException):
        status = 403
    code, message = STATUS_MESSAGES.get(status, ("http_error", "请求未能完成"))
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


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    DomainError: domain_error_handler,
    RedisConnectionError: redis_down_handler,
    RedisTimeoutError: redis_down_handler,
    ValidationException: validation_error_handler,
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
}

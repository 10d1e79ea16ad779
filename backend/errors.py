"""Expected failures, raised by services and rendered by one handler in `backend/http.py`.

    DomainError (code, Chinese message, HTTP status)
    ├── BadRequest            400  invalid input the schema could not catch
    │   └── InvalidCharacters 400  a NUL, which no text column can hold
    ├── Unauthorized          401  no valid credentials
    ├── Forbidden             403  the role may never do this
    ├── NotFound              404  absent, or outside the caller's scope: the same answer
    ├── Conflict              409  the state does not allow it
    ├── PayloadTooLarge       413  a body or file past its limit; the message says the limit
    ├── UnsupportedMediaType  415  a body of another kind than the operation reads
    ├── OutsideWindow         409  the campaign's window or switch is closed
    ├── TooManyAttempts       429  throttled
    ├── DatabaseUnavailable   503  the readiness probe found the database not answering
    └── ServiceUnavailable    503  a service it needs (Redis) is down; with Retry-After

Every error reaches the client as one JSON shape:
`{"code", "message", "field_errors"?, "request_id"}`.
"""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "bad_request"
    message = "请求有误"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        field_errors: dict[str, str] | None = None,
        retry_after: int | None = None,
        audited: bool = False,
    ) -> None:
        self.message = message or type(self).message
        self.code = code or type(self).code
        self.field_errors = field_errors or {}
        self.retry_after = retry_after
        self.audited = audited  # the service wrote its own audit row: the 403 hook skips it
        super().__init__(f"{self.code}: {self.message}")


class BadRequest(DomainError):
    pass


class InvalidCharacters(BadRequest):
    code = "invalid_characters"
    message = "提交的内容含有不允许的控制字符"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    message = "请先登录"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    message = "您的角色无权进行此操作"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    message = "未找到该记录"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    message = "当前状态不允许此操作"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"
    message = "提交的内容过大"

    @classmethod
    def limit(cls, what: str, size: int, code: str | None = None) -> PayloadTooLarge:
        """The 413 that says the limit: `limit("照片", 15 * 2**20)` → 照片不能超过 15 MB."""
        return cls(f"{what}不能超过 {size / 1024 / 1024:g} MB", code=code)


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported_media_type"
    message = "不支持的内容类型"


class OutsideWindow(DomainError):
    status = 409
    code = "outside_window"
    message = "不在核查工作开放时间内"


class TooManyAttempts(DomainError):
    status = 429
    code = "too_many_attempts"
    message = "尝试次数过多，请稍后再试"


class DatabaseUnavailable(DomainError):
    """The database did not answer the readiness probe (`GET /health/ready`)."""

    status = 503
    code = "database_unavailable"
    message = "数据库暂时不可用，请稍后再试"


class ServiceUnavailable(DomainError):
    """Redis (throttles, sign-up codes, the job queue) is unreachable; `backend/http.py`
    answers every Redis connection error with this."""

    status = 503
    code = "service_unavailable"
    message = "服务暂时不可用，请稍后再试"
    RETRY_AFTER = 15  # seconds: about as long as a Redis restart or failover takes

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message, code=code, retry_after=self.RETRY_AFTER)

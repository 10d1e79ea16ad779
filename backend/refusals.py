"""Every 403 is audited, in one place: Litestar's after-exception hook.

A refusal (a `Forbidden` raised by a service or a guard, or Litestar's own
`PermissionDeniedException`) writes one audit row: the actor, action `forbidden`, the object
(the route's last `…_id` path parameter, else its first path segment) and, in `after`, the
error code, the route template and the path parameters that are safe to keep. Query strings
and bodies are never written (they may carry ID numbers and phones), nor a path value that
could be one.

The row goes through `backend/accounts/refusal_queue.py` (a pending row committed before the
403 leaves, moved into the audit chain by the worker), in a context of its own (so it never
joins, and is never rolled back with, a transaction the request had open); if writing fails,
the error is logged and the client still gets its 403, never a 500.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.types import Scope

from backend.accounts.refusal_queue import record_refusal
from backend.errors import DomainError
from backend.http import actor_of

log = logging.getLogger("registry.audit")

AUDIT_TIMEOUT_SECONDS = 5.0
# A path value kept in the audit row: short, plain, and without 7 digits in a row (so never
# a phone number or an ID number; region codes, 6 digits, stay).
_SAFE_VALUE = re.compile(r"^(?!.*\d{7})[A-Za-z0-9_.-]{1,40}$")


def refusal_code(exc: Exception) -> str | None:
    """The code of a 403, or None for any other error."""
    if isinstance(exc, DomainError):
        return exc.code if exc.status == 403 and not exc.audited else None
    if isinstance(exc, HTTPException) and exc.status_code == 403:
        return "forbidden"
    return None


def safe_params(params: dict[str, Any]) -> dict[str, Any]:
    return {
        name: value
        for name, value in params.items()
        if (isinstance(value, int) and not isinstance(value, bool))
        or (isinstance(value, str) and _SAFE_VALUE.match(value))
    }


def _target(template: str, params: dict[str, Any]) -> tuple[str, object]:
    ids = [name for name in params if name.endswith("_id") and name in safe_params(params)]
    if ids:
        return ids[-1].removesuffix("_id"), params[ids[-1]]
    first = template.strip("/").split("/", 1)[0]
    return (first or "/")[:40], None


async def audit_refusal(exc: Exception, scope: Scope) -> None:
    """The after-exception hook: one audit row per 403 (see the module docstring)."""
    code = refusal_code(exc)
    if code is None or scope["type"] != ScopeType.HTTP:
        return
    template: str = scope.get("path_template") or ""
    params = dict(scope.get("path_params") or {})
    entity, entity_id = _target(template, params)
    after: dict[str, Any] = {"code": code, "route": f"{scope.get('method', '')} {template}"}
    if kept := safe_params(params):
        after["params"] = kept
    try:
        actor = actor_of(ASGIConnection(scope))
        write = record_refusal(actor, "forbidden", entity, entity_id, after=after)
        await asyncio.wait_for(write, AUDIT_TIMEOUT_SECONDS)
    except Exception as error:
        log.error(
            "could not audit the refusal %s on %s: %r",
            code,
            after["route"],
            error,
            exc_info=error,
        )

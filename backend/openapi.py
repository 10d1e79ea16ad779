"""What the OpenAPI schema says beyond the handlers' types: which errors each operation can
answer, and who must sign in.

Each handler declares its error answers in its decorator, by status and `code`:

    @post("/confirm", ..., responses=errors(JSON_BODY, REDIS, {409: "account_exists"}))

and `errors` turns them into responses whose body is the one error shape (`Error`), with the
possible codes in each description. `finish_schema` then adds the bearer scheme and puts it on
every operation that is not public. `tests/test_openapi_contract.py` holds every operation to
this.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Annotated

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Reference,
    Schema,
    SecurityScheme,
)

# The codes a status's answer may carry, space-separated.
ErrorCodes = Mapping[int, str]

# Every operation behind the bearer middleware (backend/http.py `BearerAuthentication`).
SIGNED_IN: ErrorCodes = {
    401: "unauthorized invalid_token token_expired account_inactive",
    403: "password_change_required",
}
# The same, for the few operations an expired password may still call.
SIGNED_IN_ANY_PASSWORD: ErrorCodes = {401: SIGNED_IN[401]}
# The staff endpoints (`allowed(Action.use_staff_api)`): a parent's token is refused.
STAFF: ErrorCodes = {403: "forbidden"}
# Query parameters out of their range or of the wrong type.
QUERY: ErrorCodes = {400: "validation_error invalid_characters"}
# A JSON body: the schema's checks, the hostile-input middleware's, and its size.
JSON_BODY: ErrorCodes = {
    400: "validation_error invalid_characters too_deeply_nested body_missing malformed_json",
    413: "payload_too_large",
    415: "json_expected",
}
# A multipart upload: a missing or malformed file part, or past the request size limit.
UPLOAD: ErrorCodes = {
    400: "validation_error body_missing malformed_multipart too_many_parts",
    413: "payload_too_large",
    415: "multipart_expected",
}
# A row named in the path that is missing or outside the caller's scope (the same answer).
BY_ID: ErrorCodes = {404: "not_found"}
# Uses Redis (throttles, codes, the queue): while Redis is unreachable, 503 with Retry-After.
REDIS: ErrorCodes = {503: "service_unavailable"}

STATUS_NAMES = {
    400: "Bad request",
    401: "Not signed in, or the token is refused",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Too large",
    415: "Unsupported media type",
    422: "Unprocessable",
    429: "Too many requests",
    503: "Service unavailable (retry after `Retry-After` seconds)",
}

BEARER_SCHEME = "BearerToken"
SECURITY: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]
ERROR_REF = "#/components/schemas/Error"


class Error(msgspec.Struct):
    """Every error answer, whatever its status."""

    code: Annotated[
        str,
        msgspec.Meta(
            description="Stable English identifier: what a client branches on",
            examples=["token_expired"],
        ),
    ]
    message: Annotated[
        str, msgspec.Meta(description="For the user, in Chinese", examples=["登录已过期"])
    ]
    request_id: Annotated[str, msgspec.Meta(description="Quote it when reporting a problem")]
    field_errors: (
        Annotated[
            dict[str, str],
            msgspec.Meta(description="Per input field (its name or JSON path): what is wrong"),
        ]
        | None
    ) = None


def errors(*groups: ErrorCodes) -> dict[int, ResponseSpec]:
    """The error responses of one operation, merged from `groups` (constants above and the
    operation's own `{status: "code other_code"}`)."""
    merged: dict[int, list[str]] = {}
    for group in groups:
        for status, codes in group.items():
            known = merged.setdefault(status, [])
            known += [code for code in codes.split() if code not in known]
    return {
        status: ResponseSpec(
            data_container=Error,
            generate_examples=False,
            description=f"{STATUS_NAMES.get(status, 'Error')}. `code`: "
            + ", ".join(f"`{code}`" for code in codes),
        )
        for status, codes in sorted(merged.items())
    }


def error_codes(description: str) -> list[str]:
    """The codes an error response's description lists (for tests and docs)."""
    _, _, listed = description.partition("`code`:")
    return re.findall(r"`([a-z0-9_]+)`", listed)


def finish_schema(openapi: OpenAPI, public_paths: Iterable[str]) -> None:
    """Declare the bearer scheme and require it on every operation outside `public_paths`
    (the authentication middleware's own exclusion patterns)."""
    assert isinstance(openapi.components, Components)
    openapi.components.security_schemes = {
        **(openapi.components.security_schemes or {}),
        BEARER_SCHEME: SecurityScheme(
            type="http",
            scheme="bearer",
            bearer_format="JWT",
            description="The access token from `POST /auth/login` (or sign-up), as "
            "`Authorization: Bearer <token>`. When it expires the answer is 401 `token_expired` "
            'with `WWW-Authenticate: Bearer ... error="invalid_token"`: trade the refresh '
            "token at `POST /auth/refresh` and retry.",
        ),
    }
    _rename_generic_components(openapi)
    public = [re.compile(pattern) for pattern in public_paths]
    for path, item in (openapi.paths or {}).items():
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, method, None)
            if operation is None:
                continue
            if not any(pattern.search(path) for pattern in public):
                operation.security = SECURITY
            _replace_litestar_400(operation)
            _mark_binary(operation)


_GENERIC_NAME = re.compile(r"^([A-Za-z]+)_(?:[A-Za-z_]\w*\.)+([A-Za-z]\w*)_$")


def _rename_generic_components(openapi: OpenAPI) -> None:
    """`Page_backend.accounts.schemas.AccountRead_` (Litestar's name for `Page[AccountRead]`)
    becomes `PageAccountRead`, the name a generated client would give it anyway."""
    assert isinstance(openapi.components, Components)
    schemas = openapi.components.schemas or {}
    renamed = {
        name: f"{match[1]}{match[2]}"
        for name in schemas
        if (match := _GENERIC_NAME.match(name)) and f"{match[1]}{match[2]}" not in schemas
    }
    if not renamed:
        return
    openapi.components.schemas = {renamed.get(name, name): body for name, body in schemas.items()}
    refs = {
        f"#/components/schemas/{old}": f"#/components/schemas/{new}" for old, new in renamed.items()
    }
    _rewrite_refs(openapi, refs, set())


def _rewrite_refs(node: object, refs: Mapping[str, str], seen: set[int]) -> None:
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, Reference):
        node.ref = refs.get(node.ref, node.ref)
    elif isinstance(node, dict):
        for value in node.values():
            _rewrite_refs(value, refs, seen)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _rewrite_refs(value, refs, seen)
    elif dataclasses.is_dataclass(node):
        for field in dataclasses.fields(node):
            _rewrite_refs(getattr(node, field.name), refs, seen)


def _mark_binary(operation: Operation) -> None:
    """Photos, crops and PDFs: say the body is bytes, so generated clients hand over bytes."""
    for response in (operation.responses or {}).values():
        if not isinstance(response, OpenAPIResponse):
            continue
        for media_type, media in (response.content or {}).items():
            schema = media.schema
            if not media_type.endswith("json") and isinstance(schema, Schema):
                schema.format = OpenAPIFormat.BINARY


def _replace_litestar_400(operation: Operation) -> None:
    """Litestar documents its own validation body (`status_code`, `detail`, `extra`) as the
    400 of every operation with parameters; this API answers it as `validation_error`."""
    responses = operation.responses or {}
    answer = responses.get("400")
    if isinstance(answer, OpenAPIResponse) and "`code`:" not in answer.description:
        responses["400"] = OpenAPIResponse(
            description=f"{STATUS_NAMES[400]}. `code`: `validation_error`",
            content={"application/json": OpenAPIMediaType(schema=Reference(ERROR_REF))},
        )

"""The API contract, held on every operation the app serves (new ones included, with no change
here): what a team building the phone app reads in `/schema/openapi.json` must be complete
and true. Each operation has a summary, a description saying who may call it and its errors,
a readable unique operationId, its error answers in the one error shape with their codes,
and the bearer requirement unless it is public; status-like fields are enums."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar

from app import PUBLIC_PATHS
from backend.openapi import BEARER_SCHEME, SIGNED_IN, error_codes
from backend.parents.checks import ServerVerdict
from backend.parents.schemas import FormState, UploadStatus

METHODS = ("get", "put", "post", "patch", "delete")
OPERATION_ID = re.compile(r"^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+$|^[a-z][a-z0-9]+$")
ERROR_REF = "#/components/schemas/Error"
# Field and parameter names whose values are a closed set: the schema must show the set.
STATUS_LIKE = re.compile(
    r"^(status|state|verdict|retake_reason|role|kind|level|phase|action|token_type)$"
    r"|_(status|state|verdict|reason|role|kind|level)$"
)
# The statuses a client branches on; 500 is not documented (it never should happen).
ERROR_STATUSES = {400, 401, 403, 404, 409, 413, 415, 422, 429, 503}


@pytest.fixture(scope="module")
def schema(app: Litestar) -> dict[str, Any]:
    return app.openapi_schema.to_schema()


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def is_public(path: str) -> bool:
    return any(re.search(pattern, path) for pattern in PUBLIC_PATHS)


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def is_enum(schema: dict[str, Any], node: dict[str, Any]) -> bool:
    """An enum, a const, or a nullable / array of one."""
    node = resolve(schema, node)
    if "enum" in node or "const" in node:
        return True
    variants = node.get("oneOf") or node.get("anyOf")
    if variants:
        return all(resolve(schema, v).get("type") == "null" or is_enum(schema, v) for v in variants)
    if node.get("type") == "array":
        return is_enum(schema, node.get("items", {}))
    return False


def documented_errors(doc: str) -> list[tuple[str, int]]:
    """(code, status) pairs a description's Errors part names: "`a`, `b` (409) when …"."""
    _, _, errors = doc.partition("Errors")
    pairs = []
    for group in re.finditer(
        r"((?:`[a-z0-9_]+`(?:,\s*|\s+or\s+|\s+and\s+)?)+)\s*\((\d{3})", errors
    ):
        pairs += [(code, int(group[2])) for code in re.findall(r"`([a-z0-9_]+)`", group[1])]
    return pairs


def test_every_operation_is_described(schema: dict[str, Any]) -> None:
    problems = []
    for method, path, operation in operations(schema):
        where = f"{method} {path}"
        summary = operation.get("summary") or ""
        if not summary or len(summary) > 80 or summary.endswith(".") or summary[0].islower():
            problems.append(f"{where}: summary {summary!r} (short, imperative, capitalised)")
        description = operation.get("description") or ""
        if "Who may call" not in description:
            problems.append(f"{where}: description lacks 'Who may call'")
        if "Errors" not in description:
            problems.append(f"{where}: description lacks 'Errors'")
        if not operation.get("tags"):
            problems.append(f"{where}: no tags")
    assert problems == []


def test_operation_ids_are_explicit_readable_and_unique(schema: dict[str, Any]) -> None:
    """Litestar's own ids (`FormBatchesBatchIdBatch`) start with a capital: set
    `operation_id="getFormBatch"` in the decorator."""
    ids = [operation.get("operationId", "") for _, _, operation in operations(schema)]
    bad = [i for i in ids if not OPERATION_ID.match(i)]
    assert bad == []
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_every_schema_has_a_name_of_its_own(schema: dict[str, Any]) -> None:
    """Two classes of one name in different modules come out module-prefixed
    (`roll_schemas_DecisionWrite`), and client generators then drop the operations that use
    them: each name a client sees must be one class's."""
    prefixed = [
        name
        for name in schema["components"]["schemas"]
        if re.match(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*_[A-Z]", name)
    ]
    assert prefixed == []


def test_every_error_answer_has_the_error_shape_and_its_codes(schema: dict[str, Any]) -> None:
    problems = []
    for method, path, operation in operations(schema):
        where = f"{method} {path}"
        responses = operation["responses"]
        for status, response in responses.items():
            if int(status) < 400:
                continue
            if int(status) not in ERROR_STATUSES:
                problems.append(f"{where}: documents {status}")
            content = response.get("content", {}).get("application/json", {})
            if content.get("schema", {}).get("$ref") != ERROR_REF:
                problems.append(f"{where} {status}: not the Error schema")
            if not error_codes(response.get("description", "")):
                problems.append(f"{where} {status}: description lists no `code`")
        for code, status in documented_errors(operation.get("description", "")):
            if code not in error_codes(responses.get(str(status), {}).get("description", "")):
                problems.append(f"{where}: description names `{code}` ({status}), responses don't")
        parameters = operation.get("parameters", [])
        if "requestBody" in operation:
            for status in ("400", "413"):
                if status not in responses:
                    problems.append(f"{where}: takes a body but documents no {status}")
        if any(p["in"] == "path" for p in parameters) and "404" not in responses:
            problems.append(f"{where}: names a row in its path but documents no 404")
        if any(p["in"] == "query" for p in parameters) and "400" not in responses:
            problems.append(f"{where}: takes query parameters but documents no 400")
    assert problems == []


def test_the_error_schema_is_the_one_sent(schema: dict[str, Any]) -> None:
    error = schema["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"code", "message", "field_errors", "request_id"}
    assert set(error["required"]) == {"code", "message", "request_id"}


def test_the_bearer_scheme_guards_every_operation_but_the_public_ones(
    schema: dict[str, Any],
) -> None:
    scheme = schema["components"]["securitySchemes"][BEARER_SCHEME]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    expired = set(SIGNED_IN[401].split())
    problems = []
    for method, path, operation in operations(schema):
        where = f"{method} {path}"
        security = operation.get("security")
        if is_public(path):
            if security:
                problems.append(f"{where}: public, but asks for a token")
            continue
        if security != [{BEARER_SCHEME: []}]:
            problems.append(f"{where}: needs a token, but the schema does not say so")
        codes = set(error_codes(operation["responses"].get("401", {}).get("description", "")))
        if not expired <= codes:
            problems.append(f"{where}: 401 lacks {sorted(expired - codes)}")
    assert problems == []
    public = {path for _, path, _ in operations(schema) if is_public(path)}
    assert {"/auth/login", "/auth/refresh", "/health"} <= public


def test_status_like_fields_and_parameters_are_enums(schema: dict[str, Any]) -> None:
    bare = []
    for name, component in schema["components"]["schemas"].items():
        for field, node in (component.get("properties") or {}).items():
            if STATUS_LIKE.search(field) and not is_enum(schema, node):
                bare.append(f"{name}.{field}")
    for method, path, operation in operations(schema):
        for parameter in operation.get("parameters", []):
            if STATUS_LIKE.search(parameter["name"]) and not is_enum(
                schema, parameter.get("schema", {})
            ):
                bare.append(f"{method} {path} ?{parameter['name']}")
    assert bare == []


def test_the_form_states_cover_every_verdict() -> None:
    """An upload's status is its verdict once checked; a family's state is its upload's."""
    assert {v.value for v in ServerVerdict} <= {s.value for s in UploadStatus}
    assert {s.value for s in UploadStatus} <= {s.value for s in FormState}


def test_request_bodies_show_examples_where_the_form_is_not_obvious(
    schema: dict[str, Any],
) -> None:
    """Phones, region codes, registration codes, dates: a client developer sees an example."""
    components = schema["components"]["schemas"]
    missing = []
    for name, component in components.items():
        for field, node in (component.get("properties") or {}).items():
            node = resolve(schema, node)
            variants = node.get("oneOf") or [node]
            formats = {v.get("format") for v in variants} | {
                "phone" if field.endswith("phone") else None,
                "region" if field == "region_code" else None,
                "code" if field in ("registration_code", "sms_code") else None,
            }
            needs = formats & {"date", "date-time", "phone", "region", "code"}
            is_input = name in _input_schemas(schema)
            if needs and is_input and not any(v.get("examples") for v in [node, *variants]):
                missing.append(f"{name}.{field}")
    assert missing == []


def _input_schemas(schema: dict[str, Any]) -> set[str]:
    names = set()
    for _, _, operation in operations(schema):
        for media in operation.get("requestBody", {}).get("content", {}).values():
            ref = media.get("schema", {}).get("$ref")
            if ref:
                names.add(ref.rsplit("/", 1)[1])
    return names

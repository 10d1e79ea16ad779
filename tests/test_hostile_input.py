"""Hostile input never reaches the database as a 500: each attack a tester used, by name, with
the status, error code and Chinese message a client sees, on both engines."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from backend.accounts.roles import Role
from backend.config import Settings
from backend.records.tables import Campaign
from tests.factories import World, bearer, build_world, login, make_students

NOT_FOUND = ("not_found", "未找到该记录")
INVALID = ("validation_error", "提交的数据不符合要求，请检查后重试")
NUL = ("invalid_characters", "提交的内容含有不允许的控制字符")
NESTED = ("too_deeply_nested", "提交的数据层级过深")


@dataclass(frozen=True)
class Attack:
    name: str
    role: Role
    method: str
    url: str
    status: int
    error: tuple[str, str]
    body: Any = None
    content: bytes | None = None  # a raw JSON body, sent as is


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


ATTACKS = [
    # ids beyond the int4 column range: the same answer as a missing row
    Attack("student id past int4", Role.registrar, "GET", "/students/2147483648", 404, NOT_FOUND),
    Attack("student id past int8", Role.registrar, "GET", "/students/" + "9" * 30, 404, NOT_FOUND),
    Attack("negative id past int4", Role.registrar, "GET", "/students/-2147483649", 404, NOT_FOUND),
    Attack(
        "reveal id past int4",
        Role.registrar,
        "POST",
        "/students/2147483648/reveal",
        404,
        NOT_FOUND,
        body={"field": "id_number"},
    ),
    Attack("school id past int4", Role.sysadmin, "GET", "/org/schools/2147483648", 404, NOT_FOUND),
    Attack("account id past int8", Role.sysadmin, "GET", "/accounts/" + "9" * 20, 404, NOT_FOUND),
    Attack("upload id past int4", Role.parent, "GET", "/uploads/4294967296", 404, NOT_FOUND),
    Attack("photo id past int4", Role.parent, "GET", "/uploads/2147483648/photo", 404, NOT_FOUND),
    Attack(
        "campaign id past int4", Role.province_admin, "GET", "/campaigns/2147483648", 404, NOT_FOUND
    ),
    Attack(
        "class id past int4 on issue",
        Role.registrar,
        "POST",
        "/form-batches",
        400,
        INVALID,
        body={"class_id": 2147483648},
    ),
    Attack("child id past int4", Role.parent, "GET", "/my/children/2147483648", 404, NOT_FOUND),
    # pages and filters beyond range: refused as invalid input
    Attack(
        "page past int8",
        Role.registrar,
        "GET",
        "/students?page=9223372036854775807",
        400,
        INVALID,
    ),
    Attack("page past int4", Role.sysadmin, "GET", "/accounts?page=2147483648", 400, INVALID),
    Attack(
        "families page past int8", Role.teacher, "GET", "/families?page=" + "9" * 25, 400, INVALID
    ),
    Attack(
        "school filter past int4",
        Role.registrar,
        "GET",
        "/students?school_id=2147483648",
        400,
        INVALID,
    ),
    Attack(
        "class filter past int8",
        Role.teacher,
        "GET",
        "/families?class_id=" + "9" * 20,
        400,
        INVALID,
    ),
    Attack(
        "drafts filter past int4",
        Role.teacher,
        "GET",
        "/correction-drafts?class_id=-2147483649",
        400,
        INVALID,
    ),
    Attack(
        "classes filter past int4",
        Role.sysadmin,
        "GET",
        "/org/classes?school_id=2147483648",
        400,
        INVALID,
    ),
    Attack(
        "account body id past int4",
        Role.sysadmin,
        "POST",
        "/accounts",
        400,
        INVALID,
        body={
            "role": "teacher",
            "phone": "13912345678",
            "name": "王老师",
            "initial_password": "Xk9-long-enough-2026",
            "region_code": "330106",
            "school_id": 2147483648,
            "class_id": 1,
        },
    ),
    # the staff administration and campaign-account routes of issue 12
    Attack(
        "reset id past int4",
        Role.registrar,
        "POST",
        "/accounts/2147483648/password-reset",
        404,
        NOT_FOUND,
        body={"delivery": "show"},
    ),
    Attack(
        "throttle lift id past int4",
        Role.registrar,
        "POST",
        "/accounts/2147483648/read-throttle/lift",
        404,
        NOT_FOUND,
    ),
    Attack(
        "campaign account id past int4",
        Role.county_reviewer,
        "GET",
        "/campaign-accounts/2147483648",
        404,
        NOT_FOUND,
    ),
    Attack(
        "not-started campaign past int4",
        Role.province_admin,
        "GET",
        "/campaigns/2147483648/schools-not-started",
        404,
        NOT_FOUND,
    ),
    Attack(
        "campaign account school past int4",
        Role.county_reviewer,
        "POST",
        "/campaign-accounts",
        400,
        INVALID,
        body={
            "campaign_id": 1,
            "phone": "13600000009",
            "name": "核查",
            "initial_password": "Init1234pw",
            "school_id": 2147483648,
        },
    ),
    Attack(
        "NUL in an account name filter", Role.registrar, "GET", "/accounts?name=a%00b", 400, NUL
    ),
    # NUL, which PostgreSQL text cannot hold, anywhere in the request
    Attack("NUL in a query string", Role.registrar, "GET", "/students?q=%00", 400, NUL),
    Attack("NUL in a query filter", Role.teacher, "GET", "/families?status=a%00b", 400, NUL),
    Attack("NUL in a path segment", Role.registrar, "GET", "/org/regions/33%0001", 400, NUL),
    Attack("NUL in a form id", Role.registrar, "GET", "/forms/ab%00cd/png", 400, NUL),
    Attack(
        "NUL in a JSON string",
        Role.sysadmin,
        "POST",
        "/accounts",
        400,
        NUL,
        body={
            "role": "county_reviewer",
            "phone": "13912345678",
            "name": "王\u0000老师",
            "initial_password": "Xk9-long-enough-2026",
            "region_code": "330106",
        },
    ),
    Attack(
        "NUL in a JSON key",
        Role.registrar,
        "POST",
        "/students/1/reveal",
        400,
        NUL,
        content=b'{"fi\\u0000eld": "id_number"}',
    ),
    Attack(
        "NUL in a login phone",
        Role.parent,
        "POST",
        "/auth/login",
        400,
        NUL,
        body={"phone": "1380000\u00000000", "password": "x"},
    ),
    # bodies nested deeper than any request of this API
    Attack(
        "nested JSON on login",
        Role.parent,
        "POST",
        "/auth/login",
        400,
        NESTED,
        content=nested(100_000),
    ),
    Attack(
        "nested objects on login",
        Role.parent,
        "POST",
        "/auth/login",
        400,
        NESTED,
        content=b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    ),
    Attack(
        "nested JSON on refresh",
        Role.parent,
        "POST",
        "/auth/refresh",
        400,
        NESTED,
        content=nested(5_000),
    ),
    Attack(
        "nested JSON on a campaign",
        Role.province_admin,
        "POST",
        "/campaigns",
        400,
        NESTED,
        content=nested(200),
    ),
    # datetimes outside any campaign's plausible range
    Attack(
        "campaign start past year 9999 in UTC",
        Role.province_admin,
        "POST",
        "/campaigns",
        400,
        INVALID,
        body={
            "region_code": "330000",
            "name": "核查",
            "starts_at": "9999-12-31T23:59:59.999999-12:00",
            "ends_at": "9999-12-31T23:59:59.999999-12:00",
        },
    ),
    Attack(
        "campaign start before year 1 in UTC",
        Role.province_admin,
        "POST",
        "/campaigns",
        400,
        INVALID,
        body={
            "region_code": "330000",
            "name": "核查",
            "starts_at": "0001-01-01T00:00:00+14:00",
            "ends_at": "2026-12-31T00:00:00+08:00",
        },
    ),
    Attack(
        "campaign end in year 9000",
        Role.province_admin,
        "POST",
        "/campaigns",
        400,
        INVALID,
        body={
            "region_code": "330000",
            "name": "核查",
            "starts_at": "2026-09-01T00:00:00+08:00",
            "ends_at": "9000-01-01T00:00:00+08:00",
        },
    ),
    # transfers and status changes, support grants
    Attack(
        "status change id past int4",
        Role.registrar,
        "GET",
        "/status-changes/2147483648",
        404,
        NOT_FOUND,
    ),
    Attack(
        "class choice on a status change past int4",
        Role.registrar,
        "POST",
        "/status-changes/2147483648/class",
        404,
        NOT_FOUND,
        body={"class_id": 1},
    ),
    Attack(
        "student id past int4 on a status change",
        Role.registrar,
        "POST",
        "/status-changes",
        400,
        INVALID,
        body={"kind": "suspend", "student_id": 2147483648, "reason": "病休"},
    ),
    Attack(
        "NUL in a transfer's reason",
        Role.registrar,
        "POST",
        "/status-changes",
        400,
        NUL,
        body={"kind": "suspend", "student_id": 1, "reason": "病\u0000休"},
    ),
    Attack(
        "registry number with NUL on a transfer",
        Role.registrar,
        "POST",
        "/status-changes/transfers",
        400,
        NUL,
        body={"registry_number": "G1\u00002", "student_name": "张三", "to_class_id": 1},
    ),
    Attack(
        "support grant id past int4",
        Role.sysadmin,
        "GET",
        "/support-grants/2147483648",
        404,
        NOT_FOUND,
    ),
]


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 1)
    return world


@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.name for attack in ATTACKS])
async def test_hostile_input_is_a_4xx_with_a_chinese_message(
    client: httpx.AsyncClient, world: World, attack: Attack
) -> None:
    headers = bearer(await login(client, world.phones[attack.role]))
    kwargs: dict[str, Any] = {}
    if attack.content is not None:
        kwargs["content"] = attack.content
        headers["Content-Type"] = "application/json"
    elif attack.body is not None:
        kwargs["content"] = json.dumps(attack.body).encode()
        headers["Content-Type"] = "application/json"

    response = await client.request(attack.method, attack.url, headers=headers, **kwargs)

    assert response.status_code == attack.status, response.text
    body = response.json()
    assert (body["code"], body["message"]) == attack.error
    assert body["request_id"] == response.headers["x-request-id"]


async def test_campaign_with_out_of_range_dates_is_not_stored(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = bearer(await login(client, world.phones[Role.province_admin]))
    body = {
        "region_code": "330000",
        "name": "核查",
        "starts_at": "2026-09-01T00:00:00+08:00",
        "ends_at": "9999-12-31T23:59:59.999999-12:00",
    }

    response = await client.post("/campaigns", json=body, headers=headers)

    assert response.status_code == 400, response.text
    assert "ends_at" in response.json()["field_errors"]
    assert await Campaign.count() == 0


async def test_legitimate_input_still_passes(client: httpx.AsyncClient, world: World) -> None:
    """The guards do not refuse what the API is for: a real id, a deep-enough body, a date."""
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    admin = bearer(await login(client, world.phones[Role.province_admin]))

    student = await client.get(f"/students/{world.students[0]}", headers=registrar)
    search = await client.get("/students", params={"q": "学生", "page": 1}, headers=registrar)
    campaign = await client.post(
        "/campaigns",
        json={
            "region_code": "330000",
            "name": "2026年秋季核查",
            "starts_at": "2026-09-01T00:00:00+08:00",
            "ends_at": "2026-12-31T23:59:59+08:00",
        },
        headers=admin,
    )
    escaped = await client.post(  # a backslash before "u0000" is not a NUL
        f"/students/{world.students[0]}/reveal",
        content=b'{"field": "x\\\\u0000"}',
        headers={**registrar, "Content-Type": "application/json"},
    )

    assert student.status_code == 200, student.text
    assert search.status_code == 200
    assert search.json()["total"] == 1
    assert campaign.status_code == 201, campaign.text
    assert escaped.status_code in {400, 404}, escaped.text
    assert escaped.json()["code"] != NUL[0]


async def test_nul_in_an_upload_file_name_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    """A multipart body is not read by the input check (uploads are large): the file name an
    import stores is checked where it is used."""
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\x00.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\nname\r\n--b--\r\n"
    )

    response = await client.post(
        "/imports",
        content=body,
        headers={**registrar, "Content-Type": "multipart/form-data; boundary=b"},
    )

    assert response.status_code == 400, response.text
    assert (response.json()["code"], response.json()["message"]) == NUL


async def test_a_json_body_past_the_limit_is_413(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    body = b'{"phone": "13800000000", "password": "' + b"x" * settings.max_json_bytes + b'"}'

    response = await client.post(
        "/auth/login", content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413, response.text
    assert response.json()["code"] == "payload_too_large"

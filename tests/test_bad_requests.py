"""What a person is told when a request is malformed: every `field_errors` entry in Chinese,
keyed by the field's own path; a body of the wrong kind gets 415 saying what is expected; a
body too large says the limit; a closed-set query parameter names its allowed values."""

from __future__ import annotations

import re

import httpx
import pytest

from backend.accounts.roles import Role
from backend.config import Settings
from tests.factories import World, bearer, build_world, login, make_students, open_campaign

ENGLISH = re.compile(r"[A-Za-z]{3,}|`|'data'")


def assert_chinese(field_errors: dict[str, str]) -> None:
    for key, message in field_errors.items():
        assert not key.startswith("data"), key
        # values a person must type (allowed values, formats, JSON) may appear: nothing else
        text = re.sub(r"^可选值：.*|JSON|\d{4}-\d{2}-\d{2}\S*", "", message)
        assert not ENGLISH.search(text), message
        assert re.search(r"[\u4e00-\u9fff]", message), message


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 2)
    await open_campaign()
    return world


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"phone": "13800000000"}, "password", "缺少必填项"),
        (
            {"phone": "13800000000", "password": "x", "mobile": "1"},
            "mobile",
            "不支持此字段",
        ),
        ({"phone": 13800000000, "password": "x"}, "phone", "应为文字"),
        ({"phone": "1", "password": "x"}, "phone", "长度不能少于 5 个字符"),
        ({"phone": "138000000x", "password": "x"}, "phone", "格式不正确"),
        ({"phone": "13800000000", "password": "x", "sms_code": "12"}, "sms_code", "应为 6 位数字"),
    ],
    ids=["missing", "unknown", "wrong_type", "too_short", "bad_format", "six_digits"],
)
async def test_field_errors_are_chinese_and_keyed_by_the_field(
    client: httpx.AsyncClient, body: dict[str, object], field: str, message: str
) -> None:
    response = await client.post("/auth/login", json=body)

    assert response.status_code == 400
    answer = response.json()
    assert answer["code"] == "validation_error"
    assert answer["field_errors"] == {field: message}
    assert_chinese(answer["field_errors"])


async def test_a_nested_field_and_a_number_out_of_range(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    tokens = await login(client, world.phones[Role.registrar])
    response = await client.get("/students?page_size=100000", headers=bearer(tokens))

    assert response.status_code == 400
    errors = response.json()["field_errors"]
    assert list(errors) == ["page_size"]
    assert errors["page_size"].startswith("不能大于")
    assert_chinese(errors)


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        (b"", "body_missing", "请求缺少内容，请以 JSON 格式提交"),
        (b"{not json", "malformed_json", "提交的内容不是有效的 JSON"),
        (b"[1, 2]", "validation_error", "提交的内容应为 JSON 对象"),
    ],
    ids=["empty", "not_json", "array"],
)
async def test_a_missing_or_broken_json_body(
    client: httpx.AsyncClient, content: bytes, code: str, message: str
) -> None:
    response = await client.post(
        "/auth/login", content=content, headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    answer = response.json()
    assert answer["code"] == code
    assert answer["message"] == message or answer["field_errors"] == {"body": message}
    assert_chinese(answer.get("field_errors", {}))


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("application/x-www-form-urlencoded", b"phone=13800000000&password=x"),
        ("image/jpeg", b"\xff\xd8\xff\xe0 a photo"),
        ("text/plain", b'{"phone": "13800000000", "password": "x"}'),
    ],
)
async def test_a_json_endpoint_refuses_other_bodies_with_415(
    client: httpx.AsyncClient, content_type: str, content: bytes
) -> None:
    response = await client.post(
        "/auth/login", content=content, headers={"content-type": content_type}
    )

    assert response.status_code == 415
    assert response.json()["code"] == "json_expected"
    assert response.json()["message"] == "请以 JSON 格式提交（Content-Type: application/json）"


async def test_a_raw_photo_to_the_upload_endpoint_is_told_to_use_multipart(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    tokens = await login(client, world.phones[Role.registrar])
    student = world.students[0]

    response = await client.post(
        f"/students/{student}/uploads",
        content=b"\xff\xd8\xff\xe0 a photo",
        headers={**bearer(tokens), "content-type": "image/jpeg"},
    )

    assert response.status_code == 415
    assert response.json()["code"] == "multipart_expected"
    assert response.json()["message"] == ("请以 multipart/form-data 格式上传，照片放在 file 字段中")


async def test_an_oversized_photo_is_told_the_limit(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    tokens = await login(client, world.phones[Role.registrar])
    student = world.students[0]

    response = await client.post(
        f"/students/{student}/uploads",
        files={"file": ("form.jpg", b"\xff" * (30 * 1024 * 1024), "image/jpeg")},
        headers=bearer(tokens),
    )

    assert response.status_code == 413
    assert response.json()["code"] == "photo_too_large"
    assert "15 MB" in response.json()["message"]


async def test_an_oversized_json_body_is_told_the_limit(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await client.post(
        "/auth/login",
        content=b'{"phone": "' + b"1" * (2 * 1024 * 1024) + b'"}',
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert response.json()["message"] == "提交的内容不能超过 1 MB"


@pytest.mark.parametrize(
    ("path", "parameter", "allowed"),
    [
        ("/families?status=bogus", "status", "not_issued"),
        ("/students?status=bogus", "status", "enrolled"),
        ("/students?problem=bogus", "problem", "id_invalid"),
        ("/guardian-links?status=bogus", "status", "pending"),
    ],
)
async def test_a_closed_set_query_parameter_names_its_allowed_values(
    client: httpx.AsyncClient,
    settings: Settings,
    world: World,
    path: str,
    parameter: str,
    allowed: str,
) -> None:
    tokens = await login(client, world.phones[Role.registrar])
    response = await client.get(path, headers=bearer(tokens))

    assert response.status_code == 400
    answer = response.json()
    assert answer["code"] == "validation_error"
    assert list(answer["field_errors"]) == [parameter]
    assert answer["field_errors"][parameter].startswith("可选值：")
    assert allowed in answer["field_errors"][parameter]
    assert_chinese(answer["field_errors"])


async def test_an_upload_without_its_file_part_names_the_part(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    tokens = await login(client, world.phones[Role.registrar])

    response = await client.post(
        f"/students/{world.students[0]}/uploads",
        files={"photo": ("form.jpg", b"\xff\xd8\xff", "image/jpeg")},
        headers=bearer(tokens),
    )

    assert response.status_code == 400
    assert response.json()["field_errors"] == {"file": "缺少必填项"}


async def test_an_enum_in_a_body_names_its_allowed_values(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    tokens = await login(client, world.phones[Role.sysadmin])

    response = await client.post(
        "/accounts",
        json={"phone": "13900000001", "name": "某", "role": "boss", "initial_password": "x"},
        headers=bearer(tokens),
    )

    assert response.status_code == 400
    errors = response.json()["field_errors"]
    assert list(errors) == ["role"]
    assert errors["role"].startswith("可选值：")
    assert "registrar" in errors["role"]


async def test_a_multipart_body_that_is_not_one_is_named(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    tokens = await login(client, world.phones[Role.registrar])

    response = await client.post(
        f"/students/{world.students[0]}/uploads",
        content=b"\xff\xd8\xff\xe0 a photo",
        headers={**bearer(tokens), "content-type": "multipart/form-data; boundary=x"},
    )

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_multipart"
    assert response.json()["message"] == "上传的内容不是有效的 multipart/form-data"

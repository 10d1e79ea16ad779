"""What a client is told when it asks for something that is not there."""

from __future__ import annotations

import httpx

from backend.accounts.roles import Role
from backend.config import Settings
from tests.factories import bearer, build_world, login


async def test_an_unknown_path_says_the_path_does_not_exist(client: httpx.AsyncClient) -> None:
    """A typo in a path is not a missing record: the client developer must be able to tell."""
    response = await client.get("/studnets/1")

    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "no_such_path"
    assert body["message"] == "请求的地址不存在，请检查路径"
    assert body["request_id"]


async def test_a_missing_record_still_answers_not_found(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    world = await build_world(settings)
    tokens = await login(client, world.phones[Role.registrar])
    response = await client.get("/students/999999", headers=bearer(tokens))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"

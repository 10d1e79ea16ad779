"""A phone waking up sends two refreshes with the same token at once: both get the same new
pair inside a short grace period; after it, the old token is reuse and ends the family."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog, AuthSession, RefreshToken
from backend.config import Settings
from tests.factories import bearer, login, make_account

PHONE = "13600000021"


@pytest.fixture
async def tokens(client: httpx.AsyncClient, settings: Settings) -> dict[str, str]:
    await make_account(settings, Role.parent, PHONE)
    return await login(client, PHONE)


@pytest.fixture
def short_grace(use_settings: Callable[..., Settings]) -> Settings:
    return use_settings(refresh_grace_seconds=1)


async def test_two_refreshes_at_once_get_the_same_pair(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    body = {"refresh_token": tokens["refresh_token"]}
    first, second = await asyncio.gather(
        client.post("/auth/refresh", json=body), client.post("/auth/refresh", json=body)
    )

    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    assert first.json() == second.json()
    pair = first.json()
    assert pair["refresh_token"] != tokens["refresh_token"]
    assert (await client.get("/me", headers=bearer(pair))).status_code == 200
    again = await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 200
    session = await AuthSession.select().first()
    assert session is not None
    assert session["revoked_at"] is None
    # One rotation happened, not two: the login's token and one successor (and its successor).
    assert await RefreshToken.count() == 3
    assert not await AuditLog.exists().where(AuditLog.action == "refresh_reuse_revoked")


async def test_many_refreshes_at_once_all_get_the_same_pair(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    body = {"refresh_token": tokens["refresh_token"]}
    answers = await asyncio.gather(*(client.post("/auth/refresh", json=body) for _ in range(5)))

    assert [a.status_code for a in answers] == [200] * 5
    assert len({a.json()["refresh_token"] for a in answers}) == 1


async def test_the_same_token_within_the_grace_period_answers_the_same_pair(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    body = {"refresh_token": tokens["refresh_token"]}
    first = await client.post("/auth/refresh", json=body)
    late = await client.post("/auth/refresh", json=body)

    assert late.status_code == 200
    assert late.json() == first.json()


async def test_the_old_token_after_the_grace_period_still_revokes_the_family(
    client: httpx.AsyncClient, tokens: dict[str, str], short_grace: Settings
) -> None:
    body = {"refresh_token": tokens["refresh_token"]}
    first, second = await asyncio.gather(
        client.post("/auth/refresh", json=body), client.post("/auth/refresh", json=body)
    )
    assert first.json() == second.json()
    await asyncio.sleep(short_grace.refresh_grace_seconds + 0.2)

    reused = await client.post("/auth/refresh", json=body)

    assert reused.status_code == 401
    assert reused.json()["code"] == "refresh_token_reused"
    pair = first.json()
    assert (await client.get("/me", headers=bearer(pair))).status_code == 401
    after = await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert after.status_code == 401
    session = await AuthSession.select().first()
    assert session is not None
    assert session["revoked_reason"] == "refresh_reuse"


async def test_the_grace_copy_in_redis_reveals_no_token(
    client: httpx.AsyncClient, tokens: dict[str, str], app: Litestar
) -> None:
    pair = (
        await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).json()

    stored = b"".join(
        [key + (await app.state.redis.get(key) or b"") async for key in app.state.redis.scan_iter()]
    )
    for secret in (tokens["refresh_token"], pair["refresh_token"], pair["access_token"]):
        assert secret.encode() not in stored

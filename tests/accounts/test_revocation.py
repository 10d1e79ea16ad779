"""Revocation that revokes: sealing or disabling an account ends its live access token and its
refresh token at once, and enabling it again revives neither; every refresh rotation leaves a
log line with ids, no phone."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.accounts.tables import Account, AuthSession
from backend.config import Settings
from tests.accounts.test_admin import link_parent
from tests.factories import World, bearer, build_world, login, run_jobs


@pytest.fixture
async def world(settings: Settings) -> World:
    return await build_world(settings)


async def refresh(client: httpx.AsyncClient, tokens: dict[str, Any]) -> httpx.Response:
    return await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})


async def assert_dead(client: httpx.AsyncClient, tokens: dict[str, Any]) -> None:
    me = await client.get("/me", headers=bearer(tokens))
    assert me.status_code == 401, me.text
    refreshed = await refresh(client, tokens)
    assert refreshed.status_code == 401, refreshed.text
    assert refreshed.json()["code"] == "invalid_token"


@pytest.mark.parametrize(
    ("role", "end", "restore"),
    [
        (Role.teacher, "seal", "unseal"),
        (Role.teacher, "disable", "enable"),
        (Role.parent, "disable", "enable"),
    ],
)
async def test_ending_an_account_kills_its_tokens_and_restoring_it_revives_none(
    client: httpx.AsyncClient, world: World, role: Role, end: str, restore: str
) -> None:
    target = world.accounts[role]
    if role is Role.parent:
        await link_parent(world, "A1")  # a child in the registrar's school: in its reach
    tokens = await login(client, world.phones[role])
    assert (await client.get("/me", headers=bearer(tokens))).status_code == 200
    registrar = bearer(await login(client, world.phones[Role.registrar]))

    ended = await client.post(f"/accounts/{target}/{end}", headers=registrar)
    assert ended.status_code == 200, ended.text

    await assert_dead(client, tokens)
    sessions = await AuthSession.select(AuthSession.revoked_reason).where(
        AuthSession.account == target
    )
    assert [s["revoked_reason"] for s in sessions] == [end]

    restored = await client.post(f"/accounts/{target}/{restore}", headers=registrar)
    assert restored.status_code == 200, restored.text
    assert restored.json()["status"] == "active"

    await assert_dead(client, tokens)  # the old pair stays dead
    fresh = await login(client, world.phones[role])  # a new sign-in works
    assert (await client.get("/me", headers=bearer(fresh))).status_code == 200


async def test_the_daily_sealing_ends_the_sessions_for_good(
    client: httpx.AsyncClient, world: World, app: Litestar, settings: Settings
) -> None:
    teacher = world.accounts[Role.teacher]
    tokens = await login(client, world.phones[Role.teacher])
    long_ago = datetime.now(UTC) - timedelta(days=settings.seal_after_inactive_days + 1)
    await Account.update({Account.last_active_at: long_ago}).where(Account.id == teacher)

    await app.state.arq.enqueue_job("seal_inactive_accounts_job")
    await run_jobs(app, settings)

    await assert_dead(client, tokens)
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    unsealed = await client.post(f"/accounts/{teacher}/unseal", headers=registrar)
    assert unsealed.status_code == 200
    await assert_dead(client, tokens)


async def test_every_refresh_rotation_is_logged_with_ids_and_no_phone(
    client: httpx.AsyncClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    phone = world.phones[Role.parent]
    tokens = await login(client, phone)
    session = await AuthSession.select(AuthSession.id).where(
        AuthSession.account == world.accounts[Role.parent]
    )

    with caplog.at_level(logging.INFO, logger="registry.auth"):
        first = await refresh(client, tokens)
        second = await refresh(client, first.json())

    assert second.status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "registry.auth"]
    expected = f"refresh rotated: account={world.accounts[Role.parent]} session={session[0]['id']}"
    assert [line.startswith(expected) for line in lines] == [True, True], lines
    assert not any(phone in line or phone[-4:] in line for line in lines)

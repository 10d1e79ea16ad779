"""Forged, tampered, expired and misused tokens are all refused with 401."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import httpx
import jwt
import pytest

from backend.accounts.roles import Role
from backend.config import Settings
from tests.factories import bearer, login, make_account

KEY = "test-signing-key-2026-" + "0123456789abcdef" * 3


@pytest.fixture
async def session(client: httpx.AsyncClient, settings: Settings) -> dict[str, Any]:
    await make_account(settings, Role.sysadmin, "13700000001")
    tokens = await login(client, "13700000001")
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    return {"tokens": tokens, "claims": claims}


def forge(
    claims: dict[str, Any],
    *,
    key: str = KEY,
    alg: str = "HS256",
    kid: str = "k2026",
    **changes: Any,
) -> str:
    payload = {**claims, **changes}
    for name, value in changes.items():
        if value is None:
            payload.pop(name)
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def status_of(client: httpx.AsyncClient, token: str) -> tuple[int, str]:
    response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.json().get("code", "")


async def test_genuine_token_is_accepted(
    client: httpx.AsyncClient, session: dict[str, Any]
) -> None:
    assert await status_of(client, session["tokens"]["access_token"]) == (200, "")


async def test_token_signed_by_an_older_key_still_verifies(
    client: httpx.AsyncClient, session: dict[str, Any]
) -> None:
    token = forge(
        session["claims"], key="old-signing-key-2025-" + "abcdef0123456789" * 3, kid="k2025"
    )
    assert (await status_of(client, token))[0] == 200


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda c: f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': 'k2026'})}.{b64(c)}.",
            id="alg-none",
        ),
        pytest.param(lambda c: forge(c, alg="HS512"), id="algorithm-swap-hs512"),
        pytest.param(lambda c: forge(c, alg="HS384"), id="algorithm-swap-hs384"),
        pytest.param(
            lambda c: forge(c, key="someone-elses-key-" + "0123456789abcdef" * 4),
            id="bad-signature",
        ),
        pytest.param(lambda c: forge(c)[:-4] + "AAAA", id="tampered-signature"),
        pytest.param(lambda c: forge(c, aud="another-app"), id="wrong-aud"),
        pytest.param(lambda c: forge(c, iss="someone-else"), id="wrong-iss"),
        pytest.param(lambda c: forge(c, exp=None), id="missing-exp"),
        pytest.param(
            lambda c: forge(c, exp=int(time.time()) - 5, key="x" * 48), id="expired-and-forged"
        ),
        pytest.param(lambda c: forge(c, iat=None), id="missing-iat"),
        pytest.param(lambda c: forge(c, kid="k1999"), id="unknown-kid"),
        pytest.param(lambda c: forge(c, typ="refresh"), id="wrong-type"),
        pytest.param(lambda c: "not-a-jwt-at-all", id="garbage"),
    ],
)
async def test_forged_tokens_are_refused(
    client: httpx.AsyncClient, session: dict[str, Any], make: Any
) -> None:
    token = make(session["claims"])
    assert await status_of(client, token) == (401, "invalid_token")


async def test_subject_edited_under_the_real_key_still_needs_a_matching_session(
    client: httpx.AsyncClient, session: dict[str, Any], settings: Settings
) -> None:
    """Even with the signing key, a token naming another account finds no session of it."""
    other = await make_account(settings, Role.sysadmin, "13700000002")
    token = forge(session["claims"], sub=str(other))
    assert await status_of(client, token) == (401, "invalid_token")


async def test_refresh_token_used_as_access_token_is_refused(
    client: httpx.AsyncClient, session: dict[str, Any]
) -> None:
    assert await status_of(client, session["tokens"]["refresh_token"]) == (401, "invalid_token")


async def test_access_token_used_as_refresh_token_is_refused(
    client: httpx.AsyncClient, session: dict[str, Any]
) -> None:
    response = await client.post(
        "/auth/refresh", json={"refresh_token": session["tokens"]["access_token"]}
    )
    assert response.status_code == 401


async def test_missing_or_malformed_authorization(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}):
        response = await client.get("/me", headers=headers)
        assert response.status_code == 401
        assert response.json()["message"]


async def test_access_token_lives_at_most_fifteen_minutes(session: dict[str, Any]) -> None:
    claims = session["claims"]
    assert claims["exp"] - claims["iat"] <= 900
    assert {"exp", "iat", "aud", "iss", "sub"} <= set(claims)
    header = jwt.get_unverified_header(session["tokens"]["access_token"])
    assert header == {"alg": "HS256", "kid": "k2026", "typ": "JWT"}


async def test_access_token_stops_at_its_expiry_even_after_being_accepted(
    client: httpx.AsyncClient, session: dict[str, Any]
) -> None:
    """A verified token is remembered; the memory must still honour `exp`."""
    token = forge(session["claims"], exp=int(time.time()) + 2)
    assert (await status_of(client, token))[0] == 200
    await asyncio.sleep(2.1)
    assert await status_of(client, token) == (401, "token_expired")


async def test_an_expired_token_says_so_so_the_phone_refreshes(
    client: httpx.AsyncClient, session: dict[str, Any]
) -> None:
    """Expired (refresh and go on) and forged (log in again) call for different actions."""
    expired = forge(session["claims"], exp=int(time.time()) - 5)
    response = await client.get("/me", headers={"Authorization": f"Bearer {expired}"})

    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"
    assert "过期" in response.json()["message"]
    assert response.headers["www-authenticate"] == (
        'Bearer realm="registry", error="invalid_token", error_description="token_expired"'
    )
    forged = await client.get("/me", headers={"Authorization": "Bearer not-a-jwt"})
    assert forged.headers["www-authenticate"] == (
        'Bearer realm="registry", error="invalid_token", error_description="invalid_token"'
    )
    missing = await client.get("/me")
    assert missing.headers["www-authenticate"] == 'Bearer realm="registry"'


async def test_bearer_is_accepted_case_insensitively(
    client: httpx.AsyncClient, session: dict[str, Any]
) -> None:
    token = session["tokens"]["access_token"]
    response = await client.get("/me", headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200
    assert bearer(session["tokens"])

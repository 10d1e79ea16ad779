"""Which address a request comes from: the peer, or the one the trusted proxy appended to
`X-Forwarded-For` — never an element the client wrote itself."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from tests.factories import PASSWORD, make_account

PHONE = "13600000011"
PROXY = "10.0.0.5"  # the load balancer: the only peer the API ever sees
ATTACKER = "198.51.100.9"


def random_ip() -> str:
    return ".".join(str(secrets.randbelow(254) + 1) for _ in range(4))


@pytest.fixture
def behind_one_proxy(use_settings: Callable[..., Settings]) -> Settings:
    return use_settings(trusted_proxy_hops=1)


@pytest.fixture
async def via_proxy(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(PROXY, 443))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def _addresses_seen(app: Litestar, client: httpx.AsyncClient, *headers: str) -> str | None:
    """Fail one login with these X-Forwarded-For lines; the address its audit row holds."""
    await AuditLog.delete(force=True)
    await app.state.redis.flushdb()
    pairs = [("x-forwarded-for", h) for h in headers]
    await client.post(
        "/auth/login", json={"phone": "13600000999", "password": "wrong-pass"}, headers=pairs
    )
    row = await AuditLog.select(AuditLog.client_addr).where(AuditLog.action == "login_failed")
    return row[0]["client_addr"] if row else None


async def test_forwarded_for_is_ignored_by_default(
    app: Litestar, via_proxy: httpx.AsyncClient
) -> None:
    assert await _addresses_seen(app, via_proxy, "1.2.3.4") == PROXY


async def test_the_address_appended_by_the_trusted_proxy_is_taken(
    app: Litestar, via_proxy: httpx.AsyncClient, behind_one_proxy: Settings
) -> None:
    # The client wrote "1.2.3.4"; the proxy appended the address it really saw.
    assert await _addresses_seen(app, via_proxy, f"1.2.3.4, {ATTACKER}") == ATTACKER
    # Two header lines are one list, in order.
    assert await _addresses_seen(app, via_proxy, "1.2.3.4", ATTACKER) == ATTACKER
    # Fewer elements than trusted hops, or garbage where an address should be: the peer.
    assert await _addresses_seen(app, via_proxy) == PROXY
    assert await _addresses_seen(app, via_proxy, "1.2.3.4, not-an-ip") == PROXY


async def test_two_hops_take_the_second_from_the_right(
    app: Litestar, via_proxy: httpx.AsyncClient, use_settings: Callable[..., Settings]
) -> None:
    use_settings(trusted_proxy_hops=2)
    assert await _addresses_seen(app, via_proxy, f"1.2.3.4, {ATTACKER}, 10.0.0.9") == ATTACKER
    assert await _addresses_seen(app, via_proxy, "10.0.0.9") == PROXY


async def test_random_forwarded_for_values_do_not_dodge_the_login_throttle(
    via_proxy: httpx.AsyncClient, settings: Settings, behind_one_proxy: Settings
) -> None:
    """The attack: 100 wrong passwords from one machine, each with a made-up
    X-Forwarded-For first element, on one account and then sprayed over many."""
    await make_account(settings, Role.registrar, PHONE)
    statuses = []
    for _ in range(100):
        response = await via_proxy.post(
            "/auth/login",
            json={"phone": PHONE, "password": "Wrong" + secrets.token_hex(4)},
            headers={"X-Forwarded-For": f"{random_ip()}, {ATTACKER}"},
        )
        statuses.append(response.status_code)
    assert statuses.count(401) <= 5
    assert statuses.count(429) >= 95
    checked = await AuditLog.count().where(AuditLog.action == "login_failed")
    assert checked <= 5


async def test_random_forwarded_for_values_do_not_dodge_the_spraying_throttle(
    via_proxy: httpx.AsyncClient, behind_one_proxy: Settings
) -> None:
    answers = []
    for i in range(100):
        response = await via_proxy.post(
            "/auth/login",
            json={"phone": f"135{i:08d}", "password": PASSWORD},
            headers={"X-Forwarded-For": f"{random_ip()}, {ATTACKER}"},
        )
        answers.append(response.json()["code"])
    # Then the address is stopped: no more passwords checked without an SMS code.
    limit = behind_one_proxy.login_max_failures_per_address
    assert answers.count("invalid_credentials") <= limit
    assert set(answers[limit:]) == {"sms_code_required", "too_many_attempts"}  # SMS per hour
    checked = await AuditLog.count().where(AuditLog.action == "login_failed")
    assert checked <= limit


async def test_random_forwarded_for_values_do_not_dodge_the_signup_throttle(
    via_proxy: httpx.AsyncClient, behind_one_proxy: Settings
) -> None:
    statuses = []
    for i in range(60):
        response = await via_proxy.post(
            "/signup/start",
            json={
                "registration_code": secrets.token_hex(4).upper(),
                "birth_date": "20150307",
                "phone": f"139{i:08d}",
            },
            headers={"X-Forwarded-For": f"{random_ip()}, {ATTACKER}"},
        )
        statuses.append(response.status_code)
    assert 429 in statuses
    assert statuses.count(429) >= 30

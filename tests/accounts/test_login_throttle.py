"""Login throttling that slows attackers without locking owners out.

Per account+address a growing delay; an address that fails too often, or an account that
fails from several addresses, needs a one-time SMS code on top of the password.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from tests.factories import PASSWORD, make_account

OWNER = "13600000031"
TEACHER = "13600000032"
SPRAYED = [f"1360000010{i}" for i in range(8)]
GUESSES = ["Spring2026hz", "Xuexiao2026a", "Hangzhou2026", "Laoshi2026ok"]

ClientAt = Callable[[str], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def client_at(app: Litestar) -> AsyncIterator[ClientAt]:
    """Clients that connect from the given address (one connection each)."""
    opened: list[httpx.AsyncClient] = []

    async def make(addr: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(addr, 40000))
        client = httpx.AsyncClient(transport=transport, base_url="http://test")
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


@pytest.fixture
def sms(app: Litestar) -> list[tuple[str, str]]:
    app.state.sms.sent.clear()
    return app.state.sms.sent  # type: ignore[no-any-return]


def codes_sent(sms: list[tuple[str, str]], phone: str) -> list[str]:
    return [re.findall(r"\d{6}", text)[0] for to, text in sms if to == phone]


async def try_login(
    client: httpx.AsyncClient, phone: str, password: str, sms_code: str | None = None
) -> httpx.Response:
    body = {"phone": phone, "password": password}
    if sms_code is not None:
        body["sms_code"] = sms_code
    return await client.post("/auth/login", json=body)


async def passwords_checked() -> int:
    return await AuditLog.count().where(AuditLog.action == "login_failed")


async def test_the_owner_logs_in_from_another_address_while_an_attacker_hammers(
    client_at: ClientAt, settings: Settings, sms: list[tuple[str, str]]
) -> None:
    await make_account(settings, Role.registrar, OWNER)
    attacker = await client_at("198.51.100.1")
    answers = [(await try_login(attacker, OWNER, f"Guess{i}x2026")).status_code for i in range(40)]
    assert answers.count(401) <= settings.login_free_failures + 1
    assert answers.count(429) >= 35

    owner = await client_at("203.0.113.50")
    response = await try_login(owner, OWNER, PASSWORD)

    assert response.status_code == 200, response.text
    assert sms == []  # one hammering address does not put the owner through an SMS step
    # The attacker is still slowed down, even with the right password.
    assert (await try_login(attacker, OWNER, PASSWORD)).status_code == 429


async def test_concurrent_guesses_are_counted_atomically(
    client_at: ClientAt, settings: Settings
) -> None:
    """60 guesses sent at once on one account from one address: the check-then-count race
    would let all of them through to the password check."""
    await make_account(settings, Role.registrar, OWNER)
    attacker = await client_at("198.51.100.2")

    answers = await asyncio.gather(
        *(try_login(attacker, OWNER, f"Guess{i}x2026") for i in range(60))
    )

    assert sum(a.status_code == 401 for a in answers) <= settings.login_free_failures
    assert await passwords_checked() <= settings.login_free_failures


async def test_the_growing_delay_shows_in_retry_after(
    client_at: ClientAt, settings: Settings
) -> None:
    await make_account(settings, Role.registrar, OWNER)
    me = await client_at("203.0.113.51")
    for _ in range(settings.login_free_failures):
        assert (await try_login(me, OWNER, "Wrong2026pw")).status_code == 401

    waits = []
    for _ in range(3):
        blocked = await try_login(me, OWNER, PASSWORD)  # not even the right one, yet
        assert blocked.status_code == 429
        assert blocked.json()["code"] == "too_many_attempts"
        assert "秒" in blocked.json()["message"]
        wait = int(blocked.headers["retry-after"])
        waits.append(wait)
        await asyncio.sleep(wait + 0.05)
        assert (await try_login(me, OWNER, "Wrong2026pw")).status_code == 401

    # 1 s, 2 s, 4 s (a second less if this machine took over a second between the requests).
    assert waits[0] == 1
    assert waits[1] in (1, 2)
    assert waits[2] in (3, 4)


async def test_a_success_forgets_the_owners_typos(client_at: ClientAt, settings: Settings) -> None:
    await make_account(settings, Role.registrar, OWNER)
    me = await client_at("203.0.113.52")
    for _ in range(3):
        for _ in range(settings.login_free_failures - 1):
            assert (await try_login(me, OWNER, "Wrong2026pw")).status_code == 401
        assert (await try_login(me, OWNER, PASSWORD)).status_code == 200


async def test_spraying_eight_accounts_from_one_address_is_stopped(
    client_at: ClientAt, settings: Settings, sms: list[tuple[str, str]]
) -> None:
    for phone in SPRAYED[:-1]:
        await make_account(settings, Role.teacher, phone)
    # The last account's password is the sprayer's last guess.
    await make_account(settings, Role.teacher, SPRAYED[-1], password=GUESSES[-1])
    sprayer = await client_at("198.51.100.3")

    answers = []
    for guess in GUESSES:
        for phone in SPRAYED:
            response = await try_login(sprayer, phone, guess)
            answers.append((response.status_code, response.json().get("code")))

    assert (200, None) not in answers
    assert await passwords_checked() <= settings.login_max_failures_per_address
    stopped = answers[settings.login_max_failures_per_address :]
    assert {code for _, code in stopped} <= {"sms_code_required", "too_many_attempts"}
    assert all(status in (401, 429) for status, _ in stopped)


async def test_a_teacher_behind_a_sprayers_address_logs_in_with_an_sms_code(
    client_at: ClientAt, settings: Settings, sms: list[tuple[str, str]]
) -> None:
    for phone in SPRAYED:
        await make_account(settings, Role.teacher, phone)
    await make_account(settings, Role.teacher, TEACHER)
    school = "203.0.113.80"  # one address for the whole school
    sprayer = await client_at(school)
    for guess in GUESSES:
        for phone in SPRAYED:
            await try_login(sprayer, phone, guess)

    teacher = await client_at(school)
    challenged = await try_login(teacher, TEACHER, PASSWORD)

    assert challenged.status_code == 401
    assert challenged.json()["code"] == "sms_code_required"
    assert "短信验证码" in challenged.json()["message"]
    assert "sms_code" in challenged.json()["field_errors"]
    [code] = codes_sent(sms, TEACHER)
    wrong = await try_login(teacher, TEACHER, PASSWORD, sms_code=f"{(int(code) + 1) % 10**6:06d}")
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "sms_code_invalid"

    response = await try_login(teacher, TEACHER, PASSWORD, sms_code=code)

    assert response.status_code == 200, response.text
    assert response.json()["access_token"]
    # The code was one-time.
    again = await try_login(teacher, TEACHER, PASSWORD, sms_code=code)
    assert again.json()["code"] in ("sms_code_invalid", "sms_code_required")


async def test_an_account_failed_from_many_addresses_needs_an_sms_code(
    client_at: ClientAt, settings: Settings, sms: list[tuple[str, str]]
) -> None:
    await make_account(settings, Role.parent, OWNER)
    for i in range(settings.login_attack_addresses):
        bot = await client_at(f"198.51.100.{100 + i}")
        await try_login(bot, OWNER, "Guess2026pw")
        await try_login(bot, OWNER, "Guess2027pw")
    checked = await passwords_checked()
    # A further attacker address gets no password check at all.
    bot = await client_at("198.51.100.200")
    refused = await try_login(bot, OWNER, "Guess2028pw")
    assert refused.json()["code"] == "sms_code_required"
    assert await passwords_checked() == checked

    owner = await client_at("203.0.113.60")
    challenged = await try_login(owner, OWNER, PASSWORD)
    assert challenged.json()["code"] == "sms_code_required"
    # Asking again while the code lives sends no second SMS.
    await try_login(owner, OWNER, PASSWORD)
    [code] = codes_sent(sms, OWNER)
    assert "验证码" in sms[-1][1]

    response = await try_login(owner, OWNER, PASSWORD, sms_code=code)
    assert response.status_code == 200, response.text


async def test_wrong_sms_codes_kill_the_code(
    client_at: ClientAt, settings: Settings, sms: list[tuple[str, str]]
) -> None:
    await make_account(settings, Role.parent, OWNER)
    for i in range(settings.login_attack_addresses):
        bot = await client_at(f"198.51.100.{100 + i}")
        await try_login(bot, OWNER, "Guess2026pw")
    owner = await client_at("203.0.113.61")
    await try_login(owner, OWNER, PASSWORD)
    [code] = codes_sent(sms, OWNER)
    for guess in range(5):
        guesser = await client_at(f"198.51.100.{150 + guess}")
        wrong = f"{(int(code) + 1 + guess) % 10**6:06d}"
        answer = await try_login(guesser, OWNER, PASSWORD, sms_code=wrong)
        assert answer.json()["code"] == "sms_code_invalid"

    late = await try_login(owner, OWNER, PASSWORD, sms_code=code)
    assert late.status_code == 401
    assert late.json()["code"] == "sms_code_invalid"
    assert len(codes_sent(sms, OWNER)) == 2  # a fresh code went out for the owner


async def test_an_unknown_phone_is_challenged_alike_and_gets_no_sms(
    client_at: ClientAt, settings: Settings, sms: list[tuple[str, str]]
) -> None:
    await make_account(settings, Role.parent, OWNER)
    unknown = "13600009998"
    for phone in (OWNER, unknown):
        for i in range(settings.login_attack_addresses):
            bot = await client_at(f"198.51.100.{100 + i}")
            await try_login(bot, phone, "Guess2026pw")
    owner = await client_at("203.0.113.62")

    known_answer = await try_login(owner, OWNER, "Guess2026pw")
    unknown_answer = await try_login(owner, unknown, "Guess2026pw")

    strip = {"request_id"}
    assert {k: v for k, v in known_answer.json().items() if k not in strip} == {
        k: v for k, v in unknown_answer.json().items() if k not in strip
    }
    assert codes_sent(sms, unknown) == []
    assert len(codes_sent(sms, OWNER)) == 1


async def test_sms_codes_per_phone_are_limited(
    client_at: ClientAt, settings: Settings, sms: list[tuple[str, str]]
) -> None:
    await make_account(settings, Role.parent, OWNER)
    for i in range(settings.login_attack_addresses):
        bot = await client_at(f"198.51.100.{100 + i}")
        await try_login(bot, OWNER, "Guess2026pw")
    answers = []
    for round_ in range(settings.login_sms_per_phone_per_hour + 2):
        bot = await client_at(f"198.51.101.{round_}")
        answers.append(await try_login(bot, OWNER, "Guess2026pw"))
        # Let the code die (wrong codes, each from another address) so the next request
        # would send another.
        for guess in range(5):
            bot = await client_at(f"198.51.102.{round_ * 10 + guess}")
            await try_login(bot, OWNER, "Guess2026pw", sms_code="000000")

    assert len(codes_sent(sms, OWNER)) == settings.login_sms_per_phone_per_hour
    assert answers[-1].status_code == 429
    assert int(answers[-1].headers["retry-after"]) > 0

"""Staff of a registrar's rank and above confirm sign-in with a second factor: the password
alone gives a ticket, never tokens; an authenticator code works once, an SMS code and each
recovery code work once; wrong codes are throttled; an admin resets a lost factor only
inside its scope and below its rank, and every event is audited."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyotp
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog, RecoveryCode, SecondFactor
from backend.config import Settings
from backend.notify.sms import SmsError
from tests.factories import PASSWORD, World, bearer, build_world, login, make_account


@pytest.fixture
async def world(settings: Settings, use_settings: Callable[..., Settings]) -> World:
    built = await build_world(settings)
    use_settings(second_factor_required=True)
    return built


@pytest.fixture
def sms(app: Litestar) -> list[tuple[str, str]]:
    app.state.sms.sent.clear()
    return app.state.sms.sent  # type: ignore[no-any-return]


def last_code(sms: list[tuple[str, str]], phone: str) -> str:
    return [re.findall(r"\d{6}", text)[0] for to, text in sms if to == phone][-1]


async def password_step(client: httpx.AsyncClient, phone: str) -> dict[str, Any]:
    response = await client.post("/auth/login", json={"phone": phone, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["second_factor_required"] is True
    assert "access_token" not in body
    return body


async def enrol_totp(
    client: httpx.AsyncClient, sms: list[tuple[str, str]], phone: str
) -> tuple[str, dict[str, Any]]:
    """Enrol an authenticator app; the secret and the confirm's answer."""
    challenge = await password_step(client, phone)
    assert challenge["step"] == "enrol"
    ticket = challenge["ticket"]
    sent = await client.post("/auth/second-factor/sms", json={"ticket": ticket})
    assert sent.status_code == 200, sent.text
    started = await client.post("/auth/second-factor/totp", json={"ticket": ticket})
    assert started.status_code == 200, started.text
    secret = started.json()["secret"]
    assert started.json()["otpauth_uri"].startswith("otpauth://totp/")
    assert started.json()["qr_svg"].startswith("<svg")
    confirmed = await client.post(
        "/auth/second-factor/confirm",
        json={
            "ticket": ticket,
            "method": "totp",
            "code": pyotp.TOTP(secret).now(),
            "sms_code": last_code(sms, phone),
        },
    )
    assert confirmed.status_code == 200, confirmed.text
    return secret, confirmed.json()


async def enrol_sms(
    client: httpx.AsyncClient, sms: list[tuple[str, str]], phone: str
) -> dict[str, Any]:
    ticket = (await password_step(client, phone))["ticket"]
    await client.post("/auth/second-factor/sms", json={"ticket": ticket})
    confirmed = await client.post(
        "/auth/second-factor/confirm",
        json={"ticket": ticket, "method": "sms", "code": last_code(sms, phone)},
    )
    assert confirmed.status_code == 200, confirmed.text
    return confirmed.json()  # type: ignore[no-any-return]


def next_code(secret: str) -> str:
    """The code of the next time step (accepted: ±1 step)."""
    return pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30))


async def verify(client: httpx.AsyncClient, ticket: str, method: str, code: str) -> httpx.Response:
    return await client.post(
        "/auth/second-factor/verify", json={"ticket": ticket, "method": method, "code": code}
    )


async def actions(account_id: int) -> list[str]:
    rows = await AuditLog.select(AuditLog.action).where(AuditLog.entity_id == str(account_id))
    return [row["action"] for row in rows]


@pytest.mark.parametrize(
    "role",
    [
        Role.registrar,
        Role.school_leader,
        Role.county_reviewer,
        Role.city_admin,
        Role.province_admin,
        Role.sysadmin,
    ],
)
async def test_staff_get_a_ticket_not_tokens(
    client: httpx.AsyncClient, world: World, role: Role
) -> None:
    challenge = await password_step(client, world.phones[role])

    assert challenge["step"] == "enrol"
    assert challenge["methods"] == ["totp", "sms"]
    assert challenge["phone"] == world.phones[role][:3] + "****" + world.phones[role][-4:]
    # The ticket is no bearer token.
    me = await client.get("/me", headers={"Authorization": f"Bearer {challenge['ticket']}"})
    assert me.status_code == 401
    assert "second_factor_challenge" in await actions(world.accounts[role])


@pytest.mark.parametrize("role", [Role.teacher, Role.parent])
async def test_teachers_and_parents_are_exempt(
    client: httpx.AsyncClient, world: World, role: Role
) -> None:
    tokens = await login(client, world.phones[role])

    assert (await client.get("/me", headers=bearer(tokens))).status_code == 200


async def test_off_by_setting_staff_get_tokens(
    client: httpx.AsyncClient, world: World, use_settings: Callable[..., Settings]
) -> None:
    use_settings(second_factor_required=False)

    tokens = await login(client, world.phones[Role.registrar])

    assert "access_token" in tokens


async def test_enrol_an_authenticator_then_sign_in_with_it(
    client: httpx.AsyncClient, world: World, sms: list[tuple[str, str]], settings: Settings
) -> None:
    phone, account = world.phones[Role.registrar], world.accounts[Role.registrar]

    secret, enrolled = await enrol_totp(client, sms, phone)

    assert len(enrolled["recovery_codes"]) == 10
    assert len(set(enrolled["recovery_codes"])) == 10
    me = await client.get("/me", headers=bearer(enrolled["tokens"]))
    assert me.status_code == 200
    stored = await SecondFactor.select().where(SecondFactor.account == account).first()
    assert stored is not None
    assert stored["method"] == "totp"
    assert secret not in stored["totp_secret"]  # sealed, not in the clear
    hashes = [r["code_hash"] for r in await RecoveryCode.select(RecoveryCode.code_hash)]
    assert not set(enrolled["recovery_codes"]) & set(hashes)
    assert "second_factor_enrolled" in await actions(account)

    challenge = await password_step(client, phone)
    assert challenge["step"] == "verify"
    assert challenge["methods"] == ["totp", "recovery"]
    signed_in = await verify(client, challenge["ticket"], "totp", next_code(secret))
    assert signed_in.status_code == 200, signed_in.text
    assert (await client.get("/me", headers=bearer(signed_in.json()))).status_code == 200
    assert "second_factor_verified" in await actions(account)


async def test_a_used_authenticator_code_is_refused_again(
    client: httpx.AsyncClient, world: World, sms: list[tuple[str, str]]
) -> None:
    phone = world.phones[Role.county_reviewer]
    secret, _ = await enrol_totp(client, sms, phone)
    code = next_code(secret)
    first = await password_step(client, phone)
    assert (await verify(client, first["ticket"], "totp", code)).status_code == 200

    second = await password_step(client, phone)
    replayed = await verify(client, second["ticket"], "totp", code)

    assert replayed.status_code == 401
    assert replayed.json()["code"] == "second_factor_code_invalid"
    # The code of enrolment itself (an earlier step) is refused too.
    older = await verify(client, second["ticket"], "totp", pyotp.TOTP(secret).now())
    assert older.status_code == 401


async def test_one_code_sent_twice_at_once_signs_in_once(
    client: httpx.AsyncClient, world: World, sms: list[tuple[str, str]]
) -> None:
    phone = world.phones[Role.school_leader]
    secret, _ = await enrol_totp(client, sms, phone)
    code = next_code(secret)
    tickets = [(await password_step(client, phone))["ticket"] for _ in range(4)]

    answers = await asyncio.gather(*(verify(client, t, "totp", code) for t in tickets))

    assert sorted(a.status_code for a in answers) == [200, 401, 401, 401]


async def test_enrolling_an_authenticator_needs_the_phone(
    client: httpx.AsyncClient, world: World
) -> None:
    """Whoever knows only the password cannot put their authenticator on the account."""
    ticket = (await password_step(client, world.phones[Role.registrar]))["ticket"]
    secret = (await client.post("/auth/second-factor/totp", json={"ticket": ticket})).json()[
        "secret"
    ]

    without = await client.post(
        "/auth/second-factor/confirm",
        json={"ticket": ticket, "method": "totp", "code": pyotp.TOTP(secret).now()},
    )
    guessed = await client.post(
        "/auth/second-factor/confirm",
        json={
            "ticket": ticket,
            "method": "totp",
            "code": pyotp.TOTP(secret).now(),
            "sms_code": "000000",
        },
    )

    assert without.status_code == 400
    assert without.json()["code"] == "sms_code_required"
    assert guessed.status_code == 401
    assert guessed.json()["code"] == "second_factor_code_invalid"
    assert not await SecondFactor.exists().where(
        SecondFactor.account == world.accounts[Role.registrar]
    )


async def test_an_enrol_ticket_gives_no_tokens_by_verify(
    client: httpx.AsyncClient, world: World
) -> None:
    ticket = (await password_step(client, world.phones[Role.registrar]))["ticket"]

    answer = await verify(client, ticket, "recovery", "abcde-fghjk")

    assert answer.status_code == 409
    assert answer.json()["code"] == "second_factor_enrolment_required"


async def test_wrong_codes_are_throttled_across_tickets(
    client: httpx.AsyncClient,
    world: World,
    sms: list[tuple[str, str]],
    use_settings: Callable[..., Settings],
) -> None:
    phone, account = world.phones[Role.city_admin], world.accounts[Role.city_admin]
    secret, _ = await enrol_totp(client, sms, phone)
    use_settings(second_factor_required=True, second_factor_max_failures=3)
    answers = []
    for _ in range(4):  # a fresh ticket each time: the count is the account's
        ticket = (await password_step(client, phone))["ticket"]
        answers.append(await verify(client, ticket, "totp", "000000"))
    ticket = (await password_step(client, phone))["ticket"]
    right = await verify(client, ticket, "totp", next_code(secret))

    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    assert answers[-1].json()["code"] == "too_many_attempts"
    assert int(answers[-1].headers["Retry-After"]) > 0
    assert right.status_code == 429  # even the right code waits
    assert (await actions(account)).count("second_factor_failed") == 3


async def test_a_ticket_dies_after_five_wrong_codes(
    client: httpx.AsyncClient, world: World, sms: list[tuple[str, str]]
) -> None:
    phone = world.phones[Role.province_admin]
    secret, _ = await enrol_totp(client, sms, phone)
    ticket = (await password_step(client, phone))["ticket"]
    for _ in range(5):
        assert (await verify(client, ticket, "totp", "999999")).status_code == 401

    late = await verify(client, ticket, "totp", next_code(secret))

    assert late.status_code == 401
    assert late.json()["code"] == "second_factor_ticket_invalid"


@pytest.mark.parametrize(
    "ticket", ["A" * 43, "forged-ticket-forged-ticket-forged", "x" * 100], ids=str.__len__
)
async def test_forged_tickets_are_refused(
    client: httpx.AsyncClient, world: World, ticket: str
) -> None:
    for path, body in [
        ("/auth/second-factor/verify", {"ticket": ticket, "method": "totp", "code": "123456"}),
        ("/auth/second-factor/sms", {"ticket": ticket}),
        ("/auth/second-factor/totp", {"ticket": ticket}),
        (
            "/auth/second-factor/confirm",
            {"ticket": ticket, "method": "sms", "code": "123456"},
        ),
    ]:
        answer = await client.post(path, json=body)
        assert answer.status_code == 401, (path, answer.text)
        assert answer.json()["code"] == "second_factor_ticket_invalid"


async def test_an_expired_ticket_is_refused(
    client: httpx.AsyncClient,
    world: World,
    sms: list[tuple[str, str]],
    use_settings: Callable[..., Settings],
) -> None:
    phone = world.phones[Role.registrar]
    secret, _ = await enrol_totp(client, sms, phone)
    use_settings(second_factor_required=True, second_factor_ticket_seconds=1)
    ticket = (await password_step(client, phone))["ticket"]
    await asyncio.sleep(1.3)

    late = await verify(client, ticket, "totp", next_code(secret))

    assert late.status_code == 401
    assert late.json()["code"] == "second_factor_ticket_invalid"


async def test_sms_as_the_factor(
    client: httpx.AsyncClient, world: World, sms: list[tuple[str, str]]
) -> None:
    phone, account = world.phones[Role.school_leader], world.accounts[Role.school_leader]
    await enrol_sms(client, sms, phone)
    challenge = await password_step(client, phone)
    assert challenge["methods"] == ["sms", "recovery"]

    wrong_method = await verify(client, challenge["ticket"], "totp", "123456")
    sent = await client.post("/auth/second-factor/sms", json={"ticket": challenge["ticket"]})
    code = last_code(sms, phone)
    signed_in = await verify(client, challenge["ticket"], "sms", code)

    assert wrong_method.status_code == 400
    assert wrong_method.json()["code"] == "second_factor_method"
    assert sent.status_code == 200
    assert sent.json()["phone"] == phone[:3] + "****" + phone[-4:]
    assert signed_in.status_code == 200, signed_in.text
    # The message carries the code and nothing about the person.
    text = sms[-1][1]
    assert "school_leader" not in text
    assert phone not in text
    again = await verify(client, (await password_step(client, phone))["ticket"], "sms", code)
    assert again.status_code == 401
    assert "second_factor_sms_sent" in await actions(account)


async def test_an_authenticator_account_gets_no_sms(
    client: httpx.AsyncClient, world: World, sms: list[tuple[str, str]]
) -> None:
    phone = world.phones[Role.registrar]
    await enrol_totp(client, sms, phone)
    sms.clear()
    ticket = (await password_step(client, phone))["ticket"]

    answer = await client.post("/auth/second-factor/sms", json={"ticket": ticket})

    assert answer.status_code == 400
    assert answer.json()["code"] == "second_factor_method"
    assert sms == []


async def test_recovery_codes_work_once_each(
    client: httpx.AsyncClient, world: World, sms: list[tuple[str, str]]
) -> None:
    phone, account = world.phones[Role.registrar], world.accounts[Role.registrar]
    _, enrolled = await enrol_totp(client, sms, phone)
    first, second = enrolled["recovery_codes"][:2]

    used = await verify(client, (await password_step(client, phone))["ticket"], "recovery", first)
    again = await verify(client, (await password_step(client, phone))["ticket"], "recovery", first)
    typed = await verify(
        client,
        (await password_step(client, phone))["ticket"],
        "recovery",
        second.upper().replace("-", " "),
    )

    assert used.status_code == 200, used.text
    assert again.status_code == 401
    assert typed.status_code == 200  # case, dash or space as typed
    status = await client.get("/me/second-factor", headers=bearer(typed.json()))
    assert status.json()["recovery_codes_left"] == 8
    audit = await AuditLog.select().where(
        (AuditLog.action == "recovery_code_used") & (AuditLog.entity_id == str(account))
    )
    assert [row["after"] for row in audit] == ['{"left":9}', '{"left":8}']


async def test_regenerated_recovery_codes_replace_the_old(
    client: httpx.AsyncClient, world: World, sms: list[tuple[str, str]]
) -> None:
    phone = world.phones[Role.registrar]
    _, enrolled = await enrol_totp(client, sms, phone)
    headers = bearer(enrolled["tokens"])

    wrong = await client.post(
        "/me/second-factor/recovery-codes", headers=headers, json={"password": "wrong-one"}
    )
    fresh = await client.post(
        "/me/second-factor/recovery-codes", headers=headers, json={"password": PASSWORD}
    )

    assert wrong.status_code == 400
    assert wrong.json()["code"] == "wrong_password"
    assert fresh.status_code == 200
    old = await verify(
        client,
        (await password_step(client, phone))["ticket"],
        "recovery",
        enrolled["recovery_codes"][0],
    )
    new = await verify(
        client,
        (await password_step(client, phone))["ticket"],
        "recovery",
        fresh.json()["recovery_codes"][0],
    )
    assert old.status_code == 401
    assert new.status_code == 200
    assert "recovery_codes_regenerated" in await actions(world.accounts[Role.registrar])


async def test_a_session_from_before_the_factor_does_not_refresh(
    client: httpx.AsyncClient, world: World, use_settings: Callable[..., Settings]
) -> None:
    use_settings(second_factor_required=False)
    tokens = await login(client, world.phones[Role.registrar])
    use_settings(second_factor_required=True)

    refreshed = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})

    assert refreshed.status_code == 401
    assert refreshed.json()["code"] == "invalid_token"


async def test_an_admin_resets_a_lost_factor_in_scope(
    client: httpx.AsyncClient, world: World, sms: list[tuple[str, str]]
) -> None:
    registrar = world.accounts[Role.registrar]
    _, enrolled = await enrol_totp(client, sms, world.phones[Role.registrar])
    admin = await enrol_sms(client, sms, world.phones[Role.county_reviewer])

    reset = await client.post(
        f"/accounts/{registrar}/second-factor/reset", headers=bearer(admin["tokens"])
    )

    assert reset.status_code == 200, reset.text
    assert reset.json()["method"] is None
    assert not await SecondFactor.exists().where(SecondFactor.account == registrar)
    assert not await RecoveryCode.exists().where(RecoveryCode.account == registrar)
    audit = await AuditLog.select().where(AuditLog.action == "second_factor_reset")
    assert audit[0]["actor_id"] == world.accounts[Role.county_reviewer]
    assert audit[0]["entity_id"] == str(registrar)
    assert audit[0]["before"] == '{"method":"totp"}'
    # Its sessions ended, and its next sign-in must enrol again.
    gone = await client.get("/me", headers=bearer(enrolled["tokens"]))
    assert gone.status_code == 401
    refreshed = await client.post(
        "/auth/refresh", json={"refresh_token": enrolled["tokens"]["refresh_token"]}
    )
    assert refreshed.status_code == 401
    assert (await password_step(client, world.phones[Role.registrar]))["step"] == "enrol"


async def test_a_reset_outside_scope_is_not_found(
    client: httpx.AsyncClient, world: World, sms: list[tuple[str, str]], settings: Settings
) -> None:
    elsewhere = await make_account(
        settings, Role.registrar, "13600001111", region_code="330108", school=world.schools["B"]
    )
    await enrol_sms(client, sms, "13600001111")
    admin = await enrol_sms(client, sms, world.phones[Role.county_reviewer])  # 330106 only

    answer = await client.post(
        f"/accounts/{elsewhere}/second-factor/reset", headers=bearer(admin["tokens"])
    )

    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"
    assert await SecondFactor.exists().where(SecondFactor.account == elsewhere)
    denied = await AuditLog.select().where(AuditLog.action == "access_denied")
    assert denied[0]["entity_id"] == str(elsewhere)
    assert not await AuditLog.exists().where(AuditLog.action == "second_factor_reset")


async def test_a_reset_of_an_equal_or_higher_rank_is_refused(
    client: httpx.AsyncClient, world: World, sms: list[tuple[str, str]]
) -> None:
    leader = world.accounts[Role.school_leader]
    await enrol_sms(client, sms, world.phones[Role.school_leader])
    registrar = await enrol_sms(client, sms, world.phones[Role.registrar])

    answer = await client.post(
        f"/accounts/{leader}/second-factor/reset", headers=bearer(registrar["tokens"])
    )

    assert answer.status_code == 403
    assert answer.json()["code"] == "rank_too_high"
    assert await SecondFactor.exists().where(SecondFactor.account == leader)


def test_required_by_default_except_for_the_seeded_demo(tmp_path: Any) -> None:
    from backend.config import settings_from_env

    base = {"VAR_DIR": str(tmp_path)}

    assert settings_from_env({**base, "SEED_DEMO": "false"}).second_factor_required is True
    assert settings_from_env(base).second_factor_required is False  # the demo's logins
    assert (
        settings_from_env(
            {**base, "SEED_DEMO": "false", "SECOND_FACTOR_REQUIRED": "false"}
        ).second_factor_required
        is False
    )
    with pytest.raises(ValueError, match="SECOND_FACTOR_KEY"):
        settings_from_env({**base, "SECOND_FACTOR_KEY": "short"})


async def test_a_reset_of_an_id_past_int4_is_not_found(
    client: httpx.AsyncClient, world: World, sms: list[tuple[str, str]]
) -> None:
    admin = await enrol_sms(client, sms, world.phones[Role.county_reviewer])

    for account_id in ("2147483648", "9" * 25):
        answer = await client.post(
            f"/accounts/{account_id}/second-factor/reset", headers=bearer(admin["tokens"])
        )
        assert answer.status_code == 404, answer.text
        assert answer.json()["code"] == "not_found"


async def test_a_nul_byte_in_a_ticket_or_code_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    ticket = (await password_step(client, world.phones[Role.registrar]))["ticket"]

    for body in (
        {"ticket": ticket + "\x00", "method": "totp", "code": "123456"},
        {"ticket": ticket, "method": "totp", "code": "123\x00456"},
    ):
        answer = await client.post("/auth/second-factor/verify", json=body)
        assert answer.status_code == 400, answer.text
        assert "\x00" not in answer.text


async def test_a_login_answer_carries_the_phone_masked(
    client: httpx.AsyncClient, world: World, sms: list[tuple[str, str]]
) -> None:
    phone = world.phones[Role.registrar]
    challenge = await password_step(client, phone)
    sent = await client.post("/auth/second-factor/sms", json={"ticket": challenge["ticket"]})
    started = await client.post("/auth/second-factor/totp", json={"ticket": challenge["ticket"]})

    for answer in (challenge, sent.json(), started.json()):
        assert phone not in str(answer)


async def test_two_recovery_codes_at_once_on_one_ticket_spend_one(
    client: httpx.AsyncClient, world: World, sms: list[tuple[str, str]]
) -> None:
    phone = world.phones[Role.registrar]
    _, enrolled = await enrol_totp(client, sms, phone)
    codes: list[str] = enrolled["recovery_codes"]
    ticket = (await password_step(client, phone))["ticket"]

    answers: list[Any] = await asyncio.gather(
        verify(client, ticket, "recovery", codes[0]), verify(client, ticket, "recovery", codes[1])
    )

    assert sorted(a.status_code for a in answers) == [200, 401]
    left = await RecoveryCode.count().where(
        (RecoveryCode.account == world.accounts[Role.registrar]) & RecoveryCode.used_at.is_null()
    )
    assert left == len(codes) - 1  # the loser's code is still good


async def test_an_sms_the_gateway_refused_can_be_asked_again(
    client: httpx.AsyncClient,
    world: World,
    sms: list[tuple[str, str]],
    app: Litestar,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    phone = world.phones[Role.registrar]
    ticket = (await password_step(client, phone))["ticket"]

    async def refused(phone: str, text: str) -> None:
        raise SmsError("gateway down")

    monkeypatch.setattr(app.state.sms, "send", refused)
    failed = await client.post("/auth/second-factor/sms", json={"ticket": ticket})
    monkeypatch.undo()
    again = await client.post("/auth/second-factor/sms", json={"ticket": ticket})

    assert failed.status_code == 409
    assert failed.json()["code"] == "sms_failed"
    assert again.status_code == 200  # the unsent code was forgotten: a new one went
    assert [to for to, _ in sms] == [phone]

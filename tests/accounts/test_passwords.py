"""Common and short passwords are refused for staff and parents, with the reason in Chinese;
the demo and test passwords pass."""

from __future__ import annotations

import httpx
import pytest
from litestar import Litestar

from backend.accounts.passwords import check_password_rules, verify_password
from backend.accounts.roles import Role
from backend.accounts.tables import Account
from backend.config import Settings
from backend.errors import BadRequest
from backend.seed import DEMO_PASSWORD
from tests.factories import PASSWORD, World, bearer, build_world, login, make_students
from tests.factories import open_campaign as open_check
from tests.parents.helpers import code_of, issue_forms, otp_from

WEAK = ["password1", "Aa123456", "qwerty123", "Abcd1234", "11111111", "P@ssw0rd"]
SHORT = ["Zx8#q", "k9#Lm2"]
PARENT_PHONE = "13512340001"


@pytest.fixture
async def world(settings: Settings) -> World:
    return await build_world(settings)


@pytest.mark.parametrize("password", WEAK)
async def test_staff_cannot_change_to_a_common_password(
    client: httpx.AsyncClient, world: World, settings: Settings, password: str
) -> None:
    tokens = await login(client, world.phones[Role.registrar])
    before = await Account.select(Account.password_hash).where(
        Account.id == world.accounts[Role.registrar]
    )

    response = await client.post(
        "/auth/password",
        headers=bearer(tokens),
        json={"old_password": PASSWORD, "new_password": password},
    )

    assert response.status_code == 400
    assert response.json()["code"] == "weak_password"
    assert "常见" in response.json()["message"]
    assert "new_password" in response.json()["field_errors"]
    after = await Account.select(Account.password_hash).where(
        Account.id == world.accounts[Role.registrar]
    )
    assert after == before


@pytest.mark.parametrize("password", SHORT)
async def test_short_passwords_are_refused_saying_so(
    client: httpx.AsyncClient, world: World, password: str
) -> None:
    tokens = await login(client, world.phones[Role.teacher])
    response = await client.post(
        "/auth/password",
        headers=bearer(tokens),
        json={"old_password": PASSWORD, "new_password": password},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "weak_password"
    assert "至少 8 位" in response.json()["message"]


async def test_the_own_phone_number_is_no_password(client: httpx.AsyncClient, world: World) -> None:
    phone = world.phones[Role.teacher]
    tokens = await login(client, phone)
    response = await client.post(
        "/auth/password",
        headers=bearer(tokens),
        json={"old_password": PASSWORD, "new_password": f"{phone}a"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "weak_password"


@pytest.mark.parametrize("password", WEAK[:3])
async def test_an_admin_cannot_give_staff_a_common_password(
    client: httpx.AsyncClient, world: World, password: str
) -> None:
    headers = bearer(await login(client, world.phones[Role.registrar]))
    response = await client.post(
        "/accounts",
        headers=headers,
        json={
            "phone": "13511112222",
            "name": "新老师",
            "role": "teacher",
            "initial_password": password,
            "school_id": world.schools["A"],
            "class_id": world.classes["A1"],
        },
    )
    assert response.status_code == 400
    assert response.json()["code"] == "weak_password"
    assert not await Account.exists().where(Account.phone == "13511112222")


@pytest.mark.parametrize("password", WEAK[:3])
async def test_a_parent_cannot_sign_up_with_a_common_password(
    app: Litestar, client: httpx.AsyncClient, world: World, settings: Settings, password: str
) -> None:
    kids = await make_students(world, "A1", 1)
    await open_check()
    await issue_forms(client, world)
    app.state.sms.sent.clear()
    student = await birth_date_of(kids[0])
    started = await client.post(
        "/signup/start",
        json={
            "registration_code": await code_of(settings, kids[0]),
            "birth_date": student,
            "phone": PARENT_PHONE,
        },
    )
    assert started.status_code == 200, started.text

    confirmed = await client.post(
        "/signup/confirm",
        json={
            "ticket": started.json()["ticket"],
            "sms_code": otp_from(app.state.sms.sent, PARENT_PHONE),
            "password": password,
        },
    )

    assert confirmed.status_code == 400
    assert confirmed.json()["code"] == "weak_password"
    assert "常见" in confirmed.json()["message"]
    assert not await Account.exists().where(Account.phone == PARENT_PHONE)


async def birth_date_of(student_id: int) -> str:
    import json

    from backend.records.tables import Student

    row = await Student.select(Student.fields).where(Student.id == student_id).first()
    assert row is not None
    fields = row["fields"] if isinstance(row["fields"], dict) else json.loads(row["fields"])
    return str(fields["birth_date"])


async def test_a_strong_password_is_taken(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    tokens = await login(client, world.phones[Role.registrar])
    response = await client.post(
        "/auth/password",
        headers=bearer(tokens),
        json={"old_password": PASSWORD, "new_password": "Xuexiao-2026-hz"},
    )
    assert response.status_code == 204
    row = await Account.select(Account.password_hash).where(
        Account.id == world.accounts[Role.registrar]
    )
    assert await verify_password(settings, row[0]["password_hash"], "Xuexiao-2026-hz")


@pytest.mark.parametrize(
    "password", [DEMO_PASSWORD, PASSWORD, "Parent2026pw", "Init1234pw", "NewXuexiao2026"]
)
def test_the_demo_and_test_passwords_pass(password: str) -> None:
    check_password_rules(password)


def test_a_very_long_password_is_judged_quickly() -> None:
    import time

    started = time.perf_counter()
    with pytest.raises(BadRequest):
        check_password_rules("1" * 128)
    check_password_rules("Xuexiao2026" * 11)
    assert time.perf_counter() - started < 0.2

"""A parent signs up from the printed form: code + second fact + phone, then the SMS code."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from litestar import Litestar

from backend.accounts.tables import Account, AuditLog
from backend.config import Settings
from backend.records.tables import GuardianLink, Student
from tests.factories import World, bearer, build_world, make_students, open_campaign
from tests.parents.helpers import code_of, issue_forms, otp_from

PHONE = "13512345678"


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    await make_students(world, "A1", 3)
    await open_campaign()
    return world


@pytest.fixture
def sms(app: Litestar) -> list[tuple[str, str]]:
    app.state.sms.sent.clear()
    return app.state.sms.sent  # type: ignore[no-any-return]


async def child(n: int = 0) -> dict[str, Any]:
    rows = await Student.select().order_by(Student.id)
    row = rows[n]
    import json

    row["fields"] = row["fields"] if isinstance(row["fields"], dict) else json.loads(row["fields"])
    return row  # type: ignore[no-any-return]


async def start(
    client: httpx.AsyncClient, code: str, fact: str, phone: str = PHONE
) -> httpx.Response:
    return await client.post(
        "/signup/start", json={"registration_code": code, "fact": fact, "phone": phone}
    )


async def sign_up(
    client: httpx.AsyncClient, sms: list[tuple[str, str]], code: str, fact: str, phone: str = PHONE
) -> httpx.Response:
    started = await start(client, code, fact, phone)
    assert started.status_code == 200, started.text
    return await client.post(
        "/signup/confirm",
        json={
            "ticket": started.json()["ticket"],
            "code": otp_from(sms, phone),
            "password": "Parent2026pw",
        },
    )


async def test_parent_signs_up_and_sees_the_child(
    client: httpx.AsyncClient, settings: Settings, world: World, sms: list[tuple[str, str]]
) -> None:
    await issue_forms(client, world)
    kid = await child()
    code = await code_of(settings, kid["id"])

    started = await start(client, code.lower().replace("-", " "), kid["fields"]["birth_date"])
    assert started.status_code == 200, started.text
    assert started.json()["phone"] == "135****5678"
    confirmed = await client.post(
        "/signup/confirm",
        json={
            "ticket": started.json()["ticket"],
            "code": otp_from(sms, PHONE),
            "password": "Parent2026pw",
        },
    )

    assert confirmed.status_code == 200, confirmed.text
    tokens = confirmed.json()
    children = await client.get("/my/children", headers=bearer(tokens))
    assert [c["id"] for c in children.json()] == [kid["id"]]
    assert children.json()[0]["form"]["status"] == "not_uploaded"
    account = await Account.select().where(Account.phone == PHONE).first()
    assert account is not None
    assert account["role"] == "parent"
    assert await AuditLog.count().where(AuditLog.action == "link_child") == 1


async def test_the_id_tail_works_as_the_second_fact(
    client: httpx.AsyncClient, settings: Settings, world: World, sms: list[tuple[str, str]]
) -> None:
    await issue_forms(client, world)
    kid = await child()
    code = await code_of(settings, kid["id"])
    response = await sign_up(client, sms, code, kid["fields"]["id_number"][-6:].lower())
    assert response.status_code == 200


async def test_a_second_childs_code_links_a_second_child(
    client: httpx.AsyncClient, settings: Settings, world: World, sms: list[tuple[str, str]]
) -> None:
    await issue_forms(client, world)
    first, second = await child(0), await child(1)
    await sign_up(client, sms, await code_of(settings, first["id"]), first["fields"]["birth_date"])

    started = await start(
        client, await code_of(settings, second["id"]), second["fields"]["birth_date"]
    )
    confirmed = await client.post(
        "/signup/confirm", json={"ticket": started.json()["ticket"], "code": otp_from(sms, PHONE)}
    )

    assert confirmed.status_code == 200, confirmed.text
    links = await GuardianLink.select(GuardianLink.student)
    assert sorted(link["student"] for link in links) == sorted([first["id"], second["id"]])
    assert await Account.count().where(Account.phone == PHONE) == 1


async def test_wrong_fact_and_wrong_code_answer_alike(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    await issue_forms(client, world)
    kid = await child()
    code = await code_of(settings, kid["id"])

    wrong_fact = await start(client, code, "2001-01-01")
    wrong_code = await start(client, "ZZZZ-ZZZZ", kid["fields"]["birth_date"])

    assert wrong_fact.status_code == wrong_code.status_code == 400
    assert wrong_fact.json()["code"] == wrong_code.json()["code"] == "signup_refused"
    assert wrong_fact.json()["message"] == wrong_code.json()["message"]


async def test_guessing_is_throttled(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    await issue_forms(client, world)
    kid = await child()
    code = await code_of(settings, kid["id"])
    for i in range(5):
        assert (await start(client, code, f"2001-01-0{i + 1}")).status_code == 400

    blocked = await start(client, code, kid["fields"]["birth_date"])  # even the right one

    assert blocked.status_code == 429
    assert blocked.json()["code"] == "too_many_attempts"


async def test_a_wrong_sms_code_is_refused_and_limited(
    client: httpx.AsyncClient, settings: Settings, world: World, sms: list[tuple[str, str]]
) -> None:
    await issue_forms(client, world)
    kid = await child()
    started = await start(client, await code_of(settings, kid["id"]), kid["fields"]["birth_date"])
    ticket = started.json()["ticket"]
    right = otp_from(sms, PHONE)
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(4):
        response = await client.post(
            "/signup/confirm", json={"ticket": ticket, "code": wrong, "password": "Parent2026pw"}
        )
        assert response.json()["code"] == "otp_mismatch"
    last = await client.post("/signup/confirm", json={"ticket": ticket, "code": wrong})
    assert last.status_code == 429
    too_late = await client.post(
        "/signup/confirm", json={"ticket": ticket, "code": right, "password": "Parent2026pw"}
    )
    assert too_late.json()["code"] == "ticket_expired"
    assert await GuardianLink.count() == 0


async def test_a_code_serves_two_guardians_once_each(
    client: httpx.AsyncClient, settings: Settings, world: World, sms: list[tuple[str, str]]
) -> None:
    await issue_forms(client, world)
    kid = await child()
    code = await code_of(settings, kid["id"])
    birth = kid["fields"]["birth_date"]

    father = await sign_up(client, sms, code, birth, kid["fields"]["guardian1_phone"])
    again = await sign_up(client, sms, code, birth, kid["fields"]["guardian1_phone"])
    mother = await sign_up(client, sms, code, birth, kid["fields"]["guardian2_phone"])
    third = await start(client, code, birth, "13698765432")

    assert father.status_code == 200
    assert again.status_code == 409
    assert again.json()["code"] == "already_linked"
    assert mother.status_code == 200
    assert third.status_code == 409
    assert third.json()["code"] == "code_used_up"
    slots = {r["guardian_slot"] for r in await GuardianLink.select(GuardianLink.guardian_slot)}
    assert slots == {1, 2}


async def test_a_reissued_form_voids_the_old_code(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    await issue_forms(client, world)
    kid = await child()
    old = await code_of(settings, kid["id"])
    await issue_forms(client, world)

    response = await start(client, old, kid["fields"]["birth_date"])

    assert response.status_code == 400
    assert response.json()["code"] == "signup_refused"


async def test_codes_expire_with_the_campaign(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    from datetime import UTC, datetime, timedelta

    from backend.records.tables import Campaign

    await issue_forms(client, world)
    kid = await child()
    code = await code_of(settings, kid["id"])
    await Campaign.update({Campaign.ends_at: datetime.now(UTC) - timedelta(minutes=1)}, force=True)

    response = await start(client, code, kid["fields"]["birth_date"])

    assert response.status_code == 409
    assert response.json()["code"] == "code_expired"


async def test_an_http_sms_gateway_receives_the_code(
    settings: Settings, world: World, client: httpx.AsyncClient
) -> None:
    """The generic HTTP provider against a real local server that checks what it gets."""
    import asyncio
    import json

    from backend.notify.sms import HttpSmsSender

    received: list[dict[str, Any]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        body = json.loads(await reader.readexactly(length))
        assert b"authorization: bearer sms-secret" in head.lower()
        received.append(body)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, httpx.AsyncClient() as http:
        sender = HttpSmsSender(http, f"http://127.0.0.1:{port}/send", "sms-secret")
        await sender.send(PHONE, "【学籍核查】您的验证码是 123456")
    assert received == [{"phone": PHONE, "text": "【学籍核查】您的验证码是 123456"}]

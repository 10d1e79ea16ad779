"""A parent signs up from the printed form: code + second fact + phone, then the SMS code."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.accounts.tables import Account, AuditLog
from backend.config import Settings
from backend.records.tables import GuardianLink, Student
from tests.factories import World, bearer, build_world, login, make_students, open_campaign
from tests.parents.helpers import code_of, issue_forms, otp_from, second_fact

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
        "/signup/start", json={"registration_code": code, **second_fact(fact), "phone": phone}
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
            "sms_code": otp_from(sms, phone),
            "password": "Parent2026pw",
        },
    )


async def test_parent_signs_up_and_sees_the_child(
    client: httpx.AsyncClient, settings: Settings, world: World, sms: list[tuple[str, str]]
) -> None:
    await issue_forms(client, world)
    kid = await child()
    code = await code_of(settings, kid["id"])
    phone = kid["fields"]["guardian1_phone"]

    started = await start(
        client, code.lower().replace("-", " "), kid["fields"]["birth_date"], phone
    )
    assert started.status_code == 200, started.text
    assert started.json()["phone"] == phone[:3] + "****" + phone[-4:]
    confirmed = await client.post(
        "/signup/confirm",
        json={
            "ticket": started.json()["ticket"],
            "sms_code": otp_from(sms, phone),
            "password": "Parent2026pw",
        },
    )

    assert confirmed.status_code == 200, confirmed.text
    tokens = confirmed.json()
    children = await client.get("/my/children", headers=bearer(tokens))
    assert [c["id"] for c in children.json()] == [kid["id"]]
    assert children.json()[0]["link_status"] == "confirmed"
    assert children.json()[0]["form"]["status"] == "not_uploaded"
    account = await Account.select().where(Account.phone == phone).first()
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


async def test_a_signed_in_parent_links_a_second_child(
    client: httpx.AsyncClient, settings: Settings, world: World, sms: list[tuple[str, str]]
) -> None:
    await issue_forms(client, world)
    first, second = await child(0), await child(1)
    phone = first["fields"]["guardian1_phone"]
    # Siblings: the same father is guardian 1 on the second record too.
    second["fields"]["guardian1_phone"] = phone
    await Student.update({Student.fields: second["fields"]}).where(Student.id == second["id"])
    signed_up = await sign_up(
        client, sms, await code_of(settings, first["id"]), first["fields"]["birth_date"], phone
    )

    linked = await client.post(
        "/my/children",
        headers=bearer(signed_up.json()),
        json={
            "registration_code": await code_of(settings, second["id"]),
            "birth_date": second["fields"]["birth_date"],
        },
    )

    assert linked.status_code == 201, linked.text
    assert linked.json()["link_status"] == "confirmed"
    links = await GuardianLink.select(GuardianLink.student, GuardianLink.status)
    assert sorted((link["student"], link["status"]) for link in links) == sorted(
        [(first["id"], "confirmed"), (second["id"], "confirmed")]
    )
    assert await Account.count().where(Account.phone == phone) == 1
    detail = await client.get(f"/my/children/{second['id']}", headers=bearer(signed_up.json()))
    assert detail.status_code == 200


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
            "/signup/confirm",
            json={"ticket": ticket, "sms_code": wrong, "password": "Parent2026pw"},
        )
        assert response.json()["code"] == "otp_mismatch"
    last = await client.post(
        "/signup/confirm", json={"ticket": ticket, "sms_code": wrong, "password": "Parent2026pw"}
    )
    assert last.status_code == 429
    too_late = await client.post(
        "/signup/confirm", json={"ticket": ticket, "sms_code": right, "password": "Parent2026pw"}
    )
    assert too_late.status_code == 429
    assert too_late.json()["code"] == "too_many_attempts"
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
    assert again.json()["code"] == "account_exists"
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


async def test_sixty_concurrent_guesses_on_one_ticket_get_five_tries(
    client: httpx.AsyncClient, settings: Settings, world: World, sms: list[tuple[str, str]]
) -> None:
    """The race that let 59 of 60 simultaneous guesses be compared: each guess is counted by
    one Redis operation before it is compared, so only OTP_ATTEMPTS are ever evaluated."""
    import asyncio

    from backend.parents.signup import OTP_ATTEMPTS

    await issue_forms(client, world)
    kid = await child()
    started = await start(client, await code_of(settings, kid["id"]), kid["fields"]["birth_date"])
    ticket = started.json()["ticket"]
    right = otp_from(sms, PHONE)
    wrong = [f"{(int(right) + n) % 10**6:06d}" for n in range(1, 61)]

    answers = await asyncio.gather(
        *(
            client.post(
                "/signup/confirm",
                json={"ticket": ticket, "sms_code": c, "password": "Parent2026pw"},
            )
            for c in wrong
        )
    )

    codes = [a.json()["code"] for a in answers]
    # Every evaluated wrong guess but the last says "wrong code"; the last one burns the ticket.
    assert codes.count("otp_mismatch") == OTP_ATTEMPTS - 1, codes
    assert codes.count("too_many_attempts") == 60 - (OTP_ATTEMPTS - 1), codes
    assert {a.status_code for a in answers} == {400, 429}
    late = await client.post(
        "/signup/confirm", json={"ticket": ticket, "sms_code": right, "password": "Parent2026pw"}
    )
    assert late.status_code == 429
    assert late.json()["code"] == "too_many_attempts"
    assert "access_token" not in late.json()
    assert not await Account.exists().where(Account.phone == PHONE)
    assert await GuardianLink.count() == 0


async def test_sign_up_never_enters_an_existing_account(
    client: httpx.AsyncClient, settings: Settings, world: World, sms: list[tuple[str, str]]
) -> None:
    """The takeover: a form in hand and a parent's phone (the one-time code guessed, or
    read over a shoulder) used to log into that parent's account with no password."""
    await issue_forms(client, world)
    mine, theirs = await child(0), await child(1)
    victim = mine["fields"]["guardian1_phone"]
    signed_up = await sign_up(
        client, sms, await code_of(settings, mine["id"]), mine["fields"]["birth_date"], victim
    )
    assert signed_up.status_code == 200
    links_before = await GuardianLink.select().order_by(GuardianLink.id)

    started = await start(
        client, await code_of(settings, theirs["id"]), theirs["fields"]["birth_date"], victim
    )
    attack = await client.post(
        "/signup/confirm",
        json={
            "ticket": started.json()["ticket"],
            "sms_code": otp_from(sms, victim),
            "password": "Attacker2026pw",
        },
    )

    assert attack.status_code == 409, attack.text
    assert attack.json()["code"] == "account_exists"
    assert "请直接登录" in attack.json()["message"]
    assert "access_token" not in attack.json()
    assert await GuardianLink.select().order_by(GuardianLink.id) == links_before
    refused = await AuditLog.select().where(AuditLog.action == "signup_refused")
    assert [(r["entity"], r["entity_id"]) for r in refused] == [
        ("account", str(await account_id(victim)))
    ]
    assert await Account.count().where(Account.phone == victim) == 1
    # The ticket is spent: sending the same code again does not get in either.
    again = await client.post(
        "/signup/confirm",
        json={
            "ticket": started.json()["ticket"],
            "sms_code": otp_from(sms, victim),
            "password": "Attacker2026pw",
        },
    )
    assert again.status_code == 400
    assert again.json()["code"] == "ticket_expired"


async def account_id(phone: str) -> int:
    row = await Account.select(Account.id).where(Account.phone == phone).first()
    assert row is not None
    return int(row["id"])


async def pending_parent(
    client: httpx.AsyncClient, settings: Settings, sms: list[tuple[str, str]], kid: dict[str, Any]
) -> dict[str, str]:
    """A stranger's phone (none of the record's guardians) signs up with the child's form."""
    response = await sign_up(
        client, sms, await code_of(settings, kid["id"]), kid["fields"]["birth_date"]
    )
    assert response.status_code == 200, response.text
    return bearer(response.json())


async def photo(client: httpx.AsyncClient, headers: dict[str, str], student_id: int) -> int:
    from tests.parents.images import jpeg_with_orientation

    response = await client.post(
        f"/students/{student_id}/uploads",
        headers=headers,
        files={"file": ("form.jpg", jpeg_with_orientation(1), "image/jpeg")},
    )
    return response.status_code


async def test_a_phone_not_on_the_record_waits_for_the_class_teacher(
    client: httpx.AsyncClient, settings: Settings, world: World, sms: list[tuple[str, str]]
) -> None:
    await issue_forms(client, world)
    kid = await child()
    parent = await pending_parent(client, settings, sms, kid)

    children = (await client.get("/my/children", headers=parent)).json()
    assert children == [
        {
            "id": kid["id"],
            "name": None,
            "registry_number": None,
            "school_id": None,
            "class_id": None,
            "form": None,
            "link_status": "pending",
            "change_open": False,  # nothing of the record, a change under way included
            "change_open_label": None,
        }
    ]
    assert (await client.get(f"/my/children/{kid['id']}", headers=parent)).status_code == 404
    assert await photo(client, parent, kid["id"]) == 404

    teacher = bearer(await login(client, world.phones[Role.teacher]))
    waiting = await client.get("/guardian-links", headers=teacher, params={"status": "pending"})
    assert waiting.status_code == 200, waiting.text
    [link] = waiting.json()["items"]
    assert link["student_id"] == kid["id"]
    assert link["phone"] == "135****5678"
    confirmed = await client.post(f"/guardian-links/{link['id']}/confirm", headers=teacher)

    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "confirmed"
    audit = await AuditLog.select().where(AuditLog.action == "confirm_link")
    assert [(a["entity_id"], a["actor_id"]) for a in audit] == [
        (str(link["id"]), world.accounts[Role.teacher])
    ]
    assert (await client.get(f"/my/children/{kid['id']}", headers=parent)).status_code == 200
    listed = (await client.get("/my/children", headers=parent)).json()
    assert listed[0]["link_status"] == "confirmed"
    assert listed[0]["name"] == kid["name"]


async def test_a_rejected_link_opens_nothing_and_gives_the_code_use_back(
    client: httpx.AsyncClient, settings: Settings, world: World, sms: list[tuple[str, str]]
) -> None:
    from backend.records.tables import IssuedForm

    await issue_forms(client, world)
    kid = await child()
    parent = await pending_parent(client, settings, sms, kid)
    link = await GuardianLink.select().first()
    assert link is not None
    registrar = bearer(await login(client, world.phones[Role.registrar]))

    rejected = await client.post(f"/guardian-links/{link['id']}/reject", headers=registrar)
    twice = await client.post(f"/guardian-links/{link['id']}/confirm", headers=registrar)

    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert twice.status_code == 409
    assert twice.json()["code"] == "invalid_status"
    uses = await IssuedForm.select(IssuedForm.registration_uses).where(
        (IssuedForm.student == kid["id"]) & IssuedForm.superseded_at.is_null()
    )
    assert uses == [{"registration_uses": 0}]
    assert (await client.get("/my/children", headers=parent)).json()[0]["link_status"] == (
        "rejected"
    )
    assert (await client.get(f"/my/children/{kid['id']}", headers=parent)).status_code == 404
    retry = await client.post(
        "/my/children",
        headers=parent,
        json={
            "registration_code": await code_of(settings, kid["id"]),
            "birth_date": kid["fields"]["birth_date"],
        },
    )
    assert retry.status_code == 409
    assert retry.json()["code"] == "link_rejected"
    assert await AuditLog.count().where(AuditLog.action == "reject_link") == 1


async def test_links_are_decided_only_by_the_class_and_school_in_scope(
    client: httpx.AsyncClient, settings: Settings, world: World, sms: list[tuple[str, str]]
) -> None:
    from tests.factories import make_account

    await issue_forms(client, world)
    kid = await child()
    await pending_parent(client, settings, sms, kid)
    link = await GuardianLink.select().first()
    assert link is not None
    await make_account(
        settings,
        Role.teacher,
        "13800009999",
        region_code="330106",
        school=world.schools["A"],
        school_class=world.classes["A2"],
    )
    other_teacher = bearer(await login(client, "13800009999"))
    reviewer = bearer(await login(client, world.phones[Role.county_reviewer]))

    listed = await client.get("/guardian-links", headers=other_teacher)
    outside = await client.post(f"/guardian-links/{link['id']}/confirm", headers=other_teacher)
    missing = await client.post("/guardian-links/999999/confirm", headers=other_teacher)
    wrong_role = await client.post(f"/guardian-links/{link['id']}/confirm", headers=reviewer)

    assert listed.json()["items"] == []
    assert outside.status_code == missing.status_code == 404
    assert outside.json()["code"] == missing.json()["code"] == "not_found"
    assert wrong_role.status_code == 403
    assert wrong_role.json()["code"] == "link_deciders_only"
    denied = await AuditLog.select().where(AuditLog.action == "access_denied")
    assert [(d["entity"], d["entity_id"]) for d in denied] == [("guardian_link", str(link["id"]))]
    still = await GuardianLink.select(GuardianLink.status).where(GuardianLink.id == link["id"])
    assert still == [{"status": "pending"}]


async def test_linking_from_the_account_is_throttled_like_sign_up(
    client: httpx.AsyncClient, settings: Settings, world: World, sms: list[tuple[str, str]]
) -> None:
    await issue_forms(client, world)
    first, second = await child(0), await child(1)
    phone = first["fields"]["guardian1_phone"]
    signed_up = await sign_up(
        client, sms, await code_of(settings, first["id"]), first["fields"]["birth_date"], phone
    )
    headers = bearer(signed_up.json())
    code = await code_of(settings, second["id"])

    def body(fact: str) -> dict[str, str]:
        return {"registration_code": code, "birth_date": fact}

    for i in range(5):
        wrong = await client.post("/my/children", headers=headers, json=body(f"2001-01-0{i + 1}"))
        assert wrong.json()["code"] == "signup_refused"
    blocked = await client.post(
        "/my/children", headers=headers, json=body(second["fields"]["birth_date"])
    )

    assert blocked.status_code == 429
    assert blocked.json()["code"] == "too_many_attempts"
    assert await GuardianLink.count().where(GuardianLink.student == second["id"]) == 0
    assert await AuditLog.count().where(AuditLog.action == "signup_failed") == 5


async def test_linking_from_the_account_respects_the_two_guardian_limit(
    client: httpx.AsyncClient, settings: Settings, world: World, sms: list[tuple[str, str]]
) -> None:
    from backend.records.tables import IssuedForm

    await issue_forms(client, world)
    first, second = await child(0), await child(1)
    phone = first["fields"]["guardian1_phone"]
    signed_up = await sign_up(
        client, sms, await code_of(settings, first["id"]), first["fields"]["birth_date"], phone
    )
    await IssuedForm.update({IssuedForm.registration_uses: 2}).where(
        IssuedForm.student == second["id"]
    )

    response = await client.post(
        "/my/children",
        headers=bearer(signed_up.json()),
        json={
            "registration_code": await code_of(settings, second["id"]),
            "birth_date": second["fields"]["birth_date"],
        },
    )

    assert response.status_code == 409
    assert response.json()["code"] == "code_used_up"
    assert await GuardianLink.count().where(GuardianLink.student == second["id"]) == 0


async def test_the_right_code_among_sixty_wrong_ones_is_one_of_five_tries(
    client: httpx.AsyncClient, settings: Settings, world: World, sms: list[tuple[str, str]]
) -> None:
    """59 wrong guesses and the right one at once: whatever the order they reach Redis in,
    at most OTP_ATTEMPTS of them are compared, so the right one gets in only as one of those."""
    import asyncio

    from backend.parents.signup import OTP_ATTEMPTS

    await issue_forms(client, world)
    kid = await child()
    started = await start(client, await code_of(settings, kid["id"]), kid["fields"]["birth_date"])
    ticket = started.json()["ticket"]
    right = otp_from(sms, PHONE)
    guesses = [f"{(int(right) + n) % 10**6:06d}" for n in range(1, 60)] + [right]

    answers = await asyncio.gather(
        *(
            client.post(
                "/signup/confirm",
                json={"ticket": ticket, "sms_code": c, "password": "Parent2026pw"},
            )
            for c in guesses
        )
    )

    ok = [a for a in answers if a.status_code == 200]
    mismatched = [a for a in answers if a.json().get("code") == "otp_mismatch"]
    throttled = [a for a in answers if a.json().get("code") == "too_many_attempts"]
    assert len(ok) <= 1
    assert len(mismatched) <= OTP_ATTEMPTS - 1
    assert len(ok) + len(mismatched) + len(throttled) == 60
    # Compared: the mismatches, the right one if it got in, and the guess that burnt the ticket.
    assert len(ok) + len(mismatched) + (0 if ok else 1) <= OTP_ATTEMPTS
    assert await Account.count().where(Account.phone == PHONE) == len(ok)
    assert await GuardianLink.count() == len(ok)


async def test_two_confirms_with_the_right_code_make_one_account(
    client: httpx.AsyncClient, settings: Settings, world: World, sms: list[tuple[str, str]]
) -> None:
    import asyncio

    await issue_forms(client, world)
    kid = await child()
    started = await start(client, await code_of(settings, kid["id"]), kid["fields"]["birth_date"])
    body = {
        "ticket": started.json()["ticket"],
        "sms_code": otp_from(sms, PHONE),
        "password": "Parent2026pw",
    }

    answers = await asyncio.gather(*(client.post("/signup/confirm", json=body) for _ in range(2)))

    assert sorted(a.status_code for a in answers) == [200, 400]
    assert {a.json().get("code") for a in answers if a.status_code == 400} == {"ticket_expired"}
    assert await Account.count().where(Account.phone == PHONE) == 1
    assert await GuardianLink.count() == 1


async def test_a_missing_password_keeps_the_ticket(
    client: httpx.AsyncClient, settings: Settings, world: World, sms: list[tuple[str, str]]
) -> None:
    await issue_forms(client, world)
    kid = await child()
    started = await start(client, await code_of(settings, kid["id"]), kid["fields"]["birth_date"])
    body = {"ticket": started.json()["ticket"], "sms_code": otp_from(sms, PHONE)}

    missing = await client.post("/signup/confirm", json=body)
    weak = await client.post("/signup/confirm", json={**body, "password": "short"})
    done = await client.post("/signup/confirm", json={**body, "password": "Parent2026pw"})

    assert missing.status_code == 400
    assert missing.json()["code"] == "password_required"
    assert missing.json()["message"] == "首次注册请设置登录密码"
    assert missing.json()["field_errors"] == {"password": "首次注册请设置登录密码"}
    assert weak.status_code == 400
    assert done.status_code == 200, done.text


async def test_concurrent_wrong_facts_on_one_code_get_five_tries(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    """The code/fact throttle had the same read-then-write race: the failures were counted
    after the check, so guesses sent at once all passed it."""
    import asyncio

    await issue_forms(client, world)
    kid = await child()
    code = await code_of(settings, kid["id"])

    answers = await asyncio.gather(
        *(start(client, code, f"2001-{1 + n // 28:02d}-{1 + n % 28:02d}") for n in range(30))
    )

    codes = [a.json()["code"] for a in answers]
    assert codes.count("signup_refused") == 5, codes
    assert codes.count("too_many_attempts") == 25, codes
    assert await AuditLog.count().where(AuditLog.action == "signup_failed") == 5
    blocked = await start(client, code, kid["fields"]["birth_date"])
    assert blocked.status_code == 429


async def test_sign_up_leaves_no_phone_number_in_redis_and_no_counter_without_expiry(
    client: httpx.AsyncClient,
    settings: Settings,
    world: World,
    sms: list[tuple[str, str]],
    app: Litestar,
) -> None:
    """Redis keys are listed by anyone operating it: they name phones by a hash. A counter
    left without an expiry would refuse that phone for good."""
    await issue_forms(client, world)
    kid = await child()
    code = await code_of(settings, kid["id"])
    phone = kid["fields"]["guardian1_phone"]
    assert (await start(client, code, "20000101", phone)).status_code == 400  # a wrong fact
    assert (await start(client, code, kid["fields"]["birth_date"], phone)).status_code == 200

    redis = app.state.redis
    keys = [key.decode() for key in await redis.keys("*")]
    assert keys
    assert not [key for key in keys if phone in key]
    for key in keys:
        if key.startswith("signup-"):
            assert await redis.ttl(key) > 0, key


def typed_forms(iso: str) -> list[str]:
    """The ways a parent types a birth date on the phone."""
    year, month, day = (int(part) for part in iso.split("-"))
    return [
        f"{year}年{month}月{day}日",
        f"{year}-{month:02d}-{day:02d}",
        f"{year}/{month}/{day}",
        f"{year}.{month}.{day}",
        f"{year}{month:02d}{day:02d}",
    ]


async def test_the_birth_date_is_accepted_as_a_parent_types_it(
    client: httpx.AsyncClient, settings: Settings, world: World, sms: list[tuple[str, str]]
) -> None:
    await issue_forms(client, world)
    kid = await child()
    code = await code_of(settings, kid["id"])

    for typed in typed_forms(kid["fields"]["birth_date"]):
        response = await client.post(
            "/signup/start",
            json={"registration_code": code, "birth_date": typed, "phone": PHONE},
        )
        assert response.status_code == 200, (typed, response.text)


@pytest.mark.parametrize(
    "facts",
    [{}, {"birth_date": "2015-03-07", "id_last6": "12345X"}],
    ids=["neither", "both"],
)
async def test_exactly_one_second_fact_is_asked_for(
    client: httpx.AsyncClient, settings: Settings, world: World, facts: dict[str, str]
) -> None:
    await issue_forms(client, world)
    code = await code_of(settings, (await child())["id"])

    response = await client.post(
        "/signup/start", json={"registration_code": code, **facts, "phone": PHONE}
    )

    assert response.status_code == 400
    answer = response.json()
    assert answer["code"] == "one_fact_required"
    assert answer["message"] == "请填写孩子的出生日期或身份证件号后 6 位，二者只填一项"
    assert set(answer["field_errors"]) == {"birth_date", "id_last6"}
    assert await AuditLog.count().where(AuditLog.action == "signup_failed") == 0


async def test_a_date_that_is_not_a_date_is_refused_on_its_field(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    response = await client.post(
        "/signup/start",
        json={"registration_code": "ABCD-EFGH", "birth_date": "15/3/2015", "phone": PHONE},
    )

    assert response.status_code == 400
    assert response.json()["field_errors"] == {
        "birth_date": "日期无法识别，请写成 2020-05-15 或 2020年5月15日"
    }


async def test_the_schema_names_both_facts_and_requires_the_password(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    operations = {
        op["operationId"]: op for path in schema["paths"].values() for op in path.values()
    }

    def body(operation_id: str) -> dict[str, Any]:
        ref = operations[operation_id]["requestBody"]["content"]["application/json"]["schema"]
        return schema["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]  # type: ignore[no-any-return]

    start_body, confirm_body = body("startSignup"), body("confirmSignup")
    assert {"birth_date", "id_last6"} <= set(start_body["properties"])
    assert "fact" not in start_body["properties"]
    assert "2020年5月15日" in start_body["properties"]["birth_date"]["examples"]
    assert "password" in confirm_body["required"]
    assert "sms_code" in confirm_body["required"]
    assert "code" not in confirm_body["properties"]


async def test_sign_up_sms_per_phone_holds_under_concurrent_requests(
    client: httpx.AsyncClient, settings: Settings, world: World, sms: list[tuple[str, str]]
) -> None:
    """Right codes for three children, all for one phone, at once: the phone gets its hour's
    SMS and not one more (the refused ones took nothing)."""
    import asyncio

    from backend.parents.signup import SMS_PER_PHONE_PER_HOUR

    await issue_forms(client, world)
    kids = [await child(n) for n in range(3)]
    codes = {kid["id"]: await code_of(settings, kid["id"]) for kid in kids}

    answers = await asyncio.gather(
        *(
            start(client, codes[kid["id"]], kid["fields"]["birth_date"])
            for kid in kids * 3  # 9 requests, at most 3 per code: only the SMS limit binds
        )
    )

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * SMS_PER_PHONE_PER_HOUR + [429] * (9 - SMS_PER_PHONE_PER_HOUR)
    assert {a.json()["code"] for a in answers if a.status_code == 429} == {"too_many_attempts"}
    assert len([to for to, _ in sms if to == PHONE]) == SMS_PER_PHONE_PER_HOUR

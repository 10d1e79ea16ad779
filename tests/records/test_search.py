"""Finding a student by a full identifier (registry number, ID number, phone) is for those who
may reveal, and audited; anyone else is refused whether or not it would match, so a search is
no oracle for a guessed number. The logs of such a search hold none of its digits."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import httpx
import pytest
import uvicorn
from litestar import Litestar

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.db import json_value
from backend.records.service import load_fields
from backend.records.tables import Student
from backend.seed import DEMO_PASSWORD, DemoLogin, seed_demo
from tests.factories import bearer, login


@pytest.fixture
async def logins(settings: Settings) -> dict[Role, DemoLogin]:
    return {login.role: login for login in await seed_demo(settings)}


async def as_role(
    client: httpx.AsyncClient, logins: dict[Role, DemoLogin], role: Role
) -> dict[str, str]:
    return bearer(await login(client, logins[role].phone, DEMO_PASSWORD))


async def a_student_of_class_1() -> dict[str, Any]:
    rows = await Student.select().where(Student.school_class == 1).order_by(Student.id)
    # one whose ID number is held once (the seed plants duplicates and invalid ones)
    counts: dict[str, int] = {}
    for row in await Student.select(Student.id_number):
        counts[row["id_number"]] = counts.get(row["id_number"], 0) + 1
    return next(
        r for r in rows if r["registry_number"].startswith("G") and counts[r["id_number"]] == 1
    )


def guesses(student: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Each kind of identifier: (the student's real one, a wrong guess of the same shape)."""
    number = student["id_number"]
    wrong = number[:14] + ("0000" if number[14:] != "0000" else "0010")
    phone = load_fields(student["fields"])["guardian1_phone"]
    return {
        "registry_number": ("G" + number, "G" + wrong),
        "id_number": (number, wrong),
        "phone": (phone, phone[:-4] + ("0000" if phone[-4:] != "0000" else "1111")),
    }


@pytest.mark.parametrize("role", [Role.teacher])
async def test_a_teacher_searching_by_identifier_is_refused_alike_for_right_and_wrong(
    client: httpx.AsyncClient, logins: dict[Role, DemoLogin], role: Role
) -> None:
    headers = await as_role(client, logins, role)
    student = await a_student_of_class_1()

    for kind, (right, wrong) in guesses(student).items():
        hit = await client.get("/students", headers=headers, params={"q": right})
        miss = await client.get("/students", headers=headers, params={"q": wrong})

        assert hit.status_code == miss.status_code == 403, (kind, hit.text)
        for response in (hit, miss):
            body = response.json()
            assert body["code"] == "identifier_search_forbidden"
            assert "学籍管理员" in body["message"]
        strip = lambda r: {k: v for k, v in r.json().items() if k != "request_id"}  # noqa: E731
        assert strip(hit) == strip(miss)  # nothing tells the right guess from the wrong
    denied = await AuditLog.select().where(AuditLog.action == "search_denied")
    assert len(denied) == 6
    assert {json_value(row["after"])["by"] for row in denied} == {
        "registry_number",
        "id_number",
        "phone",
    }
    assert all(student["id_number"] not in str(row) for row in denied)
    # the service audited its own refusal: the 403 hook does not write a second row
    assert not await AuditLog.exists().where(AuditLog.action == "forbidden")
    # a search by name still works for the teacher
    by_name = await client.get("/students", headers=headers, params={"q": student["name"]})
    assert student["id"] in [s["id"] for s in by_name.json()["items"]]


async def test_a_registrar_finds_by_each_identifier_and_each_search_is_audited(
    client: httpx.AsyncClient, logins: dict[Role, DemoLogin]
) -> None:
    headers = await as_role(client, logins, Role.registrar)
    student = await a_student_of_class_1()

    for kind, (right, wrong) in guesses(student).items():
        hit = await client.get("/students", headers=headers, params={"q": right})
        miss = await client.get("/students", headers=headers, params={"q": wrong})

        assert hit.status_code == 200, hit.text
        assert student["id"] in [s["id"] for s in hit.json()["items"]], kind
        assert miss.json()["total"] == 0
        assert right not in hit.text  # the answer is masked as everywhere
    searches = await AuditLog.select().where(AuditLog.action == "search").order_by(AuditLog.id)
    assert len(searches) == 6
    afters = [json_value(row["after"]) for row in searches]
    assert [a["by"] for a in afters] == [
        "registry_number",
        "registry_number",
        "id_number",
        "id_number",
        "phone",
        "phone",
    ]
    assert student["id"] in afters[0]["found"]
    assert afters[1]["found"] == []
    assert all(row["actor_role"] == "registrar" for row in searches)
    assert all(student["id_number"] not in str(row) for row in searches)


async def test_a_search_by_id_number_leaves_no_digits_in_the_logs(
    app: Litestar,
    settings: Settings,
    logins: dict[Role, DemoLogin],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Served by uvicorn as `python app.py` serves (its access log included), over a socket.
    Every server-side logger at DEBUG is captured; the test's own HTTP client (httpx) is the
    searcher's side and left out."""
    from app import server_config

    student = await a_student_of_class_1()
    number = student["id_number"]
    config = server_config(app, settings)
    config.lifespan = "off"  # the test session already runs the app's lifespan
    server = uvicorn.Server(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    access = logging.getLogger("uvicorn.access")
    access.addHandler(caplog.handler)  # uvicorn's loggers do not propagate to the root
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(1000):  # up to 10 s
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started
        with caplog.at_level(logging.DEBUG):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                for role in (Role.registrar, Role.teacher):
                    headers = await as_role(http, logins, role)
                    for q in (number, "G" + number):
                        await http.get("/students", headers=headers, params={"q": q})
    finally:
        server.should_exit = True
        await serving
        access.removeHandler(caplog.handler)
        sock.close()

    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    access = [r.getMessage() for r in server_side if r.name == "uvicorn.access"]
    assert len([line for line in access if "/students" in line]) == 4  # the log was seen
    text = "\n".join(f"{r.name} {r.getMessage()}" for r in server_side)
    assert number not in text
    assert number[6:14] not in text  # not even the birth-date digits


def test_what_counts_as_an_identifier() -> None:
    from backend.records.reads import IdentifierKind, identifier_kind

    assert identifier_kind("王小明") is None
    assert identifier_kind("John Smith") is None  # a foreign child's name is a name
    assert identifier_kind("Jean-Baptiste") is None
    assert identifier_kind("2018") is None
    assert identifier_kind("G330106201803070013") is IdentifierKind.registry_number
    assert identifier_kind("g 3301 0620") is IdentifierKind.registry_number  # part of one
    assert identifier_kind("330106201803070013") is IdentifierKind.id_number
    assert identifier_kind("33010620180307001x") is IdentifierKind.id_number
    assert identifier_kind("E12345678") is IdentifierKind.id_number  # a passport
    assert identifier_kind("138 1234 5678") is IdentifierKind.phone
    assert identifier_kind("201803") is IdentifierKind.phone  # six digits of anything

"""The read-rate alert: a staff account that reads more distinct students in an hour than
`student_reads_per_hour` is throttled (429) until the hour ends, and the account admins above
it are told once; re-reading the same students costs nothing; other accounts read on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from litestar import Litestar
from redis.exceptions import ConnectionError as RedisConnectionError

from backend.accounts.audit import Actor
from backend.accounts.principal import account_principal
from backend.accounts.roles import Role
from backend.accounts.tables import Account, AuditLog
from backend.config import Settings
from backend.errors import TooManyAttempts
from backend.notify.tables import Notification
from backend.outbox import Outbox
from backend.records import read_rate
from backend.records.read_rate import CLASS_BOUND
from tests.factories import World, bearer, build_world, login, make_account, make_students

LIMIT = 3


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 5)
    return world


@pytest.fixture
def limited(app: Litestar, settings: Settings) -> Iterator[Settings]:
    app.state.settings = settings.with_(student_reads_per_hour=LIMIT)
    yield app.state.settings
    app.state.settings = settings


async def as_role(client: httpx.AsyncClient, world: World, role: Role) -> dict[str, str]:
    return bearer(await login(client, world.phones[role]))


async def alerts() -> list[dict[str, object]]:
    return await Notification.select().where(Notification.category == "read_rate_alert")


@pytest.mark.usefixtures("limited")
async def test_past_the_limit_the_account_is_throttled_and_its_admins_told_once(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = await as_role(client, world, Role.registrar)
    first, second, third, fourth, fifth = world.students

    for student in (first, second, third, first, second):  # a re-read costs nothing
        response = await client.get(f"/students/{student}", headers=headers)
        assert response.status_code == 200, response.text

    refused = await client.get(f"/students/{fourth}", headers=headers)

    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "student_reads_throttled"
    assert "通知上级管理员" in body["message"]
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    # Throttled for the rest of the hour: every student read, a seen one, a list, a reveal.
    again = await client.get(f"/students/{first}", headers=headers)
    listed = await client.get("/students", headers=headers)
    revealed = await client.post(
        f"/students/{first}/reveal", headers=headers, json={"field": "id_number"}
    )
    more = await client.get(f"/students/{fifth}", headers=headers)
    assert [r.status_code for r in (again, listed, revealed, more)] == [429] * 4

    # The admins above the registrar (county, city, province), each told exactly once.
    told = await alerts()
    above = {
        world.accounts[r] for r in (Role.county_reviewer, Role.city_admin, Role.province_admin)
    }
    assert {n["account"] for n in told} == above
    assert len(told) == len(above)
    registrar = world.accounts[Role.registrar]
    for note in told:
        assert note["subject_kind"] == "account"
        assert note["subject_id"] == registrar
        text = f"{note['title']}{note['body']}"
        assert "学生A1" not in text  # no student's name
        assert world.phones[Role.registrar] not in text
        assert "registrar" not in text  # the staff member's name neither: the id says who
    [audit] = await AuditLog.select().where(AuditLog.action == "read_rate_throttled")
    assert audit["actor_id"] == registrar
    assert audit["entity_id"] == str(registrar)


@pytest.mark.usefixtures("limited")
async def test_concurrent_reads_never_overshoot_and_alert_once(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = await as_role(client, world, Role.registrar)

    answers = await asyncio.gather(
        *(client.get(f"/students/{s}", headers=headers) for s in world.students * 2)
    )

    admitted = {r.url.path for r in answers if r.status_code == 200}
    refused = [r for r in answers if r.status_code == 429]
    assert len(admitted) <= LIMIT  # never more distinct students than the limit
    assert refused  # five students, a limit of three
    assert len(await alerts()) == 3  # county, city, province: once each
    assert len(await AuditLog.select().where(AuditLog.action == "read_rate_throttled")) == 1


@pytest.mark.usefixtures("limited")
async def test_an_admin_above_lifts_the_throttle_after_checking(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    registrar = await as_role(client, world, Role.registrar)
    for student in world.students:
        await client.get(f"/students/{student}", headers=registrar)
    assert (
        await client.get(f"/students/{world.students[0]}", headers=registrar)
    ).status_code == 429
    url = f"/accounts/{world.accounts[Role.registrar]}/read-throttle/lift"
    await make_account(settings, Role.county_reviewer, "13900008888", region_code="330108")

    leader = await client.post(url, headers=await as_role(client, world, Role.school_leader))
    elsewhere = await client.post(url, headers=bearer(await login(client, "13900008888")))
    lifted = await client.post(url, headers=await as_role(client, world, Role.county_reviewer))

    assert (leader.status_code, leader.json()["code"]) == (403, "forbidden")
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (404, "not_found")
    assert lifted.status_code == 200, lifted.text
    assert lifted.json() == {"account_id": world.accounts[Role.registrar], "was_throttled": True}
    # A fresh allowance for the rest of the hour.
    for student in world.students[:LIMIT]:
        assert (await client.get(f"/students/{student}", headers=registrar)).status_code == 200
    [audit] = await AuditLog.select().where(AuditLog.action == "lift_read_throttle")
    assert audit["actor_id"] == world.accounts[Role.county_reviewer]
    assert audit["entity_id"] == str(world.accounts[Role.registrar])


@pytest.mark.usefixtures("limited")
async def test_other_accounts_read_on(client: httpx.AsyncClient, world: World) -> None:
    registrar = await as_role(client, world, Role.registrar)
    leader = await as_role(client, world, Role.school_leader)
    for student in world.students[:4]:
        await client.get(f"/students/{student}", headers=registrar)

    for student in world.students[:3]:
        response = await client.get(f"/students/{student}", headers=leader)
        assert response.status_code == 200


@pytest.mark.usefixtures("limited")
async def test_a_list_page_counts_every_student_it_shows(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = await as_role(client, world, Role.teacher)

    small = await client.get("/students", headers=headers, params={"page_size": 2})
    again = await client.get("/students", headers=headers, params={"page_size": 2})
    whole = await client.get("/students", headers=headers, params={"page_size": 5})

    assert small.status_code == again.status_code == 200
    assert whole.status_code == 429
    assert whole.json()["code"] == "student_reads_throttled"
    # A teacher is told about by the school's registrar and the authorities above.
    told = {n["account"] for n in await alerts()}
    assert world.accounts[Role.registrar] in told
    assert world.accounts[Role.county_reviewer] in told
    assert world.accounts[Role.school_leader] not in told  # not an account admin


@pytest.mark.usefixtures("limited")
async def test_the_families_page_counts_its_children(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = await as_role(client, world, Role.teacher)

    first = await client.get("/families", headers=headers, params={"page_size": 3})
    whole = await client.get("/families", headers=headers)

    assert first.status_code == 200, first.text
    assert len(first.json()["items"]) == 3
    assert whole.status_code == 429
    assert whole.json()["code"] == "student_reads_throttled"
    assert (await client.get(f"/students/{world.students[0]}", headers=headers)).status_code == 429


async def test_the_window_passes_with_the_hour(app: Litestar, world: World) -> None:
    settings = app.state.settings.with_(student_reads_per_hour=2)
    account = await Account.select().where(Account.id == world.accounts[Role.registrar]).first()
    assert account is not None
    principal = account_principal(account)
    actor = Actor(principal.account_id, principal.role.value, None, None)
    outbox = Outbox(app.state.arq)
    redis = app.state.redis
    now = datetime(2026, 12, 1, 10, 59, tzinfo=UTC)

    async def read(ids: list[int], at: datetime) -> None:
        await read_rate.admit(redis, settings, outbox, principal, actor, ids, now=at)

    await read(world.students[:2], now)
    with pytest.raises(TooManyAttempts) as refused:
        await read([world.students[2]], now)
    assert refused.value.retry_after == 60
    later = now + timedelta(minutes=2)  # 11:01, the next hour
    await read(world.students[2:4], later)
    # ... and the next hour's own limit holds, with a new alert for the new hour.
    with pytest.raises(TooManyAttempts):
        await read([world.students[4]], later)
    assert len(await AuditLog.select().where(AuditLog.action == "read_rate_throttled")) == 2


@pytest.mark.usefixtures("limited")
async def test_without_redis_the_reads_go_on_uncounted(
    client: httpx.AsyncClient, world: World, app: Litestar, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = await as_role(client, world, Role.registrar)

    async def down(*args: object, **kwargs: object) -> None:
        raise RedisConnectionError("Redis is restarting")

    monkeypatch.setattr(app.state.redis, "eval", down)
    for student in world.students:
        assert (await client.get(f"/students/{student}", headers=headers)).status_code == 200
    assert await alerts() == []


async def test_the_default_limit_leaves_normal_work_alone(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    assert settings.student_reads_per_hour == 1000
    headers = await as_role(client, world, Role.registrar)
    for student in world.students:
        assert (await client.get(f"/students/{student}", headers=headers)).status_code == 200
    assert await alerts() == []


async def test_a_teachers_class_is_not_counted_under_a_limit_above_any_class(
    app: Litestar, client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    """One class cannot reach a limit of 150 or more, so its pages cost no Redis call; under
    a lower limit (above) the teacher is counted like anyone."""
    app.state.settings = settings.with_(student_reads_per_hour=CLASS_BOUND)
    try:
        headers = await as_role(client, world, Role.teacher)
        for student in world.students:
            assert (await client.get(f"/students/{student}", headers=headers)).status_code == 200
        assert (await client.get("/families", headers=headers)).status_code == 200
        counted = await app.state.redis.keys(f"reads:{world.accounts[Role.teacher]}:*")
        assert counted == []
        registrar = await as_role(client, world, Role.registrar)
        assert (await client.get(f"/students/{world.students[0]}", headers=registrar)).is_success
        assert await app.state.redis.keys(f"reads:{world.accounts[Role.registrar]}:*")
    finally:
        app.state.settings = settings

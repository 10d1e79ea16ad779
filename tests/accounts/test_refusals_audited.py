"""Every 403 leaves one audit row: who was refused, which refusal (the error code), on which
route and object — and no personal data. Writing that row never turns the 403 into a 500."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from backend import refusals
from backend.accounts import refusal_queue
from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.records.tables import Student
from tests.factories import World, bearer, build_world, login, make_account, make_students


@pytest.fixture
async def world(settings: Settings) -> World:
    return await build_world(settings)


async def as_role(client: httpx.AsyncClient, world: World, role: Role) -> dict[str, str]:
    return bearer(await login(client, world.phones[role]))


async def refusals_written() -> list[dict[str, Any]]:
    return await AuditLog.select().where(AuditLog.action == "forbidden").order_by(AuditLog.id)


async def test_a_teachers_reveal_is_audited(client: httpx.AsyncClient, world: World) -> None:
    [student_id] = await make_students(world, "A1", 1)
    headers = await as_role(client, world, Role.teacher)

    response = await client.post(
        f"/students/{student_id}/reveal", headers=headers, json={"field": "id_number"}
    )

    assert response.status_code == 403
    assert response.json()["code"] == "reveal_forbidden"
    [row] = await refusals_written()
    assert row["actor_id"] == world.accounts[Role.teacher]
    assert row["actor_role"] == "teacher"
    assert row["client_addr"] == "203.0.113.7"
    assert row["request_id"] == response.headers["x-request-id"]
    assert (row["entity"], row["entity_id"]) == ("student", str(student_id))
    assert json.loads(row["after"]) == {
        "code": "reveal_forbidden",
        "route": "POST /students/{student_id}/reveal",
        "params": {"student_id": student_id},
    }
    # Nothing about the child: not the ID number, the name, or the field asked for.
    student = await Student.select(Student.fields).where(Student.id == student_id).first()
    assert student is not None
    fields = (
        student["fields"] if isinstance(student["fields"], dict) else json.loads(student["fields"])
    )
    written = json.dumps(row, default=str, ensure_ascii=False)
    for value in (fields["id_number"], fields["name"], fields["guardian1_phone"]):
        assert value not in written


async def test_rank_too_high_is_audited(client: httpx.AsyncClient, world: World) -> None:
    city = await as_role(client, world, Role.city_admin)
    body = {
        "phone": "13511113333",
        "name": "张三",
        "role": "city_admin",
        "initial_password": "Init1234pw",
        "region_code": "330100",
    }

    response = await client.post("/accounts", headers=city, json=body)

    assert response.status_code == 403
    assert response.json()["code"] == "rank_too_high"
    [row] = await refusals_written()
    assert row["actor_id"] == world.accounts[Role.city_admin]
    assert (row["entity"], row["entity_id"]) == ("accounts", None)
    assert json.loads(row["after"]) == {"code": "rank_too_high", "route": "POST /accounts"}
    written = json.dumps(row, default=str, ensure_ascii=False)
    assert "13511113333" not in written
    assert "张三" not in written


async def test_rank_too_high_on_an_account_names_it(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    other = await make_account(
        settings, Role.registrar, "13600000001", region_code="330106", school=world.schools["A"]
    )
    registrar = await as_role(client, world, Role.registrar)

    response = await client.post(f"/accounts/{other}/seal", headers=registrar)

    assert response.status_code == 403
    assert response.json()["code"] == "rank_too_high"
    [row] = await refusals_written()
    assert row["actor_id"] == world.accounts[Role.registrar]
    assert (row["entity"], row["entity_id"]) == ("account", str(other))
    assert json.loads(row["after"]) == {
        "code": "rank_too_high",
        "route": "POST /accounts/{account_id}/seal",
        "params": {"account_id": other},
    }


async def test_a_county_changing_the_province_campaign_is_audited(
    client: httpx.AsyncClient, world: World
) -> None:
    province = await as_role(client, world, Role.province_admin)
    county = await as_role(client, world, Role.county_reviewer)
    created = await client.post(
        "/campaigns",
        headers=province,
        json={
            "region_code": "330000",
            "name": "2026年秋季数据质量核查",
            "starts_at": "2026-09-01T00:00:00+08:00",
            "ends_at": "2026-12-31T00:00:00+08:00",
        },
    )
    campaign_id = created.json()["id"]

    response = await client.patch(
        f"/campaigns/{campaign_id}", headers=county, json={"forms_open": False}
    )

    assert response.status_code == 403
    assert response.json()["code"] == "campaign_province_only"
    [row] = await refusals_written()
    assert row["actor_id"] == world.accounts[Role.county_reviewer]
    assert row["actor_role"] == "county_reviewer"
    assert (row["entity"], row["entity_id"]) == ("campaign", str(campaign_id))
    assert json.loads(row["after"])["code"] == "campaign_province_only"


async def test_a_guards_refusal_is_audited(client: httpx.AsyncClient, world: World) -> None:
    """A parent on a staff-only route is stopped by a guard, before any service runs."""
    parent = await as_role(client, world, Role.parent)

    response = await client.get("/accounts", headers=parent)

    assert response.status_code == 403
    [row] = await refusals_written()
    assert row["actor_id"] == world.accounts[Role.parent]
    assert json.loads(row["after"])["route"] == "GET /accounts"


async def test_a_failing_audit_write_still_answers_403(
    client: httpx.AsyncClient,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    [student_id] = await make_students(world, "A1", 1)
    headers = await as_role(client, world, Role.teacher)

    async def database_down(*args: object, **kwargs: object) -> None:
        raise ConnectionResetError("the database went away")

    monkeypatch.setattr(refusal_queue.audit, "record", database_down)
    with caplog.at_level(logging.ERROR, logger="registry.audit"):
        response = await client.post(
            f"/students/{student_id}/reveal", headers=headers, json={"field": "id_number"}
        )

    assert response.status_code == 403
    assert response.json()["code"] == "reveal_forbidden"
    assert "could not audit the refusal reveal_forbidden" in caplog.text


async def test_a_slow_audit_write_is_given_up(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    [student_id] = await make_students(world, "A1", 1)
    headers = await as_role(client, world, Role.teacher)

    async def hangs(*args: object, **kwargs: object) -> None:
        await asyncio.sleep(60)

    monkeypatch.setattr(refusal_queue.audit, "record", hangs)
    monkeypatch.setattr(refusals, "AUDIT_TIMEOUT_SECONDS", 0.2)
    response = await asyncio.wait_for(
        client.post(f"/students/{student_id}/reveal", headers=headers, json={"field": "phone"}),
        timeout=10,
    )

    assert response.status_code == 403


async def test_the_refusal_is_written_outside_the_requests_transaction(
    world: World, app: Any
) -> None:
    """The hook writes in a context of its own: even called while a transaction is open (and
    then rolled back), its row stays."""
    from backend.db import engine, is_postgres, transaction
    from backend.errors import Forbidden

    if not is_postgres():
        pytest.skip("SQLite allows one writer: an open write transaction would block the hook")
    scope: Any = {
        "type": "http",
        "method": "POST",
        "path_template": "/students/{student_id:int}/reveal",
        "path_params": {"student_id": 7},
        "litestar_app": app,
        "state": {"request_id": "req-abcdef12"},
        "headers": [],
        "client": ("198.51.100.9", 1),
    }

    async def failing_request() -> None:
        async with transaction():
            await AuditLog.raw("SELECT 1")
            assert engine().current_transaction.get() is not None
            await refusals.audit_refusal(Forbidden(code="reveal_forbidden"), scope)
            raise RuntimeError("the request's transaction fails")

    with pytest.raises(RuntimeError):
        await failing_request()

    [row] = await refusals_written()
    assert (row["entity"], row["entity_id"], row["request_id"]) == ("student", "7", "req-abcdef12")


def test_unsafe_path_values_are_left_out() -> None:
    assert refusals.safe_params({"form_id": "330106201801010011", "code": "330106"}) == {
        "code": "330106"
    }
    assert refusals.safe_params({"account_id": 12, "action": "seal"}) == {
        "account_id": 12,
        "action": "seal",
    }

"""Refusals audited without keeping the caller waiting (backend/accounts/refusal_queue.py):
the 404 or 403 leaves with a pending row committed, and the drain writes the audit row —
with the refusal's own time, into an intact chain — exactly once, even when the request's
own transaction rolled back."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from backend import worker
from backend.accounts import audit_verify, refusal_queue
from backend.accounts.audit import Actor
from backend.accounts.refusal_queue import PendingRefusal
from backend.accounts.roles import Role, ScopeKind
from backend.accounts.scope import Scope, get_scoped
from backend.accounts.tables import AuditLog, School
from backend.config import Settings
from backend.db import is_postgres, transaction
from backend.errors import NotFound
from tests.factories import World, bearer, build_world, login, make_students


@pytest.fixture
async def world(settings: Settings) -> World:
    return await build_world(settings)


@pytest.fixture(autouse=True)
def deferred(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refusal_queue, "deferred", lambda: True)


async def audited(action: str) -> list[dict[str, object]]:
    return await AuditLog.select().where(AuditLog.action == action).order_by(AuditLog.id)  # type: ignore[no-any-return]


async def test_an_out_of_scope_read_is_audited_once_drained(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = bearer(await login(client, world.phones[Role.registrar]))
    other = next(i for k, i in world.schools.items() if k != "A")
    before = datetime.now(UTC)

    outside = await client.get(f"/org/schools/{other}", headers=headers)
    missing = await client.get("/org/schools/987654", headers=headers)

    assert outside.status_code == missing.status_code == 404
    assert outside.json()["code"] == missing.json()["code"] == "not_found"
    assert await audited("access_denied") == []  # not written while the caller waited
    assert await PendingRefusal.count() == 1

    assert await worker.drain_refusals_job({}) == 1

    [row] = await audited("access_denied")
    assert (row["entity"], row["entity_id"]) == ("school", str(other))
    assert row["actor_id"] == world.accounts[Role.registrar]
    assert row["request_id"] == outside.headers["x-request-id"]
    assert before <= row["at"].replace(tzinfo=row["at"].tzinfo or UTC) <= datetime.now(UTC)  # type: ignore[union-attr]
    assert await PendingRefusal.count() == 0
    assert await refusal_queue.drain() == 0  # exactly once
    assert (await audit_verify.verify()).ok


async def test_a_403_is_audited_through_the_queue(client: httpx.AsyncClient, world: World) -> None:
    [student_id] = await make_students(world, "A1", 1)
    headers = bearer(await login(client, world.phones[Role.teacher]))

    response = await client.post(
        f"/students/{student_id}/reveal", headers=headers, json={"field": "id_number"}
    )

    assert response.status_code == 403
    assert await audited("forbidden") == []
    await refusal_queue.drain()
    [row] = await audited("forbidden")
    assert json.loads(str(row["after"]))["code"] == "reveal_forbidden"
    assert (row["entity"], row["entity_id"]) == ("student", str(student_id))


@pytest.mark.skipif(not is_postgres(), reason="SQLite: one writer, the row joins the caller")
async def test_a_refusal_survives_the_rollback_of_the_callers_transaction(
    world: World,
) -> None:
    other = next(i for k, i in world.schools.items() if k != "A")
    actor = Actor(world.accounts[Role.registrar], "registrar", "203.0.113.9", "req-1")
    scope = Scope(ScopeKind.school, school_id=world.schools["A"])

    with pytest.raises(NotFound):
        async with transaction():
            await get_scoped(actor, scope, School, School.id == other, "school", other)

    assert await PendingRefusal.count() == 1
    await refusal_queue.drain()
    [row] = await audited("access_denied")
    assert row["client_addr"] == "203.0.113.9"


async def test_the_worker_drains_everything_in_batches(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(refusal_queue, "DRAIN_BATCH", 2)
    monkeypatch.setattr(refusal_queue.drain, "__defaults__", (2,))
    for n in range(5):
        await refusal_queue.record_refusal(Actor(n + 1, "teacher"), "access_denied", "student", n)

    assert await worker.drain_refusals_job({}) == 5

    assert [r["entity_id"] for r in await audited("access_denied")] == ["0", "1", "2", "3", "4"]
    assert (await audit_verify.verify()).ok

"""End to end: a parent's question and the teacher's answer reach real devices through the
local gateways (devices registered through the API, pushes made by a real arq worker), and
nothing a gateway received names the child, quotes the question, or carries an ID number, a
phone or an address — whatever the parent typed into it."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from litestar import Litestar

from backend.accounts.roles import Role
from backend.config import Settings
from backend.db import json_value
from backend.notify.channels.base import Channel
from backend.records.tables import GuardianLink, Student
from backend.worker import inline_worker
from tests.factories import World, build_world, due_only, make_students
from tests.notify.gateways import Gateways, start_gateways
from tests.records.requests import as_role


@pytest.fixture
async def gateways(tmp_path: Path) -> AsyncIterator[Gateways]:
    async with start_gateways(tmp_path) as running:
        yield running


@pytest.fixture
async def channels(gateways: Gateways) -> AsyncIterator[dict[str, Channel]]:
    async with gateways.client_and_channels() as (_, built):
        yield built


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 1)
    await GuardianLink.insert(
        GuardianLink(
            account=world.accounts[Role.parent],
            student=world.students[0],
            created_at=datetime.now(UTC),
        )
    )
    return world


async def _push_everything(app: Litestar, channels: dict[str, Channel]) -> None:
    resources = dataclasses.replace(app.state.resources, channels=channels)
    pool = await due_only(await create_pool(RedisSettings.from_dsn(os.environ["REDIS_URL"])))
    worker = inline_worker(resources, pool, burst=True, poll_delay=0)
    await worker.main()
    await worker.close()


async def _register(client: httpx.AsyncClient, headers: dict[str, str], **device: Any) -> None:
    response = await client.post("/devices", json=device, headers=headers)
    assert response.status_code == 201, response.text
    # Whatever the hour the suite runs at, the pushes go now (in quiet hours they would wait
    # for 07:30, and a burst worker would wait with them).
    quiet_off = {"muted": [], "quiet_hours": {"enabled": False}}
    response = await client.put("/notification-settings", json=quiet_off, headers=headers)
    assert response.status_code == 200, response.text


async def test_a_question_and_its_answer_are_pushed_with_no_personal_data(
    app: Litestar,
    client: httpx.AsyncClient,
    world: World,
    gateways: Gateways,
    channels: dict[str, Channel],
) -> None:
    parent = await as_role(client, world, Role.parent)
    teacher = await as_role(client, world, Role.teacher)
    registrar = await as_role(client, world, Role.registrar)
    await _register(client, parent, channel="fcm", token="fcm-parent-0123456789abcdef")
    await _register(client, teacher, channel="apns", token="ab12" * 16)
    await _register(client, registrar, channel="jpush", token="1a0018970aa1b2c3d4e")
    row = await Student.select().where(Student.id == world.students[0]).first()
    assert row is not None
    child = {**json_value(row["fields"]), "name": row["name"], "id_number": row["id_number"]}
    # What a worried parent types: the child's name, ID number and their own phone.
    question = f"{child['name']}的身份证号{child['id_number']}印错了，请回电{child['phone']}"

    asked = await client.post(
        "/my/threads",
        files=[
            ("about_kind", (None, "record")),
            ("about_id", (None, str(world.students[0]))),
            ("body", (None, question)),
        ],
        headers=parent,
    )
    assert asked.status_code == 201, asked.text
    thread_id = asked.json()["id"]
    await _push_everything(app, channels)
    # The teacher's iPhone (APNs) and the registrar's Android phone (JPush) hear of it.
    assert gateways.count("apns") == gateways.count("jpush") == 1
    assert gateways.count("fcm") == 0

    answer = f"{child['name']}家长您好，请带户口簿到学校更正"
    answered = await client.post(
        f"/threads/{thread_id}/messages", json={"body": answer}, headers=teacher
    )
    assert answered.status_code == 201, answered.text
    await _push_everything(app, channels)
    [to_parent] = gateways.received["fcm"]
    assert to_parent.payload["data"]["subject_kind"] == "thread"
    assert to_parent.payload["data"]["subject_id"] == str(thread_id)

    everything = json.dumps(
        [r.payload for items in gateways.received.values() for r in items], ensure_ascii=False
    )
    for secret in (
        child["name"],
        child["id_number"],
        child["phone"],
        child["household_address"],
        question,
        answer,
        "身份证号",
    ):
        assert secret not in everything, secret

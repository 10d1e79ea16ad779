"""Notification settings: every category listed with its Chinese label; muting one stops
its pushes (the inbox still gets them); one's own overdue steps cannot be muted; quiet hours
of one's own hold non-urgent pushes back, or none when turned off."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.config import Settings
from backend.db import transaction
from backend.notify.categories import BEHAVIOUR, Category
from backend.notify.inbox import Note, notify
from backend.notify.tables import Notification
from backend.outbox import Outbox
from tests.factories import World, bearer, build_world, login

EVENING = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)  # 19:00 China time


@pytest.fixture
async def world(settings: Settings) -> World:
    return await build_world(settings)


def aware(moment: datetime | None) -> datetime | None:
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


async def test_the_defaults_list_every_category_with_its_label(
    client: httpx.AsyncClient, world: World
) -> None:
    parent = bearer(await login(client, world.phones[Role.parent]))

    settings = (await client.get("/notification-settings", headers=parent)).json()

    assert [c["category"] for c in settings["categories"]] == [c.value for c in BEHAVIOUR]
    overdue = next(c for c in settings["categories"] if c["category"] == "step_overdue")
    assert overdue == {
        "category": "step_overdue",
        "label": "本人待办已逾期",
        "muted": False,
        "may_turn_off": False,
        "urgent": False,
    }
    assert settings["quiet_hours"] == {"enabled": True, "start": "21:00", "end": "07:30"}


async def test_muting_a_category_and_my_own_quiet_hours_change_what_is_pushed_and_when(
    app: Litestar, client: httpx.AsyncClient, world: World
) -> None:
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    account = world.accounts[Role.registrar]

    put = await client.put(
        "/notification-settings",
        json={
            "muted": ["review_digest"],
            "quiet_hours": {"enabled": True, "start": "18:30", "end": "08:00"},
        },
        headers=registrar,
    )

    assert put.status_code == 200, put.text
    assert put.json()["quiet_hours"] == {"enabled": True, "start": "18:30", "end": "08:00"}
    muted = {c["category"] for c in put.json()["categories"] if c["muted"]}
    assert muted == {"review_digest"}
    assert (await client.get("/notification-settings", headers=registrar)).json() == put.json()
    outbox = Outbox(app.state.arq)
    async with transaction():
        [digest] = await notify(
            outbox, [account], Note(Category.review_digest, "有 3 条待审核"), now=EVENING
        )
        [due] = await notify(
            outbox, [account], Note(Category.step_due_soon, "即将到期"), now=EVENING
        )
    rows = {
        r["id"]: r for r in await Notification.select().where(Notification.id.is_in([digest, due]))
    }
    assert rows[digest]["push_at"] is None  # muted: in the inbox, never pushed
    # 19:00 is inside the user's own 18:30–08:00: the push waits for 08:00 (00:00 UTC)
    assert aware(rows[due]["push_at"]) == datetime(2026, 12, 2, 0, 0, tzinfo=UTC)

    off = await client.put(
        "/notification-settings",
        json={"muted": [], "quiet_hours": {"enabled": False, "start": "18:30", "end": "08:00"}},
        headers=registrar,
    )
    assert off.status_code == 200
    async with transaction():
        [later] = await notify(
            outbox, [account], Note(Category.step_due_soon, "又一条"), now=EVENING
        )
    row = await Notification.select().where(Notification.id == later).first()
    assert row is not None
    assert aware(row["push_at"]) == EVENING  # no quiet hours: at once


async def test_what_may_not_be_turned_off_or_is_malformed_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    quiet = {"enabled": True, "start": "21:00", "end": "07:30"}

    overdue = await client.put(
        "/notification-settings",
        json={"muted": ["step_overdue", "verdict"], "quiet_hours": quiet},
        headers=teacher,
    )
    unknown = await client.put(
        "/notification-settings", json={"muted": ["lottery"], "quiet_hours": quiet}, headers=teacher
    )
    bad_time = await client.put(
        "/notification-settings",
        json={"muted": [], "quiet_hours": {**quiet, "start": "25:00"}},
        headers=teacher,
    )
    empty_window = await client.put(
        "/notification-settings",
        json={"muted": [], "quiet_hours": {**quiet, "end": "21:00"}},
        headers=teacher,
    )

    assert overdue.status_code == 400
    assert overdue.json()["code"] == "category_cannot_be_muted"
    assert "本人待办已逾期" in overdue.json()["message"]
    assert (unknown.status_code, unknown.json()["code"]) == (400, "validation_error")
    assert (bad_time.status_code, bad_time.json()["code"]) == (400, "validation_error")
    assert (empty_window.status_code, empty_window.json()["code"]) == (400, "invalid_quiet_hours")
    settings = (await client.get("/notification-settings", headers=teacher)).json()
    assert not any(c["muted"] for c in settings["categories"])  # nothing was kept

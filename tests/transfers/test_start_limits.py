"""How often a transfer may be started. A start holds a record of another school (no
correction there until the sending school releases or refuses) and finds the student by
registry number and name: unbounded, one receiving registrar could hold records in bulk or
use the start to learn which pairs exist. Every try counts against the registrar's hour,
found or not; every try against the receiving school's day; a refused try holds nothing."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from litestar import Litestar

from backend.accounts.roles import Role
from backend.config import Settings
from backend.records.tables import Student
from backend.transfers.tables import StatusChange
from tests.factories import World, make_account
from tests.transfers.world import as_staff, start_transfer, student, transfer_world


@pytest.fixture
async def world(settings: Settings) -> World:
    return await transfer_world(settings)


@pytest.fixture
def limits(app: Litestar, settings: Settings) -> Iterator[None]:
    app.state.settings = settings.with_(
        transfer_start_tries_per_hour=3, transfer_starts_per_school_per_day=4
    )
    yield
    app.state.settings = settings


async def guess(client: httpx.AsyncClient, headers: dict[str, str], world: World) -> httpx.Response:
    return await client.post(
        "/status-changes/transfers",
        json={
            "registry_number": "G330106201801010011",
            "student_name": "猜的名字",
            "to_class_id": world.classes["B1"],
        },
        headers=headers,
    )


async def test_a_registrar_guessing_pairs_is_stopped_and_holds_nothing(
    client: httpx.AsyncClient, world: World, limits: None
) -> None:
    receiving = await as_staff(client, world, "registrar_B")
    for _ in range(3):
        assert (await guess(client, receiving, world)).status_code == 404
    refused = await start_transfer(client, receiving, world.students[0], world.classes["B1"])
    assert refused.status_code == 429, refused.text
    assert refused.json()["code"] == "too_many_transfer_starts"
    assert "转学" in refused.json()["message"]
    assert int(refused.headers["retry-after"]) > 0
    assert await StatusChange.count() == 0
    assert (await student(world.students[0]))["open_change"] is None


async def test_the_receiving_schools_day_bounds_every_registrar_of_it(
    client: httpx.AsyncClient, world: World, limits: None, settings: Settings
) -> None:
    second = await make_account(
        settings,
        Role.registrar,
        "13688880000",
        name="registrar_B_2",
        region_code="330108",
        school=world.schools["B"],
    )
    world.staff["registrar_B_2"] = (second, "13688880000")
    first = await as_staff(client, world, "registrar_B")
    for _ in range(3):
        await guess(client, first, world)
    other = await as_staff(client, world, "registrar_B_2")
    started = await start_transfer(client, other, world.students[0], world.classes["B1"])
    assert started.status_code == 201, started.text  # the school's 4th try of the day
    refused = await start_transfer(client, other, world.students[1], world.classes["B1"])
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_transfer_starts"
    assert await Student.count().where(Student.open_change.is_not_null()) == 1
    # another school is not bounded by B's day
    elsewhere = await as_staff(client, world, "registrar_C")
    ok = await start_transfer(client, elsewhere, world.students[1], world.classes["C1"])
    assert ok.status_code == 201, ok.text

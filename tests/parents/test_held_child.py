"""A child in the middle of a status change (a transfer …, `Student.open_change`) in the check
campaign, as the family and the school see it: the campaign lists the child apart — its own
state `change_open` on the parent's phone and on the teacher's family list (never counted as
a form not printed or not uploaded), no photo accepted until the change is done, and not
among a school's students the campaign still waits for."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from backend.accounts.roles import Role
from backend.config import Settings
from backend.parents.tables import Upload
from backend.records.tables import GuardianLink, Student, StudentStatus
from tests.factories import World, bearer, build_world, login, make_students, open_campaign
from tests.parents import images
from tests.parents.helpers import issue_forms

HELD_BY = 7001  # the open change's id: only its presence matters here


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 3)
    world.other_students = await make_students(world, "B1", 3, start=10)
    return world


@pytest.fixture
async def campaign() -> int:
    return await open_campaign()


async def hold(student_id: int, change: int | None = HELD_BY) -> None:
    await Student.update({Student.open_change: change}).where(Student.id == student_id)


async def as_role(client: httpx.AsyncClient, world: World, role: Role) -> dict[str, str]:
    return bearer(await login(client, world.phones[role]))


async def parent_of_first(client: httpx.AsyncClient, world: World) -> dict[str, str]:
    await GuardianLink.insert(
        GuardianLink(
            account=world.accounts[Role.parent],
            student=world.students[0],
            guardian_slot=1,
            created_at=datetime.now(UTC),
        )
    )
    return await as_role(client, world, Role.parent)


async def test_the_family_of_a_held_child_sees_the_change_and_cannot_send_a_photo(
    client: httpx.AsyncClient, world: World, campaign: int
) -> None:
    await issue_forms(client, world)  # printed before the transfer began
    parent = await parent_of_first(client, world)
    held = world.students[0]
    await hold(held)

    [child] = (await client.get("/my/children", headers=parent)).json()
    assert child["change_open"] is True
    assert child["form"]["status"] == "change_open"
    assert "异动" in child["form"]["message"]

    sent = await client.post(
        f"/students/{held}/uploads",
        headers=parent,
        files={"file": ("form.jpg", images.jpeg_with_orientation(1))},
    )
    assert sent.status_code == 409, sent.text
    assert sent.json()["code"] == "record_change_open"
    assert await Upload.count() == 0

    await hold(held, None)  # the transfer fell through: the form is the family's again
    [child] = (await client.get("/my/children", headers=parent)).json()
    assert (child["change_open"], child["form"]["status"]) == (False, "not_uploaded")


async def test_the_teachers_list_files_a_held_child_under_its_own_state(
    client: httpx.AsyncClient, world: World, campaign: int
) -> None:
    held, *others = world.students
    await hold(held)
    await issue_forms(client, world)  # no form for the held child
    teacher = await as_role(client, world, Role.teacher)

    async def listed(state: str) -> list[int]:
        answer = await client.get("/families", params={"status": state}, headers=teacher)
        assert answer.status_code == 200, answer.text
        assert answer.json()["total"] == len(answer.json()["items"])
        return sorted(f["student_id"] for f in answer.json()["items"])

    assert await listed("not_issued") == []
    assert await listed("change_open") == [held]
    assert await listed("not_uploaded") == sorted(others)
    everyone = (await client.get("/families", headers=teacher)).json()["items"]
    assert {f["student_id"]: f["form"]["status"] for f in everyone}[held] == "change_open"


async def test_schools_not_started_count_only_the_students_the_campaign_checks(
    client: httpx.AsyncClient, world: World, campaign: int
) -> None:
    province = await as_role(client, world, Role.province_admin)

    async def students_of_b() -> int:
        answer = await client.get(f"/campaigns/{campaign}/schools-not-started", headers=province)
        assert answer.status_code == 200, answer.text
        [b] = [s for s in answer.json()["items"] if s["school_id"] == world.schools["B"]]
        return int(b["students"])

    assert await students_of_b() == 3
    held, suspended, _ = world.other_students
    await hold(held)
    await Student.update({Student.status: StudentStatus.suspended.value}).where(
        Student.id == suspended
    )
    assert await students_of_b() == 1

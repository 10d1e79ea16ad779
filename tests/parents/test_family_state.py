"""A family's state of its form, as the parent's list and the class's families show it: it
follows the photo the family sent last, and a filter by state is counted over every family
in scope, not over the first few thousand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from backend.accounts.roles import Role
from backend.accounts.tables import SchoolClass
from backend.config import Settings
from backend.parents.tables import Upload
from backend.records.tables import Campaign, GuardianLink, IssuedForm, Student
from tests.factories import World, bearer, build_world, login, make_students, open_campaign
from tests.parents import images
from tests.parents.helpers import issue_forms

CHUNK = 1_000  # rows per insert (a statement takes at most 32,767 parameters)


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 2)
    await open_campaign()
    return world


async def _upload(
    client: httpx.AsyncClient, headers: dict[str, str], student: int, data: bytes
) -> dict[str, Any]:
    response = await client.post(
        f"/students/{student}/uploads", headers=headers, files={"file": ("photo.jpg", data)}
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_the_state_follows_the_photo_sent_last_even_when_it_was_sent_before(
    client: httpx.AsyncClient, world: World
) -> None:
    await issue_forms(client, world)
    child = world.students[0]
    await GuardianLink.insert(
        GuardianLink(
            account=world.accounts[Role.parent],
            student=child,
            guardian_slot=1,
            created_at=datetime.now(UTC),
        )
    )
    parent = bearer(await login(client, world.phones[Role.parent]))
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    good, blurred = images.jpeg_with_orientation(1), images.jpeg_with_orientation(6)

    first = await _upload(client, parent, child, good)
    await Upload.update({Upload.status: "matches"}).where(Upload.id == first["id"])
    second = await _upload(client, parent, child, blurred)
    await Upload.update({Upload.status: "retake"}).where(Upload.id == second["id"])
    again = await _upload(client, parent, child, good)  # the good photo, sent once more
    assert again["duplicate"] is True
    assert again["id"] == first["id"]

    mine = (await client.get("/my/children", headers=parent)).json()
    assert mine[0]["form"]["upload_id"] == first["id"]
    assert mine[0]["form"]["status"] == "matches"
    families = (await client.get("/families", headers=teacher)).json()["items"]
    state = {f["student_id"]: f["form"] for f in families}
    assert state[child]["upload_id"] == first["id"]
    assert state[child]["status"] == "matches"
    retakes = await client.get("/families", headers=teacher, params={"status": "retake"})
    assert retakes.json()["total"] == 0

    # and back again: the blurred photo re-sent is the family's state once more
    await _upload(client, parent, child, blurred)
    mine = (await client.get("/my/children", headers=parent)).json()
    assert mine[0]["form"]["upload_id"] == second["id"]
    assert mine[0]["form"]["status"] == "retake"


async def _issue_directly(students: list[int], campaign: int, issued_by: int) -> None:
    """Forms for many students at once, as `issue_class_forms` writes them (no PDF)."""
    rows = await Student.select(
        Student.id, Student.school, Student.school_class, Student.region_code
    ).where(Student.id.is_in(students))
    now = datetime.now(UTC)
    forms = [
        IssuedForm(
            form_id=f"BENCH{r['id']:07d}",
            campaign=campaign,
            student=r["id"],
            school=r["school"],
            school_class=r["school_class"],
            region_code=r["region_code"],
            snapshot={},
            registration_code_hash=f"{r['id']:064d}",
            issued_by=issued_by,
            issued_at=now,
        )
        for r in rows
    ]
    for start in range(0, len(forms), CHUNK):
        await IssuedForm.insert(*forms[start : start + CHUNK])


async def _many_students(world: World, class_key: str, count: int) -> list[int]:
    """Bare enrolled records, inserted at once (the factory's ID numbers repeat past 2,100)."""
    klass = await SchoolClass.select().where(SchoolClass.id == world.classes[class_key]).first()
    assert klass is not None
    now = datetime.now(UTC)
    records = [
        Student(
            registry_number=f"J{class_key}{i:08d}",
            school=klass["school"],
            school_class=klass["id"],
            region_code=klass["region_code"],
            name=f"学生{i:05d}",
            fields={"name": f"学生{i:05d}"},
            created_at=now,
            updated_at=now,
        )
        for i in range(count)
    ]
    ids: list[int] = []
    for start in range(0, count, CHUNK):
        rows = await Student.insert(*records[start : start + CHUNK]).returning(Student.id)
        ids += [r["id"] for r in rows]
    return ids


async def test_a_county_filtered_by_state_gets_every_family_and_the_right_total(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    world = await build_world(settings)
    many = await _many_students(world, "A1", 5_030)
    others = await _many_students(world, "A2", 30)
    campaign = await open_campaign()
    assert await Campaign.count() == 1
    await _issue_directly(many, campaign, world.accounts[Role.registrar])  # A2: not issued
    county = bearer(await login(client, world.phones[Role.county_reviewer]))

    waiting = await client.get(
        "/families", headers=county, params={"status": "not_uploaded", "page_size": 100}
    )
    assert waiting.status_code == 200, waiting.text
    assert waiting.json()["total"] == 5_030
    last = await client.get(
        "/families",
        headers=county,
        params={"status": "not_uploaded", "page_size": 100, "page": 51},
    )
    assert len(last.json()["items"]) == 30
    assert {f["form"]["status"] for f in last.json()["items"]} == {"not_uploaded"}

    # A2 sorts after A1: a list cut at 5,000 rows never reached it
    not_issued = await client.get("/families", headers=county, params={"status": "not_issued"})
    assert not_issued.json()["total"] == 30
    assert sorted(f["student_id"] for f in not_issued.json()["items"]) == sorted(others)
    everyone = await client.get("/families", headers=county)
    assert everyone.json()["total"] == 5_060


async def test_a_campaign_closed_early_shows_at_once_in_the_lists(
    client: httpx.AsyncClient, world: World
) -> None:
    """The lists remember the open campaign for a moment; a change through the campaign
    service is seen by the next read all the same."""
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    province = bearer(await login(client, world.phones[Role.province_admin]))
    before = (await client.get("/families", headers=teacher)).json()["items"]
    assert {f["form"]["status"] for f in before} == {"not_issued"}
    campaign = before[0]["form"]["campaign_id"]

    ended = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    closed = await client.patch(f"/campaigns/{campaign}", headers=province, json={"ends_at": ended})
    assert closed.status_code == 200, closed.text

    after = (await client.get("/families", headers=teacher)).json()["items"]
    assert {f["form"]["status"] for f in after} == {"no_campaign"}


async def test_a_family_in_a_region_new_to_the_list_gets_its_regions_campaign_at_once(
    client: httpx.AsyncClient, world: World
) -> None:
    """The list remembers the regions its scope's families live in, to find their campaigns
    in the same query as the page; a family in another region is seen by the next read."""
    city = bearer(await login(client, world.phones[Role.city_admin]))  # 杭州: 西湖区 and 滨江区
    before = (await client.get("/families", headers=city)).json()
    assert before["total"] == 2
    assert {f["form"]["status"] for f in before["items"]} == {"not_issued"}

    binjiang = await make_students(world, "B1", 2, start=10)  # 滨江区, under the same campaign

    after = (await client.get("/families", headers=city)).json()
    assert after["total"] == 4
    state = {f["student_id"]: f["form"] for f in after["items"]}
    assert {state[s]["status"] for s in binjiang} == {"not_issued"}
    assert {state[s]["campaign_id"] for s in binjiang} == {
        before["items"][0]["form"]["campaign_id"]
    }
    none_open = await client.get("/families", headers=city, params={"status": "no_campaign"})
    assert none_open.json()["total"] == 0

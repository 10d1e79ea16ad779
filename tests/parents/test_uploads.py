"""Photo uploads: accepted by content, cleaned (upright, no EXIF), stored once, served only
inside scope; every bad photo is a 4xx with a Chinese message."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import httpx
import pytest
from PIL import Image

from backend.accounts.roles import Role
from backend.config import Settings
from backend.parents.tables import Upload
from backend.records.tables import GuardianLink
from tests.factories import (
    World,
    bearer,
    build_world,
    login,
    make_account,
    make_students,
    open_campaign,
)
from tests.parents import images
from tests.parents.helpers import issue_forms


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 2)
    world.other_students = await make_students(world, "B1", 1, start=50)
    await open_campaign()
    return world


@pytest.fixture
async def parent(client: httpx.AsyncClient, world: World) -> dict[str, str]:
    await issue_forms(client, world)
    await GuardianLink.insert(
        GuardianLink(
            account=world.accounts[Role.parent],
            student=world.students[0],
            guardian_slot=1,
            created_at=datetime.now(UTC),
        )
    )
    return bearer(await login(client, world.phones[Role.parent]))


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    student_id: int,
    data: bytes,
    name: str = "photo.jpg",
) -> httpx.Response:
    return await client.post(
        f"/students/{student_id}/photos", headers=headers, files={"file": (name, data)}
    )


@pytest.mark.parametrize("orientation", range(1, 9))
async def test_stored_photo_is_upright_and_has_no_exif(
    client: httpx.AsyncClient, world: World, parent: dict[str, str], orientation: int
) -> None:
    response = await upload(
        client, parent, world.students[0], images.jpeg_with_orientation(orientation)
    )
    assert response.status_code == 201, response.text

    served = await client.get(response.json()["photo_url"], headers=parent)

    assert served.status_code == 200
    assert served.headers["cache-control"] == "no-store"
    stored = Image.open(io.BytesIO(served.content))
    assert stored.size == (120, 80)
    red, white = stored.getpixel((10, 10)), stored.getpixel((100, 60))
    assert red[0] > 180 and red[1] < 80, red  # noqa: PT018
    assert min(white) > 200
    assert len(stored.getexif()) == 0
    assert b"PhoneMaker" not in served.content


async def test_heic_from_an_iphone_is_accepted(
    client: httpx.AsyncClient, world: World, parent: dict[str, str]
) -> None:
    response = await upload(client, parent, world.students[0], images.heic(), "IMG_0001.HEIC")
    assert response.status_code == 201, response.text
    served = await client.get(response.json()["photo_url"], headers=parent)
    assert Image.open(io.BytesIO(served.content)).format == "JPEG"


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"%PDF-1.4 not a photo at all" * 10, 400, "photo_unsupported"),
        (b"GIF89a" + b"\x00" * 100, 400, "photo_unsupported"),
        (images.png_claiming(8000, 8000), 400, "photo_too_many_pixels"),
        (images.png_claiming(40000, 40000), 400, "photo_too_many_pixels"),
        (images.truncated_jpeg(), 400, "photo_truncated"),
        (b"\xff\xd8\xff" + b"\x00" * (15 * 1024 * 1024 + 1), 413, "photo_too_large"),
    ],
    ids=["pdf-named-jpg", "gif", "too-many-pixels", "decompression-bomb", "truncated", "too-large"],
)
async def test_bad_photos_are_4xx_with_a_chinese_message(
    client: httpx.AsyncClient,
    world: World,
    parent: dict[str, str],
    data: bytes,
    status: int,
    code: str,
) -> None:
    response = await upload(client, parent, world.students[0], data)

    assert response.status_code == status
    assert response.json()["code"] == code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in response.json()["message"])
    assert await Upload.count() == 0


async def test_the_same_photo_twice_is_recognised(
    client: httpx.AsyncClient, world: World, parent: dict[str, str]
) -> None:
    data = images.jpeg_with_orientation(1)
    first = await upload(client, parent, world.students[0], data)
    second = await upload(client, parent, world.students[0], data)

    assert second.json()["duplicate"] is True
    assert second.json()["id"] == first.json()["id"]
    assert await Upload.count() == 1


async def test_teacher_uploads_on_behalf_and_it_is_recorded(
    client: httpx.AsyncClient, world: World, parent: dict[str, str]
) -> None:
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    response = await upload(client, teacher, world.students[1], images.jpeg_with_orientation(6))
    assert response.status_code == 201
    assert response.json()["on_behalf"] is True

    families = await client.get("/families", headers=teacher)
    status = {f["student_id"]: f["form"]["status"] for f in families.json()["items"]}
    assert status == {world.students[0]: "not_uploaded", world.students[1]: "uploaded"}
    waiting = await client.get("/families", headers=teacher, params={"status": "not_uploaded"})
    assert [f["student_id"] for f in waiting.json()["items"]] == [world.students[0]]


async def test_photos_are_served_only_inside_scope(
    client: httpx.AsyncClient, settings: Settings, world: World, parent: dict[str, str]
) -> None:
    photo = (
        await upload(client, parent, world.students[0], images.jpeg_with_orientation(1))
    ).json()
    await make_account(settings, Role.parent, "13700009999")
    other_parent = bearer(await login(client, "13700009999"))
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    county = bearer(await login(client, world.phones[Role.county_reviewer]))
    await make_account(
        settings, Role.registrar, "13700008888", region_code="330108", school=world.schools["B"]
    )
    other_registrar = bearer(await login(client, "13700008888"))

    assert (await client.get(photo["photo_url"], headers=teacher)).status_code == 200
    assert (await client.get(photo["photo_url"], headers=county)).status_code == 200
    assert (await client.get(photo["photo_url"], headers=other_parent)).status_code == 404
    assert (await client.get(photo["photo_url"], headers=other_registrar)).status_code == 404
    assert (await client.get(photo["photo_url"])).status_code == 401


async def test_nobody_uploads_for_a_child_outside_scope(
    client: httpx.AsyncClient, world: World, parent: dict[str, str]
) -> None:
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    other_class = world.other_students[0]
    data = images.jpeg_with_orientation(1)

    assert (await upload(client, parent, other_class, data)).status_code == 404
    assert (await upload(client, teacher, other_class, data)).status_code == 404


async def test_upload_needs_an_issued_form(client: httpx.AsyncClient, world: World) -> None:
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    response = await upload(client, teacher, world.students[0], images.jpeg_with_orientation(1))
    assert response.status_code == 409
    assert response.json()["code"] == "form_not_issued"

"""Photo uploads: accepted by content, cleaned (upright, no EXIF), stored once, served only
inside scope; every bad photo is a 4xx with a Chinese message."""

from __future__ import annotations

import asyncio
import io
import random
from datetime import UTC, datetime

import httpx
import pytest
from litestar import Litestar
from PIL import Image

from backend.accounts.roles import Role
from backend.accounts.tables import Account, AuditLog
from backend.config import Settings
from backend.parents.photos import PhotoRejected, clean_photo
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
        f"/students/{student_id}/uploads", headers=headers, files={"file": (name, data)}
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
        # Formats Pillow would open, named .jpg: refused before any of their decoders runs
        (images.tiff(), 400, "photo_unsupported"),
        (images.psd(), 400, "photo_unsupported"),
        (images.eps(), 400, "photo_unsupported"),
        (images.png_claiming(8000, 8000), 400, "photo_too_many_pixels"),
        (images.png_claiming(40000, 40000), 400, "photo_too_many_pixels"),
        (images.truncated_jpeg(), 400, "photo_truncated"),
        (images.png_with_inflating_chunk(b"zTXt"), 400, "photo_damaged"),
        (images.png_with_inflating_chunk(b"iCCP"), 400, "photo_damaged"),
        (images.webp_header_then_garbage(), 400, "photo_damaged"),
        (images.jpeg_cut_in_header(), 400, "photo_damaged"),
        (b"\xff\xd8\xff" + b"\x00" * (15 * 1024 * 1024 + 1), 413, "photo_too_large"),
    ],
    ids=[
        "pdf-named-jpg",
        "gif",
        "tiff-named-jpg",
        "psd-named-jpg",
        "eps-named-jpg",
        "too-many-pixels",
        "decompression-bomb",
        "truncated",
        "png-text-chunk-bomb",
        "png-icc-chunk-bomb",
        "webp-header-then-garbage",
        "jpeg-cut-in-header",
        "too-large",
    ],
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


async def test_an_upload_and_its_check_are_read_only_inside_scope_and_refusals_audited(
    client: httpx.AsyncClient, settings: Settings, world: World, parent: dict[str, str]
) -> None:
    photo = (
        await upload(client, parent, world.students[0], images.jpeg_with_orientation(1))
    ).json()
    detail = f"/uploads/{photo['id']}"
    await make_account(settings, Role.parent, "13700009999")
    other_parent = bearer(await login(client, "13700009999"))
    pending = await Account.select(Account.id).where(Account.phone == "13700009999").first()
    assert pending is not None
    await GuardianLink.insert(  # a link the class has not confirmed opens nothing
        GuardianLink(
            account=pending["id"],
            student=world.students[0],
            guardian_slot=2,
            status="pending",
            created_at=datetime.now(UTC),
        )
    )
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    await make_account(
        settings, Role.registrar, "13700008888", region_code="330108", school=world.schools["B"]
    )
    other_registrar = bearer(await login(client, "13700008888"))

    mine = await client.get(detail, headers=parent)
    assert mine.status_code == 200
    assert mine.json()["upload"]["id"] == photo["id"]
    assert mine.json()["upload"]["on_behalf"] is False
    assert (await client.get(detail, headers=teacher)).status_code == 200
    for outsider in (other_parent, other_registrar):
        refused = await client.get(detail, headers=outsider)
        assert refused.status_code == 404
        assert refused.json()["code"] == "not_found"
    denied = await AuditLog.select().where(
        (AuditLog.action == "access_denied") & (AuditLog.entity == "upload")
    )
    assert len(denied) == 2
    missing = await client.get(f"/uploads/{photo['id'] + 1000}", headers=parent)
    assert missing.status_code == 404
    reads = await AuditLog.count().where(
        (AuditLog.action == "read") & (AuditLog.entity == "upload")
    )
    assert reads == 1  # the teacher's read is audited, the parent's own is not


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


def assert_pixels_only(jpeg: bytes) -> None:
    """SOI, a JFIF APP0, tables, frame, scan: no comment, no APP1–APP15, no script."""
    segments = images.jpeg_segments(jpeg)
    markers = {marker for marker, _ in segments}
    assert 0xFE not in markers, "a COM segment was kept"
    assert not markers & set(range(0xE1, 0xF0)), [hex(m) for m in sorted(markers)]
    assert all(payload.startswith(b"JFIF\x00") for m, payload in segments if m == 0xE0)
    assert b"<script" not in jpeg.lower()
    assert b"PhoneMaker" not in jpeg
    assert b"ICC" not in jpeg


@pytest.mark.parametrize(
    "data",
    [
        images.polyglot_jpeg(),
        images.png_with_text(),
        images.webp_with_metadata(),
        images.heic_with_metadata(),
    ],
    ids=["jpeg-html-polyglot", "png-text-chunks", "webp-exif-xmp-icc", "heic-exif-xmp"],
)
async def test_stored_and_served_photos_keep_pixels_only(
    client: httpx.AsyncClient, app: Litestar, world: World, parent: dict[str, str], data: bytes
) -> None:
    assert b"<script>" in data  # the attack is in the upload

    response = await upload(client, parent, world.students[0], data)

    assert response.status_code == 201, response.text
    row = await Upload.select().where(Upload.id == response.json()["id"]).first()
    assert row is not None
    stored = await app.state.storage.get(row["storage_key"])
    assert_pixels_only(stored)
    served = await client.get(response.json()["photo_url"], headers=parent)
    assert served.status_code == 200
    assert_pixels_only(served.content)
    picture = Image.open(io.BytesIO(served.content))
    assert picture.size == (120, 80)
    assert picture.getpixel((10, 10))[0] > 180
    assert picture.info.get("comment") is None


async def test_a_png_comment_too_long_for_a_jpeg_is_dropped_not_a_500(
    client: httpx.AsyncClient, app: Litestar, world: World, parent: dict[str, str]
) -> None:
    response = await upload(client, parent, world.students[0], images.png_with_text(b"x" * 70000))

    assert response.status_code == 201, response.text
    served = await client.get(response.json()["photo_url"], headers=parent)
    assert_pixels_only(served.content)


async def test_a_photo_stored_before_the_fix_is_served_without_its_metadata(
    client: httpx.AsyncClient, app: Litestar, world: World, parent: dict[str, str]
) -> None:
    response = await upload(client, parent, world.students[0], images.jpeg_with_orientation(1))
    row = await Upload.select().where(Upload.id == response.json()["id"]).first()
    assert row is not None
    await app.state.storage.put(row["storage_key"], images.polyglot_jpeg(), "image/jpeg")

    served = await client.get(response.json()["photo_url"], headers=parent)

    assert served.status_code == 200
    assert_pixels_only(served.content)
    assert Image.open(io.BytesIO(served.content)).size == (120, 80)


def _mutations(seed: int, data: bytes, count: int) -> list[bytes]:
    """Cuts at every region and random byte flips: what a fuzzer feeds the decoder."""
    rng = random.Random(seed)
    found: list[bytes] = []
    for _ in range(count):
        mutated = bytearray(data)
        if rng.random() < 0.4:
            mutated = mutated[: rng.randrange(1, len(mutated))]
        for _ in range(rng.randrange(1, 8)):
            if mutated:
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        found.append(bytes(mutated))
    return found


def test_the_decoder_answers_every_damaged_photo_with_a_rejection() -> None:
    sources = {
        "jpeg": images.polyglot_jpeg(),
        "png": images.png_with_text(),
        "webp": images.webp_with_metadata(),
        "heic": images.heic_with_metadata(),
    }
    seen: dict[str, int] = {}
    rejections: list[PhotoRejected] = []
    for seed, (name, data) in enumerate(sources.items()):
        for mutated in _mutations(seed, data, 150):
            try:
                clean = clean_photo(mutated)  # anything but PhotoRejected fails the test
            except PhotoRejected as exc:
                rejections.append(exc)
                seen[exc.code] = seen.get(exc.code, 0) + 1
            else:
                assert_pixels_only(clean.jpeg)
                seen[name] = seen.get(name, 0) + 1
    assert all(400 <= r.status < 500 for r in rejections)
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in r.message) for r in rejections)
    assert seen.get("photo_damaged", 0) + seen.get("photo_truncated", 0) > 50, seen


def assert_too_many_uploads(response: httpx.Response, window: int) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "too_many_uploads"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in response.json()["message"])
    assert 0 < int(response.headers["retry-after"]) <= window


async def test_photos_of_one_child_are_limited_and_a_resent_photo_does_not_count(
    client: httpx.AsyncClient, world: World, parent: dict[str, str]
) -> None:
    child = world.students[0]
    accepted = [await upload(client, parent, child, images.distinct_jpeg(n)) for n in range(10)]
    assert [r.status_code for r in accepted] == [201] * 10

    over = await upload(client, parent, child, images.distinct_jpeg(10))
    assert_too_many_uploads(over, 3600)
    assert "每小时" in over.json()["message"]
    # The same photo again answers the earlier upload and is not refused.
    again = await upload(client, parent, child, images.distinct_jpeg(3))
    assert again.status_code == 201
    assert again.json()["duplicate"] is True
    assert again.json()["id"] == accepted[3].json()["id"]
    assert await Upload.count() == 10
    # Another child is counted on its own.
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    other = await upload(client, teacher, world.students[1], images.distinct_jpeg(11))
    assert other.status_code == 201


async def test_concurrent_uploads_never_overshoot_the_limit(
    client: httpx.AsyncClient, world: World, parent: dict[str, str]
) -> None:
    responses = await asyncio.gather(
        *(upload(client, parent, world.students[0], images.distinct_jpeg(n)) for n in range(25))
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 10 + [429] * 15
    assert await Upload.count() == 10


async def test_an_uploader_has_a_daily_cap_across_children(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    parent: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(app.state, "settings", settings.with_(uploads_per_account_per_day=3))
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    children = [world.students[0], world.students[1], world.students[1]]
    for n, child in enumerate(children):
        assert (await upload(client, teacher, child, images.distinct_jpeg(n))).status_code == 201

    over = await upload(client, teacher, world.students[0], images.distinct_jpeg(9))

    assert_too_many_uploads(over, 24 * 3600)
    assert "今天" in over.json()["message"]
    assert await Upload.count() == 3
    # The parent, another uploader, still can.
    assert (
        await upload(client, parent, world.students[0], images.distinct_jpeg(8))
    ).status_code == 201


def test_every_verdict_is_a_state_a_family_can_be_filtered_by() -> None:
    """`/families?status=` is checked against `FormState`: a verdict the check learns must be
    added there too, or families with it could not be listed."""
    from backend.parents.schemas import FormState
    from backend.parents.tables import ServerVerdict, UploadStatus

    states = {state.value for state in FormState}
    assert {v.value for v in ServerVerdict} | {s.value for s in UploadStatus} <= states

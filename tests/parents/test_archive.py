"""The archive, not deletion: photos and evidence of a settled campaign move to the archive
prefix (S3: a storage class), stay readable in scope through the same endpoints, leave their
hash in the audit trail, and a run killed anywhere finishes on the next with every object
exactly once. Nothing deletes a photo or evidence on a schedule."""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from litestar import Litestar
from moto.server import ThreadedMotoServer
from PIL import Image

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings, settings_from_env
from backend.parents.archive import archive_chunk
from backend.parents.archive_tables import ArchivedKind, ArchivedObject
from backend.parents.archive_tasks import (
    LOCK_KEY,
    actor_of,
    archive_chunk_job,
    latest_run,
    run_inline,
    start_archive_job,
    start_run,
)
from backend.parents.archive_verify import verify_archive
from backend.parents.tables import Upload
from backend.records.problem_tables import ProblemAction, ProblemCase
from backend.records.review_tables import ChangeRequest, Evidence
from backend.records.tables import Campaign, GuardianLink
from backend.storage import LocalStorage, ObjectMissing, S3Storage, Storage, read_current
from tests.factories import (
    World,
    bearer,
    build_world,
    job_ctx,
    login,
    make_account,
    make_students,
    open_campaign,
    run_jobs,
)

BACKEND = Path(__file__).resolve().parents[2] / "backend"


def jpeg(seed: int) -> bytes:
    """A small real JPEG, different for every seed (the reads check the JPEG's segments)."""
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (seed * 37 % 256, seed * 91 % 256, seed * 13 % 256)).save(
        out, "JPEG", quality=90
    )
    return out.getvalue()


def storage_of(app: Litestar) -> LocalStorage:
    storage = app.state.resources.storage
    assert isinstance(storage, LocalStorage)
    return storage


async def end_campaign(campaign_id: int, days_ago: float) -> None:
    now = datetime.now(UTC)
    await Campaign.update(
        {
            Campaign.starts_at: now - timedelta(days=days_ago + 30),
            Campaign.ends_at: now - timedelta(days=days_ago),
        }
    ).where(Campaign.id == campaign_id)


async def add_upload(storage: Storage, world: World, student: int, campaign: int, seed: int) -> int:
    key = f"photos/{campaign}/{student}/{uuid.uuid4().hex}.jpg"
    data = jpeg(seed)
    await storage.put(key, data, "image/jpeg")
    rows = await Upload.insert(
        Upload(
            student=student,
            campaign=campaign,
            school=world.schools["A"],
            school_class=world.classes["A1"],
            region_code="330106",
            uploaded_by=world.accounts[Role.parent],
            storage_key=key,
            content_hash=hashlib.sha256(data).hexdigest(),
            width=40,
            height=30,
            status="matches",
            created_at=datetime.now(UTC) - timedelta(days=60),
        )
    )
    return int(rows[0]["id"])


async def add_evidence(
    storage: Storage, world: World, student: int, seed: int, made: datetime | None = None
) -> int:
    key = f"evidence/{student}/{uuid.uuid4().hex}.jpg"
    data = jpeg(seed)
    await storage.put(key, data, "image/jpeg")
    rows = await Evidence.insert(
        Evidence(
            subject_kind="change_request",
            subject_id=1,
            kind="household_register",
            storage_key=key,
            content_type="image/jpeg",
            size_bytes=len(data),
            student=student,
            school=world.schools["A"],
            school_class=world.classes["A1"],
            region_code="330106",
            uploaded_by=world.accounts[Role.registrar],
            created_at=made or datetime.now(UTC) - timedelta(days=60),
        )
    )
    return int(rows[0]["id"])


async def key_of(table: Any, object_id: int) -> str:
    row = await table.select(table.storage_key).where(table.id == object_id).first()
    return str(row["storage_key"])


async def audit_rows(entity: str, object_id: int) -> list[dict[str, Any]]:
    rows = await AuditLog.select().where(
        (AuditLog.action == "archive")
        & (AuditLog.entity == entity)
        & (AuditLog.entity_id == str(object_id))
    )
    return list(rows)


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 3)
    for student in world.students:
        await GuardianLink.insert(
            GuardianLink(
                account=world.accounts[Role.parent],
                student=student,
                guardian_slot=1,
                created_at=datetime.now(UTC),
            )
        )
    return world


@pytest.fixture
def archive_now(settings: Settings) -> Settings:
    return settings.with_(archive_after_days=30, archive_chunk=2)


async def test_objects_move_after_the_campaign_settles_and_not_before(
    app: Litestar, world: World, archive_now: Settings
) -> None:
    storage = storage_of(app)
    campaign = await open_campaign(days=30)
    photos = [
        await add_upload(storage, world, s, campaign, i) for i, s in enumerate(world.students)
    ]
    evidence = await add_evidence(storage, world, world.students[0], 9)
    hot = {pid: await key_of(Upload, pid) for pid in photos}

    # Open, then ended 10 days ago: not settled yet (30 days): nothing moves.
    for days_ago in (None, 10.0):
        if days_ago is not None:
            await end_campaign(campaign, days_ago)
        assert await run_inline(storage, archive_now, app.state.redis) is not None
        assert [await key_of(Upload, pid) for pid in photos] == list(hot.values())
        assert not (await key_of(Evidence, evidence)).startswith("archive/")
        assert await ArchivedObject.count() == 0

    await end_campaign(campaign, 31)
    run_id = await run_inline(storage, archive_now, app.state.redis)

    assert run_id is not None
    for pid, key in hot.items():
        assert await key_of(Upload, pid) == f"archive/{key}"
        assert not (storage.root / key).exists()
        assert await storage.get(f"archive/{key}") == jpeg(photos.index(pid))
    assert (await key_of(Evidence, evidence)).startswith("archive/evidence/")
    assert await ArchivedObject.count() == 4
    latest = await latest_run(app.state.redis)
    assert latest is not None
    assert latest[0] == run_id
    assert latest[1]["state"] == "done"
    assert (latest[1]["total_upload"], latest[1]["total_evidence"]) == ("3", "1")
    assert (latest[1]["archived"], latest[1]["failed"]) == ("4", "0")


async def test_the_hash_of_each_archived_object_is_in_the_audit_trail(
    app: Litestar, world: World, archive_now: Settings
) -> None:
    storage = storage_of(app)
    campaign = await open_campaign()
    photo = await add_upload(storage, world, world.students[0], campaign, 1)
    evidence = await add_evidence(storage, world, world.students[0], 2)
    hot = await key_of(Upload, photo)
    await end_campaign(campaign, 40)

    await run_inline(storage, archive_now, app.state.redis)

    (row,) = await audit_rows("upload", photo)
    assert row["actor_role"] == "system"
    assert json.loads(row["before"]) == {"storage_key": hot}
    assert json.loads(row["after"]) == {
        "storage_key": f"archive/{hot}",
        "sha256": hashlib.sha256(jpeg(1)).hexdigest(),
        "size_bytes": len(jpeg(1)),
        "storage_class": "",
        "campaign": campaign,
    }
    (row,) = await audit_rows("evidence", evidence)
    assert json.loads(row["after"])["sha256"] == hashlib.sha256(jpeg(2)).hexdigest()
    ledger = await ArchivedObject.select().where(ArchivedObject.object_ref == f"upload:{photo}")
    assert ledger[0]["sha256"] == hashlib.sha256(jpeg(1)).hexdigest()
    assert ledger[0]["hot_removed_at"] is not None


async def test_archived_photos_and_evidence_stay_readable_in_scope_only(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    archive_now: Settings,
) -> None:
    storage = storage_of(app)
    campaign = await open_campaign()
    photo = await add_upload(storage, world, world.students[0], campaign, 5)
    evidence = await add_evidence(storage, world, world.students[0], 6)
    await end_campaign(campaign, 40)
    await run_inline(storage, archive_now, app.state.redis)
    assert (await key_of(Upload, photo)).startswith("archive/")
    other_school = "13900009999"
    await make_account(
        settings, Role.registrar, other_school, region_code="330108", school=world.schools["B"]
    )

    for role in (Role.parent, Role.teacher, Role.registrar, Role.county_reviewer):
        headers = bearer(await login(client, world.phones[role]))
        got = await client.get(f"/uploads/{photo}/photo", headers=headers)
        assert got.status_code == 200, (role, got.text)
        assert Image.open(io.BytesIO(got.content)).size == (40, 30)
        got = await client.get(f"/evidence/{evidence}/photo", headers=headers)
        assert got.status_code == 200, (role, got.text)
    stranger = bearer(await login(client, other_school))
    for path in (f"/uploads/{photo}/photo", f"/evidence/{evidence}/photo"):
        refused = await client.get(path, headers=stranger)
        assert refused.status_code == 404
        assert refused.json()["code"] == "not_found"


async def test_a_student_with_a_request_or_action_pending_keeps_their_objects_hot(
    app: Litestar, world: World, archive_now: Settings
) -> None:
    storage = storage_of(app)
    campaign = await open_campaign()
    busy, other, third = world.students
    photos = {
        s: await add_upload(storage, world, s, campaign, i) for i, s in enumerate(world.students)
    }
    evidence = await add_evidence(storage, world, busy, 7)
    await end_campaign(campaign, 40)
    now = datetime.now(UTC)
    place = {
        "school": world.schools["A"],
        "school_class": world.classes["A1"],
        "region_code": "330106",
    }
    rows = await ChangeRequest.insert(
        ChangeRequest(
            student=busy,
            field_code="current_address",
            chain="ordinary",
            source="parent",
            state="in_review",
            author=world.accounts[Role.parent],
            created_at=now,
            updated_at=now,
            **place,
        )
    )
    request = rows[0]["id"]
    cases = await ProblemCase.insert(
        ProblemCase(
            kind="id_invalid",
            source="local",
            created_at=now,
            updated_at=now,
            student=third,
            **place,
        )
    )
    await ProblemAction.insert(
        ProblemAction(
            case=cases[0]["id"],
            action="corroborate",
            state="sent_back",
            student=third,
            created_at=now,
            updated_at=now,
            **place,
        )
    )

    await run_inline(storage, archive_now, app.state.redis)

    assert not (await key_of(Upload, photos[busy])).startswith("archive/")
    assert not (await key_of(Evidence, evidence)).startswith("archive/")
    assert not (await key_of(Upload, photos[third])).startswith("archive/")
    assert (await key_of(Upload, photos[other])).startswith("archive/")

    await ChangeRequest.raw("UPDATE change_request SET state = 'applied' WHERE id = {}", request)
    await run_inline(storage, archive_now, app.state.redis)

    assert (await key_of(Upload, photos[busy])).startswith("archive/")
    assert (await key_of(Evidence, evidence)).startswith("archive/")
    assert not (await key_of(Upload, photos[third])).startswith("archive/")


async def test_evidence_made_after_the_campaign_ended_waits_for_a_later_one(
    app: Litestar, world: World, archive_now: Settings
) -> None:
    storage = storage_of(app)
    campaign = await open_campaign("330100")  # the city's campaign covers 西湖区
    await end_campaign(campaign, 40)
    before = await add_evidence(
        storage, world, world.students[0], 1, datetime.now(UTC) - timedelta(days=90)
    )
    after = await add_evidence(
        storage, world, world.students[1], 2, datetime.now(UTC) - timedelta(days=5)
    )

    await run_inline(storage, archive_now, app.state.redis)

    assert (await key_of(Evidence, before)).startswith("archive/")
    assert not (await key_of(Evidence, after)).startswith("archive/")


class Killed(BaseException):
    """The worker dies here (not an Exception: nothing in the code may catch it)."""


class Dying:
    """The app's storage, killed at the `at`-th call of `method`."""

    def __init__(self, inner: Storage, method: str, at: int) -> None:
        self.inner, self.method, self.at, self.calls = inner, method, at, 0
        self.archive_prefix = inner.archive_prefix

    def __getattr__(self, name: str) -> Any:
        real = getattr(self.inner, name)
        if name != self.method:
            return real

        async def dying(*args: Any) -> Any:
            self.calls += 1
            if self.calls == self.at:
                raise Killed(name)
            return await real(*args)

        return dying


def files_under(storage: LocalStorage, keys: list[str]) -> list[Path]:
    """Every file, hot or archived, partial or whole, of these hot keys."""
    names = {Path(key).stem for key in keys}
    return sorted(
        p for p in storage.root.rglob("*") if p.is_file() and p.name.split(".")[0] in names
    )


@pytest.mark.parametrize(
    ("method", "at", "where"),
    [
        ("sha256", 2, "after the 2nd copy, before its row names it"),
        ("delete", 3, "after the 3rd row names its copy, before its hot key goes"),
        ("copy_to_archive", 4, "in the 4th copy (the first of the second chunk)"),
    ],
)
async def test_a_run_killed_mid_way_finishes_on_the_next_with_every_object_once(
    app: Litestar, world: World, archive_now: Settings, method: str, at: int, where: str
) -> None:
    storage = storage_of(app)
    campaign = await open_campaign()
    more = await make_students(world, "A1", 2, start=10)
    students = world.students + more
    photos = [await add_upload(storage, world, s, campaign, i) for i, s in enumerate(students)]
    hot = [await key_of(Upload, pid) for pid in photos]
    await end_campaign(campaign, 40)
    ctx = job_ctx(app, archive_now)

    run_id = await start_archive_job(ctx)  # asks for the first chunk (the outbox)
    assert run_id is not None
    dying = job_ctx(app, archive_now, storage=Dying(storage, method, at))

    async def first_two_chunks() -> None:
        await archive_chunk_job(dying, run_id, "upload", 0)
        await archive_chunk_job(dying, run_id, "upload", photos[1])

    with pytest.raises(Killed):
        await first_two_chunks()
    # The same day's start is refused while the run holds its lock; arq runs the killed job
    # again (its lock expired with the worker) and the chain goes on from the outbox.
    assert await start_run(storage, archive_now, app.state.redis) is None
    await run_jobs(app, archive_now)

    for pid, key in zip(photos, hot, strict=True):
        assert await key_of(Upload, pid) == f"archive/{key}", where
        assert len(await audit_rows("upload", pid)) == 1, where
    assert await ArchivedObject.count() == len(photos)
    assert await ArchivedObject.count().where(ArchivedObject.hot_removed_at.is_null()) in (0, 1)
    # A hot copy a killed step 4 left is removed by the next run's start, from the ledger.
    assert await app.state.redis.get(LOCK_KEY) is None
    assert await run_inline(storage, archive_now, app.state.redis) is not None
    assert await ArchivedObject.count().where(ArchivedObject.hot_removed_at.is_null()) == 0
    assert files_under(storage, hot) == sorted(storage.root / "archive" / key for key in hot)
    for i, key in enumerate(hot):
        assert await storage.get(f"archive/{key}") == jpeg(i)


async def test_a_copy_that_differs_or_a_missing_object_is_left_where_it_is(
    app: Litestar, world: World, archive_now: Settings
) -> None:
    storage = storage_of(app)
    campaign = await open_campaign()
    wrong, missing, fine = [
        await add_upload(storage, world, s, campaign, i) for i, s in enumerate(world.students)
    ]
    await end_campaign(campaign, 40)
    wrong_key, missing_key = await key_of(Upload, wrong), await key_of(Upload, missing)
    (storage.root / missing_key).unlink()

    class Lying:
        archive_prefix = storage.archive_prefix

        def __getattr__(self, name: str) -> Any:
            return getattr(storage, name)

        async def sha256(self, key: str) -> str:
            return "0" * 64 if key == f"archive/{wrong_key}" else await storage.sha256(key)

    chunk = await archive_chunk(
        Lying(),
        archive_now.with_(archive_chunk=10),
        actor_of(1),
        ArchivedKind.upload,
        0,  # type: ignore[arg-type]
    )

    assert chunk.outcome.archived == 1
    assert sorted(chunk.outcome.failed) == [
        f"upload:{wrong} copy differs",
        f"upload:{missing} missing",
    ]
    assert await key_of(Upload, wrong) == wrong_key
    assert await storage.get(wrong_key) == jpeg(0)  # the hot copy stays
    assert await key_of(Upload, missing) == missing_key
    assert await audit_rows("upload", wrong) == []
    assert (await key_of(Upload, fine)).startswith("archive/")


async def test_a_reader_who_read_the_row_before_the_move_finds_the_object(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.put("photos/1/2/x.jpg", b"bytes", "image/jpeg")
    await storage.copy_to_archive("photos/1/2/x.jpg", "STANDARD_IA")
    await storage.delete("photos/1/2/x.jpg")

    assert await read_current(storage, "photos/1/2/x.jpg") == b"bytes"
    assert await read_current(storage, "archive/photos/1/2/x.jpg") == b"bytes"
    with pytest.raises(ObjectMissing):
        await read_current(storage, "photos/1/2/other.jpg")


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


async def test_on_s3_the_copy_goes_to_the_storage_class_and_the_hot_key_only_after_it(
    app: Litestar, world: World, archive_now: Settings, s3_url: str
) -> None:
    config = archive_now.with_(
        storage="s3",
        s3_endpoint_url=s3_url,
        s3_bucket="archive-test",
        s3_access_key="test",
        s3_secret_key="test",
        archive_storage_class="GLACIER_IR",
    )
    client = boto3.client(
        "s3",
        endpoint_url=s3_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    client.create_bucket(Bucket="archive-test")
    s3 = S3Storage.from_settings(config)
    campaign = await open_campaign()
    photos = [await add_upload(s3, world, s, campaign, i) for i, s in enumerate(world.students)]
    evidence = await add_evidence(s3, world, world.students[0], 8)
    hot = [await key_of(Upload, pid) for pid in photos]
    await end_campaign(campaign, 40)
    dying = Dying(s3, "delete", 2)  # killed before the second hot key goes

    with pytest.raises(Killed):
        await run_inline(dying, config, app.state.redis)  # type: ignore[arg-type]
    await app.state.redis.delete(LOCK_KEY)  # the lock of a killed run expires
    await run_inline(s3, config, app.state.redis)

    listed = client.list_objects_v2(Bucket="archive-test")["Contents"]
    for i, (pid, key) in enumerate(zip(photos, hot, strict=True)):
        assert await key_of(Upload, pid) == f"archive/{key}"
        head = client.head_object(Bucket="archive-test", Key=f"archive/{key}")
        assert head["StorageClass"] == "GLACIER_IR"
        assert await s3.get(f"archive/{key}") == jpeg(i)
        with pytest.raises(ObjectMissing):
            await s3.get(key)
    keys = sorted(o["Key"] for o in listed)
    assert keys == sorted([f"archive/{k}" for k in hot] + [await key_of(Evidence, evidence)])
    ledger = await ArchivedObject.select(
        ArchivedObject.storage_class, ArchivedObject.hot_removed_at
    )
    assert {row["storage_class"] for row in ledger} == {"GLACIER_IR"}
    assert all(row["hot_removed_at"] is not None for row in ledger)


def test_the_archive_settings_refuse_a_class_that_needs_a_restore_and_a_hot_prefix() -> None:
    assert settings_from_env({"ARCHIVE_STORAGE_CLASS": "glacier_ir"}).archive_storage_class == (
        "GLACIER_IR"
    )
    with pytest.raises(ValueError, match="restored before each read"):
        settings_from_env({"ARCHIVE_STORAGE_CLASS": "DEEP_ARCHIVE"})
    with pytest.raises(ValueError, match="may not be photos/"):
        settings_from_env({"ARCHIVE_PREFIX": "photos/"})
    with pytest.raises(ValueError, match="one folder name"):
        settings_from_env({"ARCHIVE_PREFIX": "../x/"})


def test_nothing_deletes_a_photo_or_evidence_on_a_schedule() -> None:
    """The only removals of stored objects: the archive's hot copy once its archive copy is
    verified, a request's (or a status change's) evidence stored a moment before the request
    was refused (never recorded), and an export's own file once its download time is over (a
    copy made for one person, not the archive). No row of an upload or evidence is deleted
    anywhere."""
    removal = re.compile(r"storage\.delete\(|\.delete_object\b|\b(Upload|Evidence)\.delete\(")
    found = sorted(
        str(path.relative_to(BACKEND))
        for path in BACKEND.rglob("*.py")
        if removal.search(path.read_text())
    )
    assert found == [
        "parents/archive.py",
        "records/request_service.py",
        "reports/exports.py",
        "storage.py",
        "transfers/service.py",
    ]


async def test_verify_finds_an_archived_photo_swapped_lost_or_misrecorded(
    app: Litestar, world: World, archive_now: Settings
) -> None:
    storage = storage_of(app)
    campaign = await open_campaign()
    swapped, lost, relabelled, fine = [
        await add_upload(storage, world, s, campaign, i)
        for i, s in enumerate([*world.students, world.students[0]])
    ]
    await end_campaign(campaign, 40)
    await run_inline(storage, archive_now, app.state.redis)
    assert (await verify_archive(storage)).bad == []

    (storage.root / await key_of(Upload, swapped)).write_bytes(jpeg(99))
    (storage.root / await key_of(Upload, lost)).unlink()
    await ArchivedObject.update({ArchivedObject.sha256: "f" * 64}).where(
        ArchivedObject.object_ref == f"upload:{relabelled}"
    )

    result = await verify_archive(storage)

    assert result.checked == 4
    assert sorted(result.bad) == sorted(
        [
            f"upload:{swapped} bytes in the archive differ from the hash recorded when it moved",
            f"upload:{lost} missing from the archive",
            f"upload:{relabelled} ledger and audit trail disagree on its hash",
        ]
    )
    assert fine not in {int(b.split()[0].split(":")[1]) for b in result.bad}


async def test_a_hot_copy_left_behind_stays_while_its_archive_copy_is_lost_or_altered(
    app: Litestar, world: World, archive_now: Settings
) -> None:
    """A stopped run left three hot copies (step 3 done, step 4 not); since then one archive
    copy was lost and one altered. The next run keeps those two hot copies (the only good
    bytes left), removes the third, and goes on: one bad object does not stop the archive."""
    storage = storage_of(app)
    campaign = await open_campaign()
    lost, altered, fine = [
        await add_upload(storage, world, s, campaign, i) for i, s in enumerate(world.students)
    ]
    hot = {pid: await key_of(Upload, pid) for pid in (lost, altered, fine)}
    await end_campaign(campaign, 40)
    await run_inline(storage, archive_now, app.state.redis)
    for i, pid in enumerate((lost, altered, fine)):  # as if step 4 had never run
        await storage.put(hot[pid], jpeg(i), "image/jpeg")
    await ArchivedObject.update({ArchivedObject.hot_removed_at: None}).where(ArchivedObject.id > 0)
    (storage.root / await key_of(Upload, lost)).unlink()
    (storage.root / await key_of(Upload, altered)).write_bytes(jpeg(99))
    await app.state.redis.delete(LOCK_KEY)

    run_id = await run_inline(storage, archive_now, app.state.redis)

    assert run_id is not None
    assert await storage.get(hot[lost]) == jpeg(0)
    assert await storage.get(hot[altered]) == jpeg(1)
    assert not (storage.root / hot[fine]).exists()
    left = await ArchivedObject.select(ArchivedObject.object_ref).where(
        ArchivedObject.hot_removed_at.is_null()
    )
    assert sorted(r["object_ref"] for r in left) == sorted([f"upload:{lost}", f"upload:{altered}"])
    assert await app.state.redis.get(LOCK_KEY) is None

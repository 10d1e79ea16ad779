"""The photo check end to end: the server renders a form, a synthetic phone photographs it
(perspective, rotation, blur, uneven light, JPEG, handwriting, a signature), a parent
uploads it, a real arq worker checks it, and the verdict comes back in Chinese."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from litestar import Litestar
from PIL import Image

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.db import json_value, transaction
from backend.ocr import FormHeader, render_form, sign_form_token
from backend.ocr.synth import photograph, sign, write_corrections
from backend.parents.tables import CorrectionDraft, Upload, UploadCheck
from backend.parents.tasks import enqueue_check, sweep_checks
from backend.records.printing import form_layout, printed_values, registration_code
from backend.records.service import RecordIn, load_fields, write_records
from backend.records.tables import GuardianLink, IssuedForm, Student
from tests.factories import (
    SYSTEM,
    World,
    bearer,
    build_world,
    job_ctx,
    login,
    make_students,
    open_campaign,
    run_jobs,
)
from tests.parents.helpers import issue_forms

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def world(client: httpx.AsyncClient, settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 3)
    await open_campaign()
    await issue_forms(client, world)
    from datetime import UTC, datetime

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
async def parent(client: httpx.AsyncClient, world: World) -> dict[str, str]:
    return bearer(await login(client, world.phones[Role.parent]))


async def printed_page(
    client: httpx.AsyncClient, headers: dict[str, str], student_id: int
) -> Image.Image:
    form = (
        await IssuedForm.select(IssuedForm.form_id)
        .where((IssuedForm.student == student_id) & IssuedForm.superseded_at.is_null())
        .first()
    )
    assert form is not None
    png = await client.get(f"/forms/{form['form_id']}/png", headers=headers)
    assert png.status_code == 200
    return Image.open(io.BytesIO(png.content))


def phone_photo(
    page: Image.Image,
    seed: int,
    *,
    corrections: tuple[str, ...] = (),
    signed: bool = True,
    dated: bool = True,
    **degrade: Any,
) -> bytes:
    rng = np.random.default_rng(seed)
    if corrections:
        page = write_corrections(page, form_layout(), corrections, rng)
    if signed:
        page = sign(page, form_layout(), rng, date=dated)
    return photograph(page, rng, **degrade)


async def upload_and_check(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    headers: dict[str, str],
    student_id: int,
    photo: bytes,
) -> dict[str, Any]:
    response = await client.post(
        f"/students/{student_id}/uploads", headers=headers, files={"file": ("form.jpg", photo)}
    )
    assert response.status_code == 201, response.text
    await run_jobs(app, settings)
    detail = await client.get(f"/uploads/{response.json()['id']}", headers=headers)
    assert detail.status_code == 200
    return detail.json()  # type: ignore[no-any-return]


async def registrar(client: httpx.AsyncClient, world: World) -> dict[str, str]:
    return bearer(await login(client, world.phones[Role.registrar]))


async def test_a_signed_correct_form_matches_and_the_parent_reads_why(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    parent: dict[str, str],
) -> None:
    page = await printed_page(client, await registrar(client, world), world.students[0])

    result = await upload_and_check(
        client, app, settings, parent, world.students[0], phone_photo(page, 1)
    )

    assert result["verdict"] == "matches", result
    assert result["signed"] is True
    assert all(f["match"] for f in result["fields"])
    assert result["message"] == "确认表与学籍信息一致，已签字，无需其他操作。谢谢！"
    children = (await client.get("/my/children", headers=parent)).json()
    mine = next(c for c in children if c["id"] == world.students[0])
    assert mine["form"]["status"] == "matches"
    assert mine["form"]["message"] == result["message"]


async def test_written_corrections_become_drafts_for_the_teacher(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    parent: dict[str, str],
) -> None:
    page = await printed_page(client, await registrar(client, world), world.students[0])

    result = await upload_and_check(
        client,
        app,
        settings,
        parent,
        world.students[0],
        phone_photo(page, 2, corrections=("current_address", "guardian1_phone")),
    )

    assert result["verdict"] == "corrections_written", result
    assert {c["field"] for c in result["corrections"]} == {"current_address", "guardian1_phone"}
    assert "现住址" in result["message"]
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    drafts = (await client.get("/correction-drafts", headers=teacher)).json()["items"]
    assert len(drafts) == 2
    crop = await client.get(drafts[0]["crop_url"], headers=teacher)
    assert crop.status_code == 200
    assert Image.open(io.BytesIO(crop.content)).format == "PNG"
    for draft in drafts:
        decided = await client.post(f"/correction-drafts/{draft['id']}/legible", headers=teacher)
        assert decided.status_code == 200, decided.text
        assert decided.json()["state"] == "legible"
    families = (
        await client.get("/families", headers=teacher, params={"status": "corrections_written"})
    ).json()
    assert [f["student_id"] for f in families["items"]] == [world.students[0]]
    assert families["items"][0]["form"]["corrections"] == ["现住址", "家庭成员1联系电话"]


async def test_an_unsigned_form(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    parent: dict[str, str],
) -> None:
    page = await printed_page(client, await registrar(client, world), world.students[1])
    result = await upload_and_check(
        client, app, settings, parent, world.students[1], phone_photo(page, 3, signed=False)
    )
    assert result["verdict"] == "unsigned", result
    assert "签字" in result["message"]


@pytest.mark.parametrize(
    ("degrade", "reason"),
    [
        ({"blur": 5.0}, "blurry"),
        ({"exposure": 0.08}, "too_dark"),
        ({"cut_off": "left"}, "page_not_visible"),
    ],
)
async def test_a_bad_photo_must_be_retaken_and_says_why(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    parent: dict[str, str],
    degrade: dict[str, Any],
    reason: str,
) -> None:
    page = await printed_page(client, await registrar(client, world), world.students[0])
    result = await upload_and_check(
        client, app, settings, parent, world.students[0], phone_photo(page, 4, **degrade)
    )
    assert result["verdict"] == "retake", result
    assert result["retake_reason"] == reason
    assert "拍" in result["message"]


async def test_another_students_form_is_not_this_form(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    parent: dict[str, str],
) -> None:
    others = await printed_page(client, await registrar(client, world), world.students[1])
    result = await upload_and_check(
        client, app, settings, parent, world.students[0], phone_photo(others, 5)
    )
    assert result["verdict"] == "not_this_form", result


async def test_a_printed_value_unlike_the_record_differs(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    parent: dict[str, str],
) -> None:
    """A page whose printed name is not what we printed (an edited copy, the real QR)."""
    form = (
        await IssuedForm.select()
        .where((IssuedForm.student == world.students[0]) & IssuedForm.superseded_at.is_null())
        .first()
    )
    assert form is not None
    values = printed_values(load_fields(form["snapshot"]))
    values["name"] = "张冠李戴"
    key = settings.form_token_key.encode()
    page = render_form(
        form_layout(),
        values,
        FormHeader(
            "学校A",
            "A1班",
            registration_code(form["form_id"], key),
            sign_form_token(form["form_id"], key),
        ),
    )

    result = await upload_and_check(
        client, app, settings, parent, world.students[0], phone_photo(page, 6)
    )

    assert result["verdict"] == "differs", result
    name = next(f for f in result["fields"] if f["field"] == "name")
    assert name["field_label"] == "姓名"
    assert name["match"] is False
    assert "姓名" in result["message"]


async def test_a_form_printed_before_the_record_changed_says_what_changed(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    parent: dict[str, str],
) -> None:
    page = await printed_page(client, await registrar(client, world), world.students[2])
    student = await Student.select().where(Student.id == world.students[2]).first()
    assert student is not None
    async with transaction():
        await write_records(
            SYSTEM,
            [
                RecordIn(
                    student["registry_number"],
                    student["school"],
                    student["school_class"],
                    student["region_code"],
                    {
                        **load_fields(student["fields"]),
                        "current_address": "浙江省杭州市西湖区新家路8号",
                    },
                )
            ],
        )

    result = await upload_and_check(
        client, app, settings, parent, world.students[2], phone_photo(page, 7)
    )

    assert result["verdict"] == "record_changed", result
    assert "已更新：现住址" in result["message"]
    children = (await client.get("/my/children", headers=parent)).json()
    mine = next(c for c in children if c["id"] == world.students[2])
    assert mine["form"]["status"] == "record_changed"
    assert mine["form"]["differing"] == ["现住址"]


async def test_a_form_of_an_earlier_printing_asks_for_the_newest_and_lists_nothing(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    parent: dict[str, str],
) -> None:
    """The class was issued again with the record unchanged: the old sheet's values are all
    still right; the family only has to use the new sheet."""
    old_page = await printed_page(client, await registrar(client, world), world.students[1])
    await issue_forms(client, world)

    result = await upload_and_check(
        client, app, settings, parent, world.students[1], phone_photo(old_page, 8)
    )

    assert result["verdict"] == "form_superseded", result
    assert "请使用最新打印的确认表" in result["message"]
    assert all(f["match"] for f in result["fields"]), result["fields"]
    children = (await client.get("/my/children", headers=parent)).json()
    mine = next(c for c in children if c["id"] == world.students[1])
    assert mine["form"]["status"] == "form_superseded"
    assert mine["form"]["differing"] == []
    check = await UploadCheck.select().where(UploadCheck.upload == result["upload"]["id"]).first()
    assert check is not None
    assert json_value(check["differing"]) == []


async def test_an_earlier_printing_whose_record_changed_says_what_changed(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    parent: dict[str, str],
) -> None:
    old_page = await printed_page(client, await registrar(client, world), world.students[1])
    student = await Student.select().where(Student.id == world.students[1]).first()
    assert student is not None
    async with transaction():
        await write_records(
            SYSTEM,
            [
                RecordIn(
                    student["registry_number"],
                    student["school"],
                    student["school_class"],
                    student["region_code"],
                    {**load_fields(student["fields"]), "phone": "13912345678"},
                )
            ],
        )
    await issue_forms(client, world)

    result = await upload_and_check(
        client, app, settings, parent, world.students[1], phone_photo(old_page, 9)
    )

    assert result["verdict"] == "record_changed", result
    assert "联系电话" in result["message"]
    assert "请使用最新打印的确认表" in result["message"]
    children = (await client.get("/my/children", headers=parent)).json()
    mine = next(c for c in children if c["id"] == world.students[1])
    assert mine["form"]["differing"] == ["联系电话"]


async def test_a_signature_without_a_date_asks_for_the_date(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    parent: dict[str, str],
) -> None:
    page = await printed_page(client, await registrar(client, world), world.students[0])

    result = await upload_and_check(
        client, app, settings, parent, world.students[0], phone_photo(page, 10, dated=False)
    )

    assert result["verdict"] == "undated", result
    assert result["signed"] is True
    assert "日期" in result["message"]
    children = (await client.get("/my/children", headers=parent)).json()
    mine = next(c for c in children if c["id"] == world.students[0])
    assert mine["form"]["status"] == "undated"
    assert "日期" in mine["form"]["message"]


async def test_checking_twice_gives_one_report_and_one_audit_row(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    parent: dict[str, str],
) -> None:
    page = await printed_page(client, await registrar(client, world), world.students[0])
    result = await upload_and_check(
        client, app, settings, parent, world.students[0], phone_photo(page, 8)
    )
    upload_id = result["upload"]["id"]

    await enqueue_check(app.state.arq, upload_id, attempt=99)
    await run_jobs(app, settings)

    assert await UploadCheck.count().where(UploadCheck.upload == upload_id) == 1
    assert (
        await AuditLog.count().where(
            (AuditLog.action == "check") & (AuditLog.entity_id == str(upload_id))
        )
        == 1
    )


async def wait_until_checked(upload_id: int, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = await Upload.select(Upload.status).where(Upload.id == upload_id).first()
        if row is not None and row["status"] not in ("uploaded", "checking"):
            return
        time.sleep(0.1)  # noqa: ASYNC251
    raise AssertionError(f"upload {upload_id} was not checked in {seconds} s")


def start_worker(tmp: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CHECK_LEASE_SECONDS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "arq", "backend.worker.WorkerSettings"],
        cwd=ROOT,
        env=env,
        stdout=(tmp / "worker.log").open("wb"),
        stderr=subprocess.STDOUT,
    )


async def test_a_worker_killed_mid_check_leaves_an_upload_the_sweeper_finishes(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    parent: dict[str, str],
    tmp_path: Path,
) -> None:
    page = await printed_page(client, await registrar(client, world), world.students[0])
    await run_jobs(app, settings)  # nothing else queued: the worker below only checks
    caught = None
    for seed in range(20, 23):  # a try can miss the moment; three are plenty
        response = await client.post(
            f"/students/{world.students[0]}/uploads",
            headers=parent,
            files={"file": ("form.jpg", phone_photo(page, seed))},
        )
        upload_id = response.json()["id"]
        worker = start_worker(tmp_path)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                row = await Upload.select(Upload.status).where(Upload.id == upload_id).first()
                assert row is not None
                if row["status"] != "uploaded":
                    break
                time.sleep(0.01)  # noqa: ASYNC251  (poll tightly: the window is short)
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        if row["status"] == "checking":
            caught = upload_id
            break
    assert caught is not None, (tmp_path / "worker.log").read_text()[-2000:]
    assert await UploadCheck.count().where(UploadCheck.upload == caught) == 0

    time.sleep(1.1)  # noqa: ASYNC251  (let the dead worker's 1-second lease run out)
    short_lease = settings.with_(check_lease_seconds=1)
    swept = await sweep_checks(job_ctx(app, short_lease))
    assert swept >= 1
    # A fresh worker process takes the swept job (the dead one's job stays locked in arq
    # until its own timeout; the check is idempotent, so that later run will do nothing).
    worker = start_worker(tmp_path)
    try:
        await wait_until_checked(caught)
    finally:
        worker.terminate()
        worker.wait(timeout=20)

    row = (
        await Upload.select(Upload.status, Upload.check_attempts).where(Upload.id == caught).first()
    )
    assert row is not None
    assert row["status"] == "matches"
    assert row["check_attempts"] == 2
    assert await UploadCheck.count().where(UploadCheck.upload == caught) == 1


async def test_after_the_last_try_the_upload_shows_check_failed(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    parent: dict[str, str],
) -> None:
    page = await printed_page(client, await registrar(client, world), world.students[0])
    response = await client.post(
        f"/students/{world.students[0]}/uploads",
        headers=parent,
        files={"file": ("form.jpg", phone_photo(page, 9))},
    )
    upload_id = response.json()["id"]
    # The stored photo disappears (a storage fault): every try fails the same way.
    row = await Upload.select(Upload.storage_key).where(Upload.id == upload_id).first()
    assert row is not None
    await app.state.storage.delete(row["storage_key"])

    for _ in range(3):
        await run_jobs(app, settings.with_(check_lease_seconds=0))
        await sweep_checks(job_ctx(app, settings.with_(check_lease_seconds=0)))
    await run_jobs(app, settings)

    detail = (await client.get(f"/uploads/{upload_id}", headers=parent)).json()
    assert detail["upload"]["status"] == "check_failed"
    children = (await client.get("/my/children", headers=parent)).json()
    mine = next(c for c in children if c["id"] == world.students[0])
    assert mine["form"]["status"] == "check_failed"
    assert "人工核对" in mine["form"]["message"]
    assert await CorrectionDraft.count() == 0

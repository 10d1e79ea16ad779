"""Issuing a class's forms: one page per student, a PDF whose every page's QR code carries
that student's signed form token, and the snapshot of what was printed."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import zxingcpp
from litestar import Litestar
from PIL import Image
from pypdf import PdfReader

from backend.accounts.roles import Role
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.ocr import verify_form_token
from backend.records.forms import MAX_RENDER_ATTEMPTS
from backend.records.tables import FormBatch, IssuedForm, Student
from backend.records.tasks import enqueue_render, sweep_form_batches
from tests.factories import (
    World,
    bearer,
    build_world,
    job_ctx,
    login,
    make_students,
    open_campaign,
    run_jobs,
)

ROOT = Path(__file__).resolve().parents[2]
FAILED_MESSAGE = "确认表 PDF 生成失败，请稍后重新打印本班确认表；如仍失败请联系技术支持。"


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    await make_students(world, "A1", 3)
    await open_campaign()
    return world


def qr_text(image: Image.Image) -> str:
    found = zxingcpp.read_barcodes(image)
    assert found, "no QR code found on the page"
    return str(found[0].text)


async def test_issuing_a_class_renders_a_pdf_page_per_student_with_its_token(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    registrar = bearer(await login(client, world.phones[Role.registrar]))

    issued = await client.post(
        "/form-batches", json={"class_id": world.classes["A1"]}, headers=registrar
    )
    assert issued.status_code == 202
    batch = issued.json()
    assert batch["total"] == 3
    assert batch["pdf_ready"] is False
    await run_jobs(app, settings)
    done = (await client.get(f"/form-batches/{batch['id']}", headers=registrar)).json()
    assert done["status"] == "done"
    assert done["done"] == done["total"] == 3

    pdf = await client.get(f"/form-batches/{batch['id']}/pdf", headers=registrar)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["cache-control"] == "no-store"
    reader = PdfReader(io.BytesIO(pdf.content))
    assert len(reader.pages) == 3
    key = settings.form_token_key.encode()
    tokens = []
    for page in reader.pages:
        image = Image.open(io.BytesIO(page.images[0].data))
        tokens.append(verify_form_token(qr_text(image), key))
    assert tokens == [f["form_id"] for f in batch["forms"]]


async def test_each_form_keeps_a_snapshot_and_a_png(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    batch = (
        await client.post(
            "/form-batches", json={"class_id": world.classes["A1"]}, headers=registrar
        )
    ).json()
    form = (
        await IssuedForm.select().where(IssuedForm.form_id == batch["forms"][0]["form_id"]).first()
    )
    assert form is not None
    student = await Student.select().where(Student.id == form["student"]).first()
    assert student is not None
    snapshot = (
        form["snapshot"] if isinstance(form["snapshot"], dict) else json.loads(form["snapshot"])
    )
    fields = (
        student["fields"] if isinstance(student["fields"], dict) else json.loads(student["fields"])
    )
    assert snapshot["name"] == fields["name"]
    assert snapshot["id_number"] == fields["id_number"]

    png = await client.get(f"/forms/{form['form_id']}/png", headers=registrar)

    assert png.status_code == 200
    assert png.headers["cache-control"] == "no-store"
    image = Image.open(io.BytesIO(png.content))
    assert verify_form_token(qr_text(image), settings.form_token_key.encode()) == form["form_id"]


async def test_reissuing_supersedes_the_earlier_forms(
    client: httpx.AsyncClient, world: World
) -> None:
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    first = (
        await client.post(
            "/form-batches", json={"class_id": world.classes["A1"]}, headers=registrar
        )
    ).json()
    second = (
        await client.post(
            "/form-batches", json={"class_id": world.classes["A1"]}, headers=registrar
        )
    ).json()

    live = await IssuedForm.select(IssuedForm.form_id).where(IssuedForm.superseded_at.is_null())
    assert {f["form_id"] for f in live} == {f["form_id"] for f in second["forms"]}
    assert not {f["form_id"] for f in live} & {f["form_id"] for f in first["forms"]}
    assert await FormBatch.count() == 2


async def test_only_a_registrar_of_the_school_issues(
    client: httpx.AsyncClient, world: World
) -> None:
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    county = bearer(await login(client, world.phones[Role.county_reviewer]))
    registrar = bearer(await login(client, world.phones[Role.registrar]))

    assert (
        await client.post("/form-batches", json={"class_id": world.classes["A1"]}, headers=teacher)
    ).status_code == 403
    assert (
        await client.post("/form-batches", json={"class_id": world.classes["A1"]}, headers=county)
    ).status_code == 403
    other = await client.post(
        "/form-batches", json={"class_id": world.classes["B1"]}, headers=registrar
    )
    assert other.status_code == 404


async def test_a_batch_that_cannot_be_rendered_ends_failed_with_a_message(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    batch = (
        await client.post(
            "/form-batches", json={"class_id": world.classes["A1"]}, headers=registrar
        )
    ).json()
    # One of its forms is gone before the job runs: the job cannot finish the PDF.
    await IssuedForm.delete().where(IssuedForm.form_id == batch["forms"][1]["form_id"])

    await run_jobs(app, settings)

    read = (await client.get(f"/form-batches/{batch['id']}", headers=registrar)).json()
    assert read["status"] == "failed"
    assert read["pdf_ready"] is False
    assert read["message"] == FAILED_MESSAGE
    assert await tries(batch["id"]) == 1  # a broken batch would fail the same way again
    pdf = await client.get(f"/form-batches/{batch['id']}/pdf", headers=registrar)
    assert pdf.status_code == 409
    assert pdf.json()["code"] == "pdf_not_ready"


async def test_a_batch_whose_job_was_lost_is_swept_and_rendered(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    """Redis restarted empty after the batch was queued: its job is gone, the row says
    `queued`; the sweeper (which a worker also runs at once after reconnecting) finds it."""
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    batch = (
        await client.post(
            "/form-batches", json={"class_id": world.classes["A1"]}, headers=registrar
        )
    ).json()
    await app.state.redis.flushdb()  # the queue is lost

    swept = await sweep_form_batches(job_ctx(app), 0)
    await run_jobs(app, settings)

    assert swept == 1
    read = (await client.get(f"/form-batches/{batch['id']}", headers=registrar)).json()
    assert read["status"] == "done"
    assert read["pdf_ready"] is True


async def test_a_class_s_form_batches_are_listed_newest_first_within_scope(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    """The registrar who issued a class twice finds both batches again; the class teacher sees
    its own class's; a class outside the scope answers like a missing one."""
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    teacher = bearer(await login(client, world.phones[Role.teacher]))
    class_id = world.classes["A1"]
    first = await client.post("/form-batches", json={"class_id": class_id}, headers=registrar)
    second = await client.post("/form-batches", json={"class_id": class_id}, headers=registrar)
    await run_jobs(app, settings)

    listed = await client.get(
        f"/form-batches?class_id={class_id}&page=1&page_size=1", headers=registrar
    )

    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert page["total"] == 2
    assert page["page_size"] == 1
    assert [b["id"] for b in page["items"]] == [second.json()["id"]]
    assert page["items"][0]["status"] == "done"
    assert page["items"][0]["pdf_ready"] is True
    assert page["items"][0]["total"] == 3
    older = await client.get(
        f"/form-batches?class_id={class_id}&page=2&page_size=1", headers=registrar
    )
    assert [b["id"] for b in older.json()["items"]] == [first.json()["id"]]
    mine = await client.get("/form-batches", headers=teacher)
    assert mine.json()["total"] == 2
    outside = await client.get(f"/form-batches?class_id={world.classes['B1']}", headers=registrar)
    assert outside.status_code == 404
    assert outside.json()["code"] == "not_found"


# --- A render that fails: retried while the fault may pass, then `failed` with a message ---


@contextlib.contextmanager
def pdfs_cannot_be_stored(app: Litestar, batch: dict[str, Any]) -> Iterator[None]:
    """A storage fault, the real way: where the class's PDFs go is a file, not a folder,
    so every write there fails with an OSError until it is removed."""
    blocked = app.state.storage.root / "forms" / str(batch["campaign_id"]) / str(batch["class_id"])
    if blocked.is_dir():
        shutil.rmtree(blocked)
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_bytes(b"")
    try:
        yield
    finally:
        blocked.unlink()


async def tries(batch_id: int) -> int:
    row = await FormBatch.select(FormBatch.render_attempts).where(FormBatch.id == batch_id).first()
    assert row is not None
    return int(row["render_attempts"])


async def test_a_storage_fault_is_retried_and_the_pdf_is_made_once_it_passes(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    batch = (
        await client.post(
            "/form-batches", json={"class_id": world.classes["A1"]}, headers=registrar
        )
    ).json()

    with pdfs_cannot_be_stored(app, batch):
        await run_jobs(app, settings, max_jobs=1)  # the first try fails
    read = (await client.get(f"/form-batches/{batch['id']}", headers=registrar)).json()
    assert read["status"] == "queued"  # waiting for its next try, not stuck `running`
    assert read["message"] is None

    await run_jobs(app, settings)  # arq's retry, after a short wait

    read = (await client.get(f"/form-batches/{batch['id']}", headers=registrar)).json()
    assert read["status"] == "done"
    assert read["pdf_ready"] is True
    assert await tries(batch["id"]) == 2


async def test_a_storage_fault_that_lasts_ends_failed_after_the_last_try(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    batch = (
        await client.post(
            "/form-batches", json={"class_id": world.classes["A1"]}, headers=registrar
        )
    ).json()

    with pdfs_cannot_be_stored(app, batch):
        await run_jobs(app, settings)

    read = (await client.get(f"/form-batches/{batch['id']}", headers=registrar)).json()
    assert read["status"] == "failed"
    assert read["pdf_ready"] is False
    assert read["message"] == FAILED_MESSAGE
    assert await tries(batch["id"]) == MAX_RENDER_ATTEMPTS
    assert (
        await AuditLog.count().where(
            (AuditLog.action == "render_failed") & (AuditLog.entity_id == str(batch["id"]))
        )
        == 1
    )
    # Failed is final: neither the sweeper nor a stray job takes it up again.
    assert await sweep_form_batches(job_ctx(app), 0) == 0
    await enqueue_render(app.state.arq, batch["id"], attempt=9)
    await run_jobs(app, settings)
    assert (await client.get(f"/form-batches/{batch['id']}", headers=registrar)).json()[
        "status"
    ] == "failed"
    assert await tries(batch["id"]) == MAX_RENDER_ATTEMPTS


def start_worker(tmp: Path, lease_seconds: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RENDER_LEASE_SECONDS": str(lease_seconds)}
    return subprocess.Popen(
        [sys.executable, "-m", "arq", "backend.worker.WorkerSettings"],
        cwd=ROOT,
        env=env,
        stdout=(tmp / "worker.log").open("wb"),
        stderr=subprocess.STDOUT,
    )


async def test_a_batch_left_running_by_a_killed_worker_is_taken_over_by_the_sweeper(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World, tmp_path: Path
) -> None:
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    worker = start_worker(tmp_path, lease_seconds=1)
    try:
        batch = (
            await client.post(
                "/form-batches", json={"class_id": world.classes["A1"]}, headers=registrar
            )
        ).json()
        deadline = time.monotonic() + 120
        status = "queued"
        while status == "queued" and time.monotonic() < deadline:
            row = (
                await FormBatch.select(FormBatch.status).where(FormBatch.id == batch["id"]).first()
            )
            assert row is not None
            status = row["status"]
            time.sleep(0.01)  # noqa: ASYNC251  (poll tightly: the render takes seconds)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    assert status == "running", (tmp_path / "worker.log").read_text()[-2000:]
    assert await tries(batch["id"]) == 1

    time.sleep(1.1)  # noqa: ASYNC251  (let the dead worker's 1-second lease run out)
    short_lease = settings.with_(render_lease_seconds=1)
    swept = await sweep_form_batches(job_ctx(app, short_lease))
    assert swept == 1
    # A fresh worker takes the swept job (the dead one's job stays locked in arq until its
    # own timeout; rendering is idempotent, so that later run will find the batch done).
    worker = start_worker(tmp_path, lease_seconds=1)
    try:
        deadline = time.monotonic() + 120
        while status != "done" and time.monotonic() < deadline:
            row = (
                await FormBatch.select(FormBatch.status).where(FormBatch.id == batch["id"]).first()
            )
            assert row is not None
            status = row["status"]
            time.sleep(0.1)  # noqa: ASYNC251
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    read = (await client.get(f"/form-batches/{batch['id']}", headers=registrar)).json()
    assert read["status"] == "done", (tmp_path / "worker.log").read_text()[-2000:]
    assert read["pdf_ready"] is True
    assert await tries(batch["id"]) == 2

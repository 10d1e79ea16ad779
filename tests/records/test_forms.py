"""Issuing a class's forms: one page per student, a PDF whose every page's QR code carries
that student's signed form token, and the snapshot of what was printed."""

from __future__ import annotations

import io
import json

import httpx
import pytest
import zxingcpp
from litestar import Litestar
from PIL import Image
from pypdf import PdfReader

from backend.accounts.roles import Role
from backend.config import Settings
from backend.ocr import verify_form_token
from backend.records.tables import FormBatch, IssuedForm, Student
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

    issued = await client.post(f"/classes/{world.classes['A1']}/forms", headers=registrar)
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
    batch = (await client.post(f"/classes/{world.classes['A1']}/forms", headers=registrar)).json()
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
    first = (await client.post(f"/classes/{world.classes['A1']}/forms", headers=registrar)).json()
    second = (await client.post(f"/classes/{world.classes['A1']}/forms", headers=registrar)).json()

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
        await client.post(f"/classes/{world.classes['A1']}/forms", headers=teacher)
    ).status_code == 403
    assert (
        await client.post(f"/classes/{world.classes['A1']}/forms", headers=county)
    ).status_code == 403
    other = await client.post(f"/classes/{world.classes['B1']}/forms", headers=registrar)
    assert other.status_code == 404


async def test_a_batch_that_cannot_be_rendered_ends_failed_with_a_message(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    registrar = bearer(await login(client, world.phones[Role.registrar]))
    batch = (await client.post(f"/classes/{world.classes['A1']}/forms", headers=registrar)).json()
    # One of its forms is gone before the job runs: the job cannot finish the PDF.
    await IssuedForm.delete().where(IssuedForm.form_id == batch["forms"][1]["form_id"])

    await run_jobs(app, settings)

    read = (await client.get(f"/form-batches/{batch['id']}", headers=registrar)).json()
    assert read["status"] == "failed"
    assert read["pdf_ready"] is False
    assert read["message"] == (
        "确认表 PDF 生成失败，请稍后重新打印本班确认表；如仍失败请联系技术支持。"
    )
    pdf = await client.get(f"/form-batches/{batch['id']}/pdf", headers=registrar)
    assert pdf.status_code == 409
    assert pdf.json()["code"] == "pdf_not_ready"


async def test_a_batch_whose_job_was_lost_is_swept_and_rendered(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    """Redis restarted empty after the batch was queued: its job is gone, the row says
    `queued`; the sweeper (which a worker also runs at once after reconnecting) finds it."""
    from backend.records.tasks import sweep_form_batches

    registrar = bearer(await login(client, world.phones[Role.registrar]))
    batch = (await client.post(f"/classes/{world.classes['A1']}/forms", headers=registrar)).json()
    await app.state.redis.flushdb()  # the queue is lost

    swept = await sweep_form_batches(job_ctx(app), 0)
    await run_jobs(app, settings)

    assert swept == 1
    read = (await client.get(f"/form-batches/{batch['id']}", headers=registrar)).json()
    assert read["status"] == "done"
    assert read["pdf_ready"] is True

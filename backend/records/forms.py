"""Issuing confirmation forms for a class: each student gets a form (a new form id, the
values it prints kept as a snapshot, a registration code for the parents), and a job renders
the class's printable PDF with progress."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import io
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from piccolo.custom_types import Combinable
from PIL import Image
from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend import progress
from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.scope import Scope, get_scoped, scoped
from backend.accounts.tables import School, SchoolClass
from backend.config import Settings
from backend.db import json_value, transaction
from backend.errors import Conflict
from backend.ocr import FormHeader, append_pdf_page, render_form, sign_form_token
from backend.outbox import Outbox
from backend.pages import Page, window
from backend.records.campaigns import Switch, require_open
from backend.records.holds import on_roll
from backend.records.printing import (
    PRINT_DPI,
    SCREEN_DPI,
    code_hash,
    form_layout,
    new_form_id,
    printed_values,
    registration_code,
    snapshot_of,
)
from backend.records.schemas import FormBatchRead, FormBatchSummary
from backend.records.service import load_fields
from backend.records.tables import (
    BATCH_STATUS,
    BatchStatus,
    FormBatch,
    IssuedForm,
    Student,
)
from backend.storage import Storage

log = logging.getLogger("registry.forms")


async def issue_class_forms(
    settings: Settings, principal: Principal, actor: Actor, outbox: Outbox, class_id: int
) -> int:
    """New forms for every enrolled student of the class; earlier forms of the same campaign
    are superseded (their QR codes now read as another form). Returns the batch id. A student
    in the middle of a status change (a transfer …, `records.holds`) gets none: notice 001
    checks the record once the change is done."""
    require(principal, Action.issue_forms)
    school_class = await get_scoped(
        actor, principal.scope, SchoolClass, SchoolClass.id == class_id, "school_class", class_id
    )
    campaign = await require_open(school_class["region_code"], Switch.forms)
    students = (
        await Student.select(Student.id, Student.fields)
        .where((Student.school_class == class_id) & on_roll())
        .order_by(Student.name)
    )
    if not students:
        raise Conflict("该班级没有在籍学生", code="class_empty")
    key = settings.form_token_key.encode()
    now = datetime.now(UTC)
    async with transaction():
        await IssuedForm.update({IssuedForm.superseded_at: now}).where(
            IssuedForm.student.is_in([s["id"] for s in students])
            & (IssuedForm.campaign == campaign["id"])
            & IssuedForm.superseded_at.is_null()
        )
        forms = []
        for student in students:
            form_id = new_form_id()
            forms.append(
                IssuedForm(
                    form_id=form_id,
                    campaign=campaign["id"],
                    student=student["id"],
                    school=school_class["school"],
                    school_class=class_id,
                    region_code=school_class["region_code"],
                    snapshot=snapshot_of(load_fields(student["fields"])),
                    registration_code_hash=code_hash(registration_code(form_id, key)),
                    issued_by=principal.account_id,
                    issued_at=now,
                )
            )
        inserted = await IssuedForm.insert(*forms).returning(IssuedForm.id)
        rows = await FormBatch.insert(
            FormBatch(
                campaign=campaign["id"],
                school=school_class["school"],
                school_class=class_id,
                region_code=school_class["region_code"],
                form_ids=[r["id"] for r in inserted],
                status=BatchStatus.queued.value,
                issued_by=principal.account_id,
                created_at=now,
            )
        )
        batch_id = int(rows[0]["id"])
        await audit.record(
            actor,
            "issue_forms",
            "form_batch",
            batch_id,
            after={"class_id": class_id, "campaign_id": campaign["id"], "forms": len(forms)},
        )
        await outbox.job("render_form_batch_job", batch_id, job_id=f"forms:{batch_id}")
    return batch_id


def _header(
    form: dict[str, Any], school: str, class_name: str, key: bytes, base_url: str
) -> FormHeader:
    return FormHeader(
        school=school,
        class_name=class_name,
        registration_code=registration_code(form["form_id"], key),
        form_token=sign_form_token(form["form_id"], key),
        student_name=load_fields(form["snapshot"]).get("name"),
        public_base_url=base_url,
    )


async def _form_page(
    settings: Settings,
    form: dict[str, Any],
    school: str,
    class_name: str,
    dpi: int = SCREEN_DPI,
) -> Image.Image:
    header = _header(
        form, school, class_name, settings.form_token_key.encode(), settings.public_base_url
    )
    values = printed_values(load_fields(form["snapshot"]))
    return await asyncio.to_thread(render_form, form_layout(dpi), values, header)


async def _names(form: dict[str, Any]) -> tuple[str, str]:
    school = await School.select(School.name).where(School.id == form["school"]).first()
    klass = (
        await SchoolClass.select(SchoolClass.name)
        .where(SchoolClass.id == form["school_class"])
        .first()
    )
    return (school or {}).get("name", ""), (klass or {}).get("name", "")


async def form_png(settings: Settings, scope: Scope, actor: Actor, form_id: str) -> bytes:
    form = await get_scoped(
        actor, scope, IssuedForm, IssuedForm.form_id == form_id, "issued_form", form_id
    )
    page = await _form_page(settings, form, *await _names(form))
    out = io.BytesIO()
    await asyncio.to_thread(page.save, out, "PNG", optimize=False)
    return out.getvalue()


@functools.cache
def pdf_executor() -> ThreadPoolExecutor:
    """One thread renders every PDF page of the process, one page at a time: a 300-dpi page
    is about 9 MB of pixels (three copies while it is made bilevel), so a batch needs about
    50 MB at its peak however many batches wait, and no more than one core."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="pdf")


def _page_to_pdf(
    path: str,
    form: dict[str, Any],
    school: str,
    class_name: str,
    key: bytes,
    base_url: str,
    first: bool,
) -> None:
    page = render_form(
        form_layout(PRINT_DPI),
        printed_values(load_fields(form["snapshot"])),
        _header(form, school, class_name, key, base_url),
    )
    append_pdf_page(path, page, first=first)


def _clean_up(path: str) -> None:
    """Remove the file and hand the freed page buffers back to the system (glibc keeps
    them otherwise)."""
    Path(path).unlink(missing_ok=True)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


RENDER_TIMEOUT = 15 * 60  # seconds for the job, waiting for the PDF thread included
MAX_RENDER_ATTEMPTS = 3
BATCH_FAILED_MESSAGE = "确认表 PDF 生成失败，请稍后重新打印本班确认表；如仍失败请联系技术支持。"


def _lease_ran_out(now: datetime, lease: timedelta) -> Combinable:
    # A batch left `running` before leases were recorded counts from its issue.
    return (FormBatch.render_started_at < now - lease) | (
        FormBatch.render_started_at.is_null() & (FormBatch.created_at < now - lease)
    )


async def claim_batch(batch_id: int, lease: timedelta) -> dict[str, Any] | None:
    """Take the batch for rendering, unless it is finished or another worker holds a live
    lease (a batch whose worker died is taken over once its lease has run out)."""
    now = datetime.now(UTC)
    claimed = await BATCH_STATUS.move(
        batch_id,
        BatchStatus.running,
        sources=(BatchStatus.queued, BatchStatus.running),
        where=(FormBatch.status == BatchStatus.queued) | _lease_ran_out(now, lease),
        values={
            FormBatch.render_started_at: now,
            FormBatch.render_attempts: FormBatch.render_attempts + 1,
        },
    )
    if not claimed:
        return None
    return await FormBatch.select().where(FormBatch.id == batch_id).first()


async def render_batch(
    settings: Settings, storage: Storage, redis: Redis, batch_id: int, *, lease: timedelta
) -> str:
    """Render every form of the batch into one PDF, page by page into a file on disk, and
    store it. Idempotent: a batch is claimed under a lease first, and a finished one is left
    alone. Failures reach the caller (`records.tasks`), which retries or fails the batch."""
    batch = await claim_batch(batch_id, lease)
    if batch is None:
        return "skipped"
    pdf = await _render_batch_pdf(settings, redis, batch)
    key = f"forms/{batch['campaign']}/{batch['school_class']}/batch-{batch_id}.pdf"
    await storage.put(key, pdf, "application/pdf")
    await BATCH_STATUS.move(
        batch_id,
        BatchStatus.done,
        values={FormBatch.pdf_key: key, FormBatch.finished_at: datetime.now(UTC)},
    )
    return BatchStatus.done.value


async def fail_batch(batch_id: int, reason: str) -> str:
    """For good: the registrar reads `BATCH_FAILED_MESSAGE` and prints the class again."""
    log.error("form batch %s failed for good: %s", batch_id, reason)
    async with transaction():
        if await BATCH_STATUS.move(
            batch_id, BatchStatus.failed, values={FormBatch.finished_at: datetime.now(UTC)}
        ):
            await audit.record(
                Actor.system(f"render:{batch_id}"),
                "render_failed",
                "form_batch",
                batch_id,
                after={"reason": reason[:200]},
            )
    return BatchStatus.failed.value


async def give_up_or_release(batch_id: int, error: BaseException) -> bool:
    """After a failed try: True when tries remain (the batch is queued again)."""
    row = await FormBatch.select(FormBatch.render_attempts).where(FormBatch.id == batch_id).first()
    if row is None or row["render_attempts"] >= MAX_RENDER_ATTEMPTS:
        await fail_batch(batch_id, repr(error))
        return False
    await BATCH_STATUS.move(batch_id, BatchStatus.queued)
    return True


async def left_behind(lease: timedelta, grace: timedelta) -> list[tuple[int, int]]:
    """Batches nobody is rendering: queued too long (their job was lost, or a try failed
    and gave them back), or whose worker's lease ran out. Those out of tries fail here."""
    now = datetime.now(UTC)
    rows = (
        await FormBatch.select(FormBatch.id, FormBatch.render_attempts)
        .where(
            ((FormBatch.status == BatchStatus.queued) & (FormBatch.created_at < now - grace))
            | ((FormBatch.status == BatchStatus.running) & _lease_ran_out(now, lease))
        )
        .limit(1000)
    )
    stale = [(r["id"], r["render_attempts"]) for r in rows]
    for batch_id, attempts in stale:
        if attempts >= MAX_RENDER_ATTEMPTS:
            await fail_batch(batch_id, "no worker finished it")
    return [(i, a) for i, a in stale if a < MAX_RENDER_ATTEMPTS]


async def _render_batch_pdf(settings: Settings, redis: Redis, batch: dict[str, Any]) -> bytes:
    ids = json_value(batch["form_ids"])
    forms = {f["id"]: f for f in await IssuedForm.select().where(IssuedForm.id.is_in(ids))}
    key = settings.form_token_key.encode()
    loop = asyncio.get_running_loop()
    names: tuple[str, str] | None = None
    fd, path = tempfile.mkstemp(prefix=f"batch-{batch['id']}-", suffix=".pdf")
    os.close(fd)
    try:
        for done, form_id in enumerate(ids, start=1):
            form = forms[form_id]
            names = names or await _names(form)
            await loop.run_in_executor(
                pdf_executor(),
                functools.partial(
                    _page_to_pdf, path, form, *names, key, settings.public_base_url, done == 1
                ),
            )
            with contextlib.suppress(RedisError):  # progress only: the PDF matters more
                await progress.report(redis, "form_batch", batch["id"], done=done, total=len(ids))
        return await asyncio.to_thread(Path(path).read_bytes)
    finally:
        await loop.run_in_executor(pdf_executor(), _clean_up, path)


async def get_batch(scope: Scope, actor: Actor, redis: Redis, batch_id: int) -> FormBatchRead:
    batch = await get_scoped(
        actor, scope, FormBatch, FormBatch.id == batch_id, "form_batch", batch_id
    )
    ids = json_value(batch["form_ids"])
    reported = await progress.read(redis, "form_batch", batch_id)
    done = int(reported.get("done", len(ids) if batch["status"] == BatchStatus.done else 0))
    forms = (
        await IssuedForm.select(IssuedForm.form_id, IssuedForm.student).where(
            IssuedForm.id.is_in(ids)
        )
        if ids
        else []
    )
    return FormBatchRead(
        id=batch_id,
        class_id=batch["school_class"],
        campaign_id=batch["campaign"],
        status=BatchStatus(batch["status"]),
        done=done,
        total=len(ids),
        pdf_ready=batch["pdf_key"] is not None,
        message=BATCH_FAILED_MESSAGE if batch["status"] == BatchStatus.failed else None,
        forms=[{"form_id": f["form_id"], "student_id": f["student"]} for f in forms],
    )


async def list_batches(
    principal: Principal, actor: Actor, class_id: int | None, page: int, page_size: int
) -> Page[FormBatchSummary]:
    """The batches in the caller's scope, newest first; of one class if `class_id` is given
    (a class outside the scope answers 404, audited, like any other)."""
    query = scoped(FormBatch.select(), principal.scope, FormBatch).order_by(
        FormBatch.id, ascending=False
    )
    count = scoped(FormBatch.count(), principal.scope, FormBatch)
    if class_id is not None:
        await get_scoped(
            actor,
            principal.scope,
            SchoolClass,
            SchoolClass.id == class_id,
            "school_class",
            class_id,
        )
        query = query.where(FormBatch.school_class == class_id)
        count = count.where(FormBatch.school_class == class_id)
    w = window(page, page_size)
    rows, total = await w.fetch(query, count)
    items = [
        FormBatchSummary(
            id=row["id"],
            class_id=row["school_class"],
            campaign_id=row["campaign"],
            status=BatchStatus(row["status"]),
            total=len(json_value(row["form_ids"])),
            pdf_ready=row["pdf_key"] is not None,
            created_at=row["created_at"],
            finished_at=row["finished_at"],
        )
        for row in rows
    ]
    return w.page(items, total)


async def batch_pdf(scope: Scope, actor: Actor, storage: Storage, batch_id: int) -> bytes:
    batch = await get_scoped(
        actor, scope, FormBatch, FormBatch.id == batch_id, "form_batch", batch_id
    )
    if batch["pdf_key"] is None:
        raise Conflict("确认表 PDF 还在生成中，请稍后再试", code="pdf_not_ready")
    return await storage.get(batch["pdf_key"])

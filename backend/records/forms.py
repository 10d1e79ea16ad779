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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image
from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend import progress
from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.principal import Principal
from backend.accounts.roles import Role
from backend.accounts.scope import Scope, ScopedColumns, get_scoped, register_scoped
from backend.accounts.tables import School, SchoolClass
from backend.config import Settings
from backend.db import json_value, transaction
from backend.errors import Conflict, Forbidden
from backend.ocr import FormHeader, append_pdf_page, render_form, sign_form_token
from backend.outbox import Outbox
from backend.records.campaigns import Switch, require_open
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
from backend.records.schemas import FormBatchRead
from backend.records.service import load_fields
from backend.records.tables import FormBatch, IssuedForm, Student
from backend.storage import Storage

log = logging.getLogger("registry.forms")

FORM_ISSUERS = frozenset({Role.registrar})

register_scoped(
    IssuedForm,
    ScopedColumns(
        region=IssuedForm.region_code,
        school=IssuedForm.school,
        school_class=IssuedForm.school_class,
    ),
)
register_scoped(
    FormBatch,
    ScopedColumns(
        region=FormBatch.region_code, school=FormBatch.school, school_class=FormBatch.school_class
    ),
)


async def issue_class_forms(
    settings: Settings, principal: Principal, actor: Actor, outbox: Outbox, class_id: int
) -> int:
    """New forms for every enrolled student of the class; earlier forms of the same campaign
    are superseded (their QR codes now read as another form). Returns the batch id."""
    if principal.role not in FORM_ISSUERS:
        raise Forbidden("只有学籍管理员可以打印确认表", code="registrar_only")
    school_class = await get_scoped(
        actor, principal.scope, SchoolClass, SchoolClass.id == class_id, "school_class", class_id
    )
    campaign = await require_open(school_class["region_code"], Switch.forms)
    students = (
        await Student.select(Student.id, Student.fields)
        .where((Student.school_class == class_id) & (Student.status == "enrolled"))
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
                status="queued",
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
BATCH_FAILED_MESSAGE = "确认表 PDF 生成失败，请稍后重新打印本班确认表；如仍失败请联系技术支持。"


async def render_batch(settings: Settings, storage: Storage, redis: Redis, batch_id: int) -> str:
    """The job: render every form of the batch into one PDF, page by page into a file on
    disk. Idempotent; a batch that cannot be rendered ends `failed`, not `running`."""
    batch = await FormBatch.select().where(FormBatch.id == batch_id).first()
    if batch is None or batch["status"] == "done":
        return "skipped"
    await FormBatch.update({FormBatch.status: "running"}).where(FormBatch.id == batch_id)
    try:
        pdf = await _render_batch_pdf(settings, redis, batch)
        key = f"forms/{batch['campaign']}/{batch['school_class']}/batch-{batch_id}.pdf"
        await storage.put(key, pdf, "application/pdf")
    except OSError:
        # Transient (storage, database): queued again, the sweeper runs it in a minute or so.
        await FormBatch.update({FormBatch.status: "queued"}).where(FormBatch.id == batch_id)
        raise
    except asyncio.CancelledError:
        # The job's time ran out (or the worker stops, and arq runs it again): not `running`.
        await _failed(batch_id)
        raise
    except Exception:
        log.exception("form batch %s could not be rendered", batch_id)
        await _failed(batch_id)
        return "failed"
    await FormBatch.update(
        {FormBatch.status: "done", FormBatch.pdf_key: key, FormBatch.finished_at: datetime.now(UTC)}
    ).where(FormBatch.id == batch_id)
    return "done"


async def _failed(batch_id: int) -> None:
    await FormBatch.update(
        {FormBatch.status: "failed", FormBatch.finished_at: datetime.now(UTC)}
    ).where((FormBatch.id == batch_id) & (FormBatch.status == "running"))


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
    done = int(reported.get("done", len(ids) if batch["status"] == "done" else 0))
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
        status=batch["status"],
        done=done,
        total=len(ids),
        pdf_ready=batch["pdf_key"] is not None,
        message=BATCH_FAILED_MESSAGE if batch["status"] == "failed" else None,
        forms=[{"form_id": f["form_id"], "student_id": f["student"]} for f in forms],
    )


async def batch_pdf(scope: Scope, actor: Actor, storage: Storage, batch_id: int) -> bytes:
    batch = await get_scoped(
        actor, scope, FormBatch, FormBatch.id == batch_id, "form_batch", batch_id
    )
    if batch["pdf_key"] is None:
        raise Conflict("确认表 PDF 还在生成中，请稍后再试", code="pdf_not_ready")
    return await storage.get(batch["pdf_key"])

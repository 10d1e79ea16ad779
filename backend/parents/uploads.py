"""Photos of signed forms: uploaded by a parent, or by the homeroom teacher on the family's
behalf (recorded as such); checked, cleaned and stored; served only to those in scope."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from backend import quota
from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.roles import STAFF_ROLES
from backend.accounts.scope import Scope, get_scoped, in_scope_sql
from backend.config import Settings
from backend.db import fetch_row, json_value, transaction
from backend.errors import (
    Conflict,
    DomainError,
    NotFound,
    OutsideWindow,
    PayloadTooLarge,
    TooManyAttempts,
)
from backend.outbox import Outbox
from backend.parents import drafts
from backend.parents.photos import (
    PHOTO_TOO_LARGE,
    PhotoRejected,
    clean_photo,
    content_hash,
    strip_metadata,
)
from backend.parents.schemas import UploadDetail, UploadRead
from backend.parents.tables import Upload
from backend.parents.views import report_fields
from backend.records.campaigns import active_campaign
from backend.records.holds import RecordChangeOpen
from backend.records.tables import IssuedForm, Student
from backend.storage import Storage, read_current

log = logging.getLogger("registry.uploads")


class PhotoTooLarge(PayloadTooLarge):
    """Refused before it is read (the request's size limit), in the check's own words."""

    code = "photo_too_large"
    message = PHOTO_TOO_LARGE


class PhotoError(DomainError):
    """A rejected photo, with the status the check chose (400, or 413 when too large)."""


def upload_read(row: Mapping[str, Any], duplicate: bool = False) -> UploadRead:
    return UploadRead(
        id=row["id"],
        student_id=row["student"],
        status=row["status"],
        on_behalf=bool(row["on_behalf"]),
        width=row["width"],
        height=row["height"],
        created_at=row["created_at"],
        duplicate=duplicate,
        photo_url=f"/uploads/{row['id']}/photo",
    )


HOUR, DAY = 3600, 24 * 3600


async def _take_upload_quota(
    redis: Redis, settings: Settings, principal: Principal, student_id: int
) -> None:
    """One photo of this child by this uploader: within the child's hourly and daily limits
    and the uploader's daily cap, or 429 with the seconds to wait."""
    per_child_hour = quota.Quota(
        f"upload-quota:student:{student_id}:hour", settings.uploads_per_student_per_hour, HOUR
    )
    per_child_day = quota.Quota(
        f"upload-quota:student:{student_id}:day", settings.uploads_per_student_per_day, DAY
    )
    per_uploader_day = quota.Quota(
        f"upload-quota:account:{principal.account_id}:day",
        settings.uploads_per_account_per_day,
        DAY,
    )
    try:
        refused = await quota.take(redis, [per_child_hour, per_child_day, per_uploader_day])
    except (RedisConnectionError, RedisTimeoutError):
        # An outage is short and the photo is what the family came for: it is stored and
        # checked once Redis is back (README, "When Redis goes away"); the limit waits.
        log.warning("upload limit not counted: Redis unavailable")
        return
    if refused is None:
        return
    wait = f"请 {max(refused.retry_after // 60, 1)} 分钟后再试"
    if refused.quota is per_child_hour:
        message = f"该学生的确认表照片每小时最多上传 {per_child_hour.limit} 张，{wait}"
    elif refused.quota is per_child_day:
        message = f"该学生的确认表照片今天已上传 {per_child_day.limit} 张，{wait}"
    else:
        message = f"您今天已上传 {per_uploader_day.limit} 张照片，达到每日上限，{wait}"
    raise TooManyAttempts(message, code="too_many_uploads", retry_after=refused.retry_after)


async def upload_photo(
    principal: Principal,
    actor: Actor,
    storage: Storage,
    redis: Redis,
    settings: Settings,
    outbox: Outbox,
    student_id: int,
    data: bytes,
) -> UploadRead:
    """Store a photo of the child's signed form. The same photo sent again answers the earlier
    upload; a new one is counted against the upload limits before it is even decoded."""
    require(principal, Action.upload_photo)
    student = await get_scoped(
        actor, principal.scope, Student, Student.id == student_id, "student", student_id
    )
    campaign = await active_campaign(student["region_code"])
    if campaign is None:
        raise OutsideWindow("当前不在数据质量核查工作时间内，暂不能上传")
    if student["open_change"] is not None:  # checked once the change is done
        raise RecordChangeOpen("该学生正在办理学籍异动（如转学），办结后再上传确认表照片")
    form = (
        await IssuedForm.select(IssuedForm.id)
        .where(
            (IssuedForm.student == student_id)
            & (IssuedForm.campaign == campaign["id"])
            & IssuedForm.superseded_at.is_null()
        )
        .first()
    )
    if form is None:
        raise Conflict("学校还没有为该学生打印本次的确认表", code="form_not_issued")
    same = (
        await Upload.select()
        .where(
            (Upload.student == student_id)
            & (Upload.campaign == campaign["id"])
            & (Upload.content_hash == content_hash(data))
        )
        .first()
    )
    if same is not None:
        # Stored once, but it is the family's latest word: their state follows it again.
        async with transaction():
            await Upload.update({Upload.last_sent_at: datetime.now(UTC)}).where(
                Upload.id == same["id"]
            )
            await audit.record(actor, "resend", "upload", same["id"], after={"student": student_id})
        return upload_read(same, duplicate=True)
    await _take_upload_quota(redis, settings, principal, student_id)
    try:
        photo = await asyncio.to_thread(clean_photo, data)
    except PhotoRejected as exc:
        error = PhotoError(exc.message, code=exc.code)
        error.status = exc.status
        raise error from exc
    key = f"photos/{campaign['id']}/{student_id}/{uuid.uuid4().hex}.jpg"
    await storage.put(key, photo.jpeg, "image/jpeg")
    on_behalf = principal.role in STAFF_ROLES
    async with transaction():
        rows = await Upload.insert(
            Upload(
                student=student_id,
                campaign=campaign["id"],
                form=form["id"],
                school=student["school"],
                school_class=student["school_class"],
                region_code=student["region_code"],
                uploaded_by=principal.account_id,
                on_behalf=on_behalf,
                storage_key=key,
                content_hash=photo.content_hash,
                width=photo.width,
                height=photo.height,
                status="uploaded",
                created_at=datetime.now(UTC),
            )
        )
        upload_id = rows[0]["id"]
        await audit.record(
            actor,
            "upload",
            "upload",
            upload_id,
            after={"student": student_id, "on_behalf": on_behalf, "format": photo.source_format},
        )
        # Its first check (attempt 0: the sweeper's retries count on, parents/tasks.py).
        await outbox.job("check_upload_job", upload_id, job_id=f"check:{upload_id}:0")
    row = await Upload.select().where(Upload.id == upload_id).first()
    assert row is not None
    return upload_read(row)


async def photo_bytes(
    principal: Principal, actor: Actor, storage: Storage, upload_id: int
) -> bytes:
    row = await get_scoped(
        actor, principal.scope, Upload, Upload.id == upload_id, "upload", upload_id
    )
    if principal.role in STAFF_ROLES:
        await audit.record(actor, "read", "upload", upload_id)
    # Stored copies are already pixels only; this also covers those stored before that was so.
    return strip_metadata(await read_current(storage, row["storage_key"]))


_DETAIL_SQL = """
SELECT u.*, c.verdict AS check_verdict, c.message AS check_message,
       c.retake_reason AS check_retake_reason, c.signed AS check_signed,
       c.fields AS check_fields, c.seconds AS check_seconds,
       EXISTS (SELECT 1 FROM correction_draft d WHERE d.upload = u.id) AS has_drafts
FROM upload u LEFT JOIN upload_check c ON c.upload = u.id
WHERE u.id = {{}} AND {scope}
"""


def detail_sql(scope: Scope) -> tuple[str, tuple[Any, ...]]:
    """The query of one upload in `scope` with its check and, after the upload id, its
    arguments."""
    scope_sql, scope_args = in_scope_sql(scope, "u")
    return _DETAIL_SQL.format(scope=scope_sql), scope_args


async def upload_detail(principal: Principal, actor: Actor, upload_id: int) -> UploadDetail:
    """The upload and its check: every field read, every correction cell with its crop. One
    query unless the photo has written corrections (the parent polls this after uploading)."""
    sql, scope_args = detail_sql(principal.scope)
    return await detail_of(
        principal, actor, upload_id, await fetch_row(sql, upload_id, *scope_args)
    )


async def detail_of(
    principal: Principal, actor: Actor, upload_id: int, row: Mapping[str, Any] | None
) -> UploadDetail:
    """`upload_detail` from the row of `detail_sql(principal.scope)` (None: none found)."""
    if row is None:
        # 404 either way; `get_scoped` audits the attempt when the upload exists elsewhere.
        await get_scoped(
            actor, principal.scope, Upload, Upload.id == upload_id, "upload", upload_id
        )
        raise NotFound()
    checked = row["check_verdict"] is not None
    readings = json_value(row["check_fields"]) if checked else {}
    corrections = await drafts.drafts_of_upload(upload_id, readings) if row["has_drafts"] else []
    if principal.role in STAFF_ROLES:
        await audit.record(actor, "read", "upload", upload_id)
    fields = report_fields(readings)
    return UploadDetail(
        upload=upload_read(row),
        verdict=row["check_verdict"],
        message=row["check_message"],
        retake_reason=row["check_retake_reason"],
        signed=bool(row["check_signed"]) if checked else None,
        fields=fields,
        corrections=corrections,
        seconds=row["check_seconds"],
    )

"""The photo check: the worker reads a photographed form (backend.ocr, off the event loop),
compares it with what was printed and with the record now, and stores one report and one
verdict; marked correction cells become drafts for the teacher or registrar.

Idempotent: an upload is claimed before it is checked (a lease), and a finished upload is
never checked again. PostgreSQL holds the state; a sweeper re-enqueues what was left behind
(a lost enqueue, a worker killed mid-job), and after the last try the upload shows
`check_failed` instead of hanging.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.config import Settings
from backend.db import transaction
from backend.ocr import (
    CheckReport,
    ForeignForms,
    LayoutMemory,
    Verdict,
    check_photo,
    matches,
    warm_up,
)
from backend.outbox import Outbox
from backend.parents.notices import CHECK_FAILED, tell_verdict
from backend.parents.tables import (
    UPLOAD_STATUS,
    CorrectionDraft,
    DraftState,
    ServerVerdict,
    Upload,
    UploadCheck,
    UploadStatus,
)
from backend.records.catalog import BY_CODE, printed_names
from backend.records.printing import catalog_fields, form_layout, printed_field, printed_values
from backend.records.service import load_fields
from backend.records.tables import IssuedForm, Student
from backend.storage import Storage, read_current

log = logging.getLogger("registry.checks")

MAX_ATTEMPTS = 3


@functools.cache
def ocr_executor() -> ThreadPoolExecutor:
    """One thread for the reader: its engines are loaded once, in that thread, and one
    check at a time per process keeps a 2-core machine responsive (run more workers for
    more throughput)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocr")


@functools.cache
def foreign_forms() -> ForeignForms:
    """How forms printed by other systems are read; the layouts learned stay for the
    worker process's life."""
    return ForeignForms(catalog_fields(), printed_names(), LayoutMemory())


async def warm_up_reader() -> None:
    await asyncio.get_running_loop().run_in_executor(ocr_executor(), warm_up)


_ORDER = {code: i for i, code in enumerate(BY_CODE)}


def _catalog_order(code: str) -> int:
    return _ORDER.get(code, len(_ORDER))


def _labels(codes: list[str]) -> str:
    return "、".join(BY_CODE[c].label if c in BY_CODE else c for c in codes)


MESSAGES = {
    ServerVerdict.not_this_form: (
        "照片中的确认表不是该学生本次核查的确认表，请拍摄学校发给该学生的确认表。"
    ),
    ServerVerdict.record_changed: (
        "学籍信息在打印这张确认表后已更新：{outdated}。请使用最新打印的确认表"
        "（还没有收到的，请向班主任领取），核对签字后重新拍照上传。"
    ),
    ServerVerdict.form_superseded: (
        "学校已为孩子重新打印了确认表，这张是较早打印的。请使用最新打印的确认表，"
        "签字后重新拍照上传。"
    ),
    ServerVerdict.differs: (
        "照片中这些印刷信息与学校打印的不一致：{differing}。"
        "请确认拍的是学校发放的原表，或联系班主任。"
    ),
    ServerVerdict.corrections_written: (
        "已识别到您在这些项目填写了更正：{corrections}。班主任核对字迹后，学校会按规定办理变更。"
    ),
    ServerVerdict.unsigned: "确认表还没有签字，请监护人签字并写上日期后重新拍照上传。",
    ServerVerdict.undated: "确认表已签字，但还没有写日期。请在“日期”栏写上签字日期后重新拍照上传。",
    ServerVerdict.matches: "确认表与学籍信息一致，已签字，无需其他操作。谢谢！",
}


def message_for(
    verdict: ServerVerdict,
    differing: list[str],
    corrections: list[str],
    outdated: list[str],
    retake_message: str,
) -> str:
    if verdict is ServerVerdict.retake:
        return retake_message
    return MESSAGES[verdict].format(
        differing=_labels(differing),
        corrections=_labels(corrections),
        outdated=_labels(outdated),
    )


CHECK_FAILED_MESSAGE = "照片暂时无法自动检查，学校会人工核对；您也可以稍后重新上传。"


async def claim(upload_id: int, lease: timedelta) -> dict[str, Any] | None:
    """Take the upload for checking, unless it is done or another worker holds a live lease."""
    now = datetime.now(UTC)
    claimed = await UPLOAD_STATUS.move(
        upload_id,
        UploadStatus.checking,
        sources=(UploadStatus.uploaded, UploadStatus.checking),
        where=(Upload.status == UploadStatus.uploaded) | (Upload.check_started_at < now - lease),
        values={Upload.check_started_at: now, Upload.check_attempts: Upload.check_attempts + 1},
    )
    if not claimed:
        return None
    return await Upload.select().where(Upload.id == upload_id).first()


def _verdict(
    report: CheckReport,
    photo_form: dict[str, Any] | None,
    upload: dict[str, Any],
    outdated: list[str],
) -> ServerVerdict:
    if report.verdict is Verdict.retake:
        return ServerVerdict.retake
    if report.layout_way is not None:
        # Another system's form (no token of ours): it was read against this upload's
        # child's record, so its verdict stands.
        return ServerVerdict(report.verdict.value)
    if (
        photo_form is None
        or photo_form["student"] != upload["student"]
        or photo_form["campaign"] != upload["campaign"]
    ):
        return ServerVerdict.not_this_form
    if outdated:
        return ServerVerdict.record_changed
    if photo_form["superseded_at"] is not None:
        return ServerVerdict.form_superseded
    return ServerVerdict(report.verdict.value)


def _earlier_printing(
    photo_form: dict[str, Any] | None, form: dict[str, Any], upload: dict[str, Any]
) -> bool:
    """The photo shows another printing of this child's form in this campaign (the class
    was issued again after this sheet went home)."""
    return (
        photo_form is not None
        and photo_form["id"] != form["id"]
        and photo_form["student"] == upload["student"]
        and photo_form["campaign"] == upload["campaign"]
    )


async def run_check(
    settings: Settings,
    storage: Storage,
    upload_id: int,
    *,
    lease: timedelta,
    time_limit: float,
    outbox: Outbox | None = None,
) -> str:
    """Check one upload and store its verdict; with `outbox`, the family is told it
    (`parents.notices`) in the same transaction."""
    upload = await claim(upload_id, lease)
    if upload is None:
        return "skipped"
    form = await IssuedForm.select().where(IssuedForm.id == upload["form"]).first()
    student = await Student.select(Student.fields).where(Student.id == upload["student"]).first()
    if form is None or student is None:
        return await fail(upload_id, "the form or the student is gone", outbox)
    photo = await read_current(storage, upload["storage_key"])
    current = printed_values(load_fields(student["fields"]))
    key = settings.form_token_key.encode()
    loop = asyncio.get_running_loop()

    async def check(sheet: dict[str, Any]) -> tuple[CheckReport, dict[str, str]]:
        printed = printed_values(load_fields(sheet["snapshot"]))
        check = functools.partial(
            check_photo,
            photo,
            form_layout(),
            printed,
            key,
            expected_form_id=sheet["form_id"],
            # A photo without our token: another system's form, checked against the child it
            # was uploaded for, as the record stands now.
            other_systems=foreign_forms(),
            other_expected=current,
        )
        report = await asyncio.wait_for(loop.run_in_executor(ocr_executor(), check), time_limit)
        return report, printed

    report, printed = await check(form)
    photo_form = None
    if report.form_id is not None:
        photo_form = await IssuedForm.select().where(IssuedForm.form_id == report.form_id).first()
    if _earlier_printing(photo_form, form, upload):
        # Read the sheet against what it printed, not against the newer printing: only
        # then do its fields say what really differs (rare: one more read, about 0.2 s).
        assert photo_form is not None
        report, printed = await check(photo_form)
    outdated = [
        code
        for code in sorted(set(printed) | set(current), key=_catalog_order)
        if printed.get(code, "") != current.get(code, "")
    ]
    if report.layout_way is not None:
        outdated = []  # compared with the record now, not with our printed snapshot
    verdict = _verdict(report, photo_form, upload, outdated)
    await _store(storage, upload, report, verdict, printed, current, outdated, outbox)
    return verdict.value


async def _store(
    storage: Storage,
    upload: dict[str, Any],
    report: CheckReport,
    verdict: ServerVerdict,
    printed: dict[str, str],
    current: dict[str, str],
    outdated: list[str],
    outbox: Outbox | None = None,
) -> None:
    now = datetime.now(UTC)
    fields = {
        code: {
            "text": r.text,
            "confidence": round(r.confidence, 3),
            "match": r.match,
            "current_match": r.text is not None
            and matches(r.text, current.get(code, ""), printed_field(BY_CODE[code]).read_kind),
            "method": r.method,
        }
        for code, r in report.fields.items()
    }
    # Only values that were read and differ: a field of another student's sheet ("unread")
    # or one that could not be made out ("unsure") differs from nothing.
    differing = [
        code
        for code, r in report.fields.items()
        if not r.match and r.method not in ("unread", "unsure")
    ]
    if verdict is ServerVerdict.record_changed:
        differing = outdated  # what the record now says otherwise than the sheet
    corrections = sorted(report.corrections)
    message = message_for(verdict, differing, corrections, outdated, report.message)
    crop_keys = {}
    if verdict is ServerVerdict.corrections_written:
        for code, png in report.corrections.items():
            crop_keys[code] = (
                f"crops/{upload['campaign']}/{upload['student']}/{upload['id']}-{code}.png"
            )
            await storage.put(crop_keys[code], png, "image/png")
    async with transaction():
        if await UploadCheck.exists().where(UploadCheck.upload == upload["id"]):
            return  # another run finished first
        await UploadCheck.insert(
            UploadCheck(
                upload=upload["id"],
                verdict=verdict.value,
                message=message,
                retake_reason=report.retake_reason.value if report.retake_reason else None,
                form_id_read=report.form_id,
                fields=json.dumps(fields, ensure_ascii=False),
                differing=json.dumps(differing),
                corrections=json.dumps(corrections),
                outdated=json.dumps(outdated),
                signed=report.signed,
                date_written=report.date_written,
                seconds=round(report.seconds, 3),
                timings=json.dumps({k: round(v, 4) for k, v in report.timings.items()}),
                created_at=now,
            )
        )
        for code, crop_key in crop_keys.items():
            await CorrectionDraft.insert(
                CorrectionDraft(
                    upload=upload["id"],
                    student=upload["student"],
                    school=upload["school"],
                    school_class=upload["school_class"],
                    region_code=upload["region_code"],
                    field_code=code,
                    crop_key=crop_key,
                    state=DraftState.draft.value,
                    created_at=now,
                )
            )
        await UPLOAD_STATUS.move(
            upload["id"],
            UploadStatus(verdict.value),
            sources=(UploadStatus.checking, UploadStatus.check_failed),
        )
        await audit.record(
            Actor.system(f"check:{upload['id']}"),
            "check",
            "upload",
            upload["id"],
            after={
                "verdict": verdict.value,
                "differing": differing,
                "corrections": corrections,
                "layout": report.layout_way or "own_form",
            },
        )
        if outbox is not None:
            await tell_verdict(outbox, upload, verdict.value, now)


async def fail(upload_id: int, reason: str, outbox: Outbox | None = None) -> str:
    log.error("photo check of upload %s failed for good: %s", upload_id, reason)
    async with transaction():
        await UPLOAD_STATUS.move(upload_id, UploadStatus.check_failed)
        upload = await Upload.select().where(Upload.id == upload_id).first()
        if outbox is not None and upload is not None:
            await tell_verdict(outbox, upload, CHECK_FAILED, datetime.now(UTC))
        await audit.record(
            Actor.system(f"check:{upload_id}"),
            "check_failed",
            "upload",
            upload_id,
            after={"reason": reason[:200]},
        )
    return "check_failed"


async def give_up_or_release(
    upload_id: int, error: BaseException, outbox: Outbox | None = None
) -> bool:
    """After a failed try: True when tries remain (the upload goes back to waiting)."""
    row = await Upload.select(Upload.check_attempts).where(Upload.id == upload_id).first()
    if row is None or row["check_attempts"] >= MAX_ATTEMPTS:
        await fail(upload_id, repr(error), outbox)
        return False
    await UPLOAD_STATUS.move(upload_id, UploadStatus.uploaded)
    return True


async def left_behind(lease: timedelta, grace: timedelta) -> list[tuple[int, int]]:
    """Uploads nobody is checking: waiting too long, or whose worker's lease ran out."""
    now = datetime.now(UTC)
    rows = (
        await Upload.select(Upload.id, Upload.check_attempts)
        .where(
            ((Upload.status == UploadStatus.uploaded) & (Upload.created_at < now - grace))
            | ((Upload.status == UploadStatus.checking) & (Upload.check_started_at < now - lease))
        )
        .limit(1000)
    )
    stale = [(r["id"], r["check_attempts"]) for r in rows]
    for upload_id, attempts in stale:
        if attempts >= MAX_ATTEMPTS:
            await fail(upload_id, "no worker finished it")
    return [(i, a) for i, a in stale if a < MAX_ATTEMPTS]

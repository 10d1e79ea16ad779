"""Corrections written on the paper form, one draft per field: listed for the class's
teacher and the school's registrar, each read and marked legible (ready to transcribe) or
illegible (the family is asked for a new photo), one by one, audited."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from backend import masking
from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.scope import get_scoped, scoped
from backend.db import json_value, transaction
from backend.errors import Conflict
from backend.pages import Page, window
from backend.parents.schemas import CorrectionDraftRead, DraftAction
from backend.parents.tables import (
    DRAFT_STATE,
    UPLOAD_STATUS,
    CorrectionDraft,
    DraftState,
    UploadCheck,
    UploadStatus,
)
from backend.records.catalog import BY_CODE
from backend.storage import Storage

# action → the state it gives; which states it may leave is `DRAFT_STATE`'s.
ACTION_STATE: Mapping[DraftAction, DraftState] = {
    DraftAction.legible: DraftState.legible,
    DraftAction.illegible: DraftState.illegible,
}

STATE_NAMES = {
    DraftState.draft: "待核对",
    DraftState.legible: "字迹清楚",
    DraftState.illegible: "看不清",
}


_READ_AGAIN = (UploadStatus.corrections_written,)

ILLEGIBLE_MESSAGE = "老师看不清您填写的更正内容（{labels}），请重新填写后拍照上传。"


def _label(code: str) -> str:
    field = BY_CODE.get(code)
    return field.label if field else code


def illegible_message(codes: list[str]) -> str:
    """What the family reads once the teacher could not read some of its corrections."""
    return ILLEGIBLE_MESSAGE.format(labels="、".join(_label(c) for c in codes))


def draft_read(row: dict[str, Any], readings: Mapping[str, Any] | None) -> CorrectionDraftRead:
    """`readings` is the upload's check report, field by field (`UploadCheck.fields`)."""
    code = row["field_code"]
    reading = (readings or {}).get(code)
    text = reading["text"] if reading else None
    return CorrectionDraftRead(
        id=row["id"],
        student_id=row["student"],
        upload_id=row["upload"],
        class_id=row["school_class"],
        field=code,
        field_label=_label(code),
        printed_read=masking.mask(BY_CODE.get(code), text),
        crop_url=f"/correction-drafts/{row['id']}/crop",
        state=DraftState(row["state"]),
        decided_at=row["decided_at"],
        created_at=row["created_at"],
    )


async def _readings(upload_ids: set[int]) -> dict[int, dict[str, Any]]:
    if not upload_ids:
        return {}
    rows = await UploadCheck.select(UploadCheck.upload, UploadCheck.fields).where(
        UploadCheck.upload.is_in(list(upload_ids))
    )
    return {r["upload"]: json_value(r["fields"]) for r in rows}


async def drafts_of_upload(upload_id: int, readings: dict[str, Any]) -> list[CorrectionDraftRead]:
    rows = (
        await CorrectionDraft.select()
        .where(CorrectionDraft.upload == upload_id)
        .order_by(CorrectionDraft.id)
    )
    return [draft_read(r, readings) for r in rows]


async def list_drafts(
    principal: Principal,
    class_id: int | None,
    state: DraftState | None,
    page: int,
    page_size: int,
) -> Page[CorrectionDraftRead]:
    """Drafts in the caller's scope, oldest first; by class and by state."""
    query = scoped(CorrectionDraft.select(), principal.scope, CorrectionDraft)
    count = scoped(CorrectionDraft.count(), principal.scope, CorrectionDraft)
    where = []
    if class_id is not None:
        where.append(CorrectionDraft.school_class == class_id)
    if state is not None:
        where.append(CorrectionDraft.state == state.value)
    for clause in where:
        query, count = query.where(clause), count.where(clause)
    w = window(page, page_size)
    rows, total = await w.fetch(query.order_by(CorrectionDraft.id), count)
    readings = await _readings({r["upload"] for r in rows})
    items = [draft_read(r, readings.get(r["upload"])) for r in rows]
    return w.page(items, total)


async def decide(
    principal: Principal, actor: Actor, draft_id: int, action: DraftAction
) -> CorrectionDraftRead:
    """Mark one draft legible or illegible. The same answer again changes nothing (a phone
    retrying); another answer to a decided draft is refused. Illegible sends the family
    back to the camera: the upload's status becomes `retake`."""
    require(principal, Action.decide_correction_draft)
    row = await get_scoped(
        actor,
        principal.scope,
        CorrectionDraft,
        CorrectionDraft.id == draft_id,
        "correction_draft",
        draft_id,
    )
    to = ACTION_STATE[action]
    now = datetime.now(UTC)
    async with transaction():
        changed = await DRAFT_STATE.move(
            draft_id,
            to,
            values={
                CorrectionDraft.decided_by: principal.account_id,
                CorrectionDraft.decided_at: now,
            },
        )
        if changed:
            if to is DraftState.illegible:
                # Already `retake` when another of its drafts was illegible first.
                await UPLOAD_STATUS.move(row["upload"], UploadStatus.retake, sources=_READ_AGAIN)
            await audit.record(
                actor,
                action.value,
                "correction_draft",
                draft_id,
                before={"state": row["state"]},
                after={"state": to.value, "upload": row["upload"], "field": row["field_code"]},
            )
    fresh = await CorrectionDraft.select().where(CorrectionDraft.id == draft_id).first()
    assert fresh is not None
    if not changed and fresh["state"] != to.value:
        now_state = STATE_NAMES[DraftState(fresh["state"])]
        raise Conflict(f"这条更正已标记为“{now_state}”，不能再更改", code="draft_already_decided")
    readings = await _readings({fresh["upload"]})
    return draft_read(fresh, readings.get(fresh["upload"]))


async def illegible_fields(upload_ids: list[int]) -> dict[int, list[str]]:
    """Per upload, the fields whose handwriting the teacher could not read."""
    if not upload_ids:
        return {}
    rows = (
        await CorrectionDraft.select(CorrectionDraft.upload, CorrectionDraft.field_code)
        .where(
            CorrectionDraft.upload.is_in(upload_ids)
            & (CorrectionDraft.state == DraftState.illegible.value)
        )
        .order_by(CorrectionDraft.id)
    )
    found: dict[int, list[str]] = {}
    for r in rows:
        found.setdefault(r["upload"], []).append(r["field_code"])
    return found


async def draft_crop(principal: Principal, actor: Actor, storage: Storage, draft_id: int) -> bytes:
    row = await get_scoped(
        actor,
        principal.scope,
        CorrectionDraft,
        CorrectionDraft.id == draft_id,
        "correction_draft",
        draft_id,
    )
    # the crop of a handwritten ID number or phone is that value in full
    await audit.record(actor, "read", "correction_draft", draft_id)
    return await storage.get(row["crop_key"])

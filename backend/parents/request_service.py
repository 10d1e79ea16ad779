"""A parent's change requests for their own children, and a paper correction transcribed
into a request by the class teacher or the registrar (`records.request_service` does the rest:
lists, history, withdrawing, amending and submitting again).

A parent sets the field, the new value, the reason and the evidence, nothing else: a body
that names anything more (the state, the school, who reviews it) is refused, 403
`parent_field_forbidden`, and the attempt audited with the names it tried (never their
values). A child that is not theirs (or not yet confirmed) is 404, audited, like any other
row outside a scope.
"""

from __future__ import annotations

from collections.abc import Sequence

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.scope import get_scoped
from backend.errors import Conflict, Forbidden
from backend.parents.tables import CorrectionDraft, DraftState
from backend.records import request_service
from backend.records.evidence import EvidencePhoto
from backend.records.request_schemas import ChangeRequestDetail
from backend.records.review_tables import RequestSource, RequestState
from backend.records.tables import Student
from backend.storage import Storage

PARENT_FIELDS = {"field_code", "new_value", "reason"}


class ParentFieldForbidden(Forbidden):
    code = "parent_field_forbidden"
    message = (
        "家长只能填写要更正的项目、新值、理由和佐证材料；审核人、状态和学校等由学校和教育部门办理"
    )


class DraftNotLegible(Conflict):
    code = "draft_not_legible"
    message = "只有已核对为“字迹清楚”的更正可以转为更正申请"


class AlreadyTranscribed(Conflict):
    code = "already_transcribed"
    message = "这条更正已转为更正申请"


async def refuse_fields(
    principal: Principal, actor: Actor, student_id: int | None, names: Sequence[str]
) -> None:
    """A parent's body naming anything but what a parent sets: audited, then 403."""
    if not names:
        return
    await audit.record(
        actor,
        "refused_fields",
        "change_request",
        None,
        after={"student": student_id, "fields": sorted(names), "code": ParentFieldForbidden.code},
    )
    raise ParentFieldForbidden(field_errors=dict.fromkeys(names, "家长不能设置此项"), audited=True)


async def submit_as_parent(
    principal: Principal,
    actor: Actor,
    storage: Storage,
    student_id: int,
    *,
    field_code: str,
    new_value: str,
    reason: str,
    photos: Sequence[EvidencePhoto],
    extra: Sequence[str] = (),
) -> ChangeRequestDetail:
    """A parent's typed request for their own child: checked first by the class teacher."""
    require(principal, Action.use_parent_api)
    await refuse_fields(principal, actor, student_id, extra)
    await get_scoped(
        actor, principal.scope, Student, Student.id == student_id, "student", student_id
    )
    request_id = await request_service.submit(
        principal,
        actor,
        storage,
        student_id=student_id,
        field_code=field_code,
        new_value=new_value,
        reason=reason,
        source=RequestSource.parent,
        photos=photos,
    )
    return await request_service.detail(principal, request_id)


async def confirm(
    principal: Principal, actor: Actor, storage: Storage, request_id: int
) -> ChangeRequestDetail:
    """A parent asked to confirm (a reviewer in doubt sent it back) confirms it as it is: it
    goes back to the step that sent it back."""
    row = await request_service.get_request(principal, actor, request_id)
    if row.state is not RequestState.returned:
        raise request_service.NotResubmittable("只有退回给您确认的申请需要确认")
    return await request_service.resubmit(
        principal, actor, storage, request_id, new_value=None, reason=None, photos=()
    )


async def transcribe(
    principal: Principal,
    actor: Actor,
    storage: Storage,
    draft_id: int,
    *,
    new_value: str,
    reason: str,
    photos: Sequence[EvidencePhoto],
) -> ChangeRequestDetail:
    """A legible paper correction typed in as a request (source `transcribed`): the draft
    links to it; a draft is transcribed once."""
    require(principal, Action.transcribe_correction)
    draft = await get_scoped(
        actor,
        principal.scope,
        CorrectionDraft,
        CorrectionDraft.id == draft_id,
        "correction_draft",
        draft_id,
    )
    if draft["state"] != DraftState.legible.value:
        raise DraftNotLegible()
    if draft["change_request"] is not None:
        raise AlreadyTranscribed()

    async def link(request_id: int) -> None:
        linked = (
            await CorrectionDraft.update({CorrectionDraft.change_request: request_id})
            .where((CorrectionDraft.id == draft_id) & CorrectionDraft.change_request.is_null())
            .returning(CorrectionDraft.id)
        )
        if not linked:  # transcribed by someone else a moment ago
            raise AlreadyTranscribed()
        await audit.record(
            actor,
            "transcribe",
            "correction_draft",
            draft_id,
            after={"change_request": request_id, "field": draft["field_code"]},
        )

    request_id = await request_service.submit(
        principal,
        actor,
        storage,
        student_id=draft["student"],
        field_code=draft["field_code"],
        new_value=new_value,
        reason=reason or "家长在纸质确认表上填写的更正",
        source=RequestSource.transcribed,
        photos=photos,
        then=link,
    )
    return await request_service.detail(principal, request_id)

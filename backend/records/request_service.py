"""Change requests as people make and follow them: a registrar's own, a parent's, a paper
correction transcribed (`parents.request_service` adds the last two); listing and reading them
with their history in Chinese; withdrawing one before it is entered; amending and submitting
again after a rejection or a send-back. Creating goes through `change_requests.create_request`
(validation, the corrections switch, round 1); deciding through `reviews.decide`.

Resubmission: after a *rejection* a new round runs the whole chain again (round + 1); after a
*send-back* (for evidence, or to the parent to confirm) the new round starts at the step that
sent it back, so whoever was in doubt decides again and the steps already passed are not
repeated.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from litestar.datastructures import UploadFile

from backend import masking
from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.roles import ROLE_LABEL, Role
from backend.accounts.scope import get_scoped, scoped
from backend.accounts.tables import SchoolClass
from backend.db import transaction
from backend.errors import BadRequest, Conflict, DomainError, Forbidden, InvalidCharacters
from backend.pages import Page, window
from backend.records.campaigns import Switch, require_open
from backend.records.catalog import BY_CODE, Chain
from backend.records.chains import EVIDENCE_REQUIRED, steps_for
from backend.records.change_requests import (
    FROM_PARENTS,
    EvidenceIn,
    EvidenceRequired,
    NewRequest,
    NoChange,
    NotProposable,
    attach_evidence,
    catalog_field,
    clean_value,
    create_request,
)
from backend.records.controls import control_for
from backend.records.evidence import KIND_LABEL, EvidencePhoto, store_photos
from backend.records.holds import lock_unheld, refuse_if_held
from backend.records.request_schemas import (
    EVIDENCE_PARTS,
    ChangeRequestDetail,
    ChangeRequestRead,
    EvidenceParts,
    EvidencePhotoRead,
    RequestStepRead,
)
from backend.records.review_tables import (
    REQUEST_STATE,
    ChangeRequest,
    Evidence,
    EvidenceKind,
    RequestSource,
    RequestState,
    ReviewStep,
    StepKind,
    StepState,
    SubjectKind,
)
from backend.records.reviews import cancel_rest, open_round, place_of, steps_of
from backend.records.service import load_fields
from backend.records.tables import Student
from backend.storage import Storage
from backend.workdays import china_today

STATE_LABEL = {
    RequestState.in_review: "审核中",
    RequestState.returned: "已退回，请确认或补充后重新提交",
    RequestState.rejected: "未通过",
    RequestState.withdrawn: "已撤回",
    RequestState.applied: "已修改",
}
STEP_KIND_LABEL = {
    StepKind.check: "班主任核对",
    StepKind.enter: "学籍管理员录入",
    StepKind.approve: "学校领导审核",
    StepKind.review: "教育行政部门审核",
    StepKind.arbitrate: "教育部仲裁",
    StepKind.settle: "学籍管理员处理班级核对",
    StepKind.start: "转入学校启动转学",
    StepKind.release: "转出学校核办",
    StepKind.review_out: "转出地教育行政部门核办",
    StepKind.review_in: "转入地教育行政部门核办",
}
STEP_STATE_LABEL = {
    StepState.waiting: "待处理",
    StepState.current: "处理中",
    StepState.approved: "通过",
    StepState.rejected: "不通过",
    StepState.sent_back: "退回",
    StepState.cancelled: "已取消",
}
SOURCE_LABEL = {
    RequestSource.parent: "家长提交",
    RequestSource.transcribed: "纸质确认表上的更正",
    RequestSource.registrar: "学籍管理员录入",
    RequestSource.import_file: "导入时发现的变更",
    RequestSource.problem: "问题学籍处理",
}
CHAIN_LABEL = {Chain.ordinary: "学籍数据维护", Chain.key_data: "关键数据变更"}


class NotYourRequest(Forbidden):
    code = "not_your_request"
    message = "只有提交该申请的人可以撤回或修改它"


class AlreadyEntered(Conflict):
    code = "already_entered"
    message = "学校已录入该申请，不能撤回；如需更改请联系班主任"


class NotResubmittable(Conflict):
    code = "not_resubmittable"
    message = "只有被退回或未通过的申请可以修改后重新提交"


class NotWithdrawable(Conflict):
    code = "not_withdrawable"
    message = "该申请已结束，不能撤回"


# ---- reading ---------------------------------------------------------------------------------


def step_read(row: dict[str, Any]) -> RequestStepRead:
    due = row["due_on"]
    return RequestStepRead(
        id=row["id"],
        round=row["round"],
        position=row["position"],
        kind=StepKind(row["kind"]),
        kind_label=STEP_KIND_LABEL[StepKind(row["kind"])],
        role=Role(row["role"]),
        role_label=ROLE_LABEL[Role(row["role"])],
        state=StepState(row["state"]),
        state_label=STEP_STATE_LABEL[StepState(row["state"])],
        due_on=due,
        overdue=due is not None and row["state"] == StepState.current and china_today() > due,
        decided_at=row["decided_at"],
        reason=row["reason"],
    )


def _shown(code: str, value: str) -> tuple[str | None, str | None]:
    field = BY_CODE.get(code)
    display = field.label_of(value) if field else value
    return masking.mask(field, value) or None, masking.mask(field, display) or None


def request_read(
    row: dict[str, Any], principal: Principal, current: dict[str, Any] | None
) -> ChangeRequestRead:
    return ChangeRequestRead(**_read_fields(row, principal, current))


def _read_fields(
    row: dict[str, Any], principal: Principal, current: dict[str, Any] | None
) -> dict[str, Any]:
    code = row["field_code"]
    field = BY_CODE.get(code)
    old, old_display = _shown(code, row["old_value"])
    new, new_display = _shown(code, row["new_value"])
    state = RequestState(row["state"])
    return {
        "id": row["id"],
        "student_id": row["student"],
        "student_name": row.get("student_name") or "",
        "school_id": row["school"],
        "class_id": row["school_class"],
        "field": code,
        "field_label": field.label if field else code,
        "chain": Chain(row["chain"]),
        "chain_label": CHAIN_LABEL[Chain(row["chain"])],
        "old_value": old,
        "new_value": new,
        "old_display": old_display,
        "new_display": new_display,
        "masked": masking.is_masked(field, row["old_value"])
        or masking.is_masked(field, row["new_value"]),
        "reason": row["reason"],
        "source": RequestSource(row["source"]),
        "source_label": SOURCE_LABEL[RequestSource(row["source"])],
        "state": state,
        "state_label": STATE_LABEL[state],
        "round": row["round"],
        "mine": row["author"] == principal.account_id,
        "entered": row["entered_at"] is not None,
        "current_step": step_read(current) if current else None,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "applied_at": row["applied_at"],
    }


def _select() -> Any:
    return ChangeRequest.select(
        *ChangeRequest.all_columns(), ChangeRequest.student.name.as_alias("student_name")
    )


async def _current_steps(ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    rows = await ReviewStep.select().where(
        (ReviewStep.subject_kind == SubjectKind.change_request.value)
        & ReviewStep.subject_id.is_in(list(ids))
        & (ReviewStep.state == StepState.current.value)
    )
    return {r["subject_id"]: r for r in rows}


async def list_requests(
    principal: Principal,
    actor: Actor,
    *,
    state: RequestState | None = None,
    student_id: int | None = None,
    class_id: int | None = None,
    field: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[ChangeRequestRead]:
    """Requests in the caller's scope, the latest changed first. A student or class to filter
    by that lies outside the scope is 404 (audited), as the API's lists answer."""
    if student_id is not None:
        await get_scoped(
            actor, principal.scope, Student, Student.id == student_id, "student", student_id
        )
    if class_id is not None:
        await get_scoped(
            actor,
            principal.scope,
            SchoolClass,
            SchoolClass.id == class_id,
            "school_class",
            class_id,
        )
    query = scoped(_select(), principal.scope, ChangeRequest)
    count = scoped(ChangeRequest.count(), principal.scope, ChangeRequest)
    where: list[Any] = []
    if state is not None:
        where.append(ChangeRequest.state == state.value)
    if student_id is not None:
        where.append(ChangeRequest.student == student_id)
    if class_id is not None:
        where.append(ChangeRequest.school_class == class_id)
    if field is not None:
        where.append(ChangeRequest.field_code == field)
    for clause in where:
        query, count = query.where(clause), count.where(clause)
    query = query.order_by(ChangeRequest.updated_at, ascending=False).order_by(
        ChangeRequest.id, ascending=False
    )
    w = window(page, page_size)
    rows, total = await w.fetch(query, count)
    current = await _current_steps([r["id"] for r in rows])
    return w.page([request_read(r, principal, current.get(r["id"])) for r in rows], total)


def evidence_read(row: dict[str, Any]) -> EvidencePhotoRead:
    kind = EvidenceKind(row["kind"])
    return EvidencePhotoRead(
        id=row["id"],
        kind=kind,
        kind_label=KIND_LABEL[kind],
        content_type=row["content_type"],
        size_bytes=row["size_bytes"],
        created_at=row["created_at"],
        url=f"/evidence/{row['id']}/photo",
    )


async def get_request(principal: Principal, actor: Actor, request_id: int) -> ChangeRequestDetail:
    """One request in scope (404 otherwise, audited) with every step of every round and its
    evidence."""
    row = await get_scoped(
        actor,
        principal.scope,
        ChangeRequest,
        ChangeRequest.id == request_id,
        "change_request",
        request_id,
    )
    return await detail(principal, row["id"])


async def detail(principal: Principal, request_id: int) -> ChangeRequestDetail:
    row = await _select().where(ChangeRequest.id == request_id).first()
    assert row is not None
    steps = await steps_of(SubjectKind.change_request, [request_id])
    current = next((s for s in steps if s["state"] == StepState.current), None)
    evidence = (
        await Evidence.select()
        .where(
            (Evidence.subject_kind == SubjectKind.change_request.value)
            & (Evidence.subject_id == request_id)
        )
        .order_by(Evidence.id)
    )
    return ChangeRequestDetail(
        **_read_fields(row, principal, current),
        steps=[step_read(s) for s in steps],
        evidence=[evidence_read(e) for e in evidence],
    )


# ---- making ----------------------------------------------------------------------------------


def text(value: str, name: str) -> str:
    """A typed value from a multipart body (which the hostile-input check does not read)."""
    if "\x00" in value:
        raise InvalidCharacters(field_errors={name: "含有不允许的控制字符"})
    return value


async def photos_of(parts: EvidenceParts) -> list[EvidencePhoto]:
    photos = []
    for name in EVIDENCE_PARTS:
        files: list[UploadFile] | None = getattr(parts, name)
        for upload in files or []:
            if isinstance(upload, UploadFile):
                photos.append(EvidencePhoto(EvidenceKind(name), await upload.read()))
    return photos


def unknown_fields(form_keys: Sequence[str], allowed: set[str]) -> list[str]:
    return sorted(set(form_keys) - allowed - set(EVIDENCE_PARTS))


def refuse_unknown(names: list[str]) -> None:
    """A staff body naming parts the operation does not take: 400, each named."""
    if names:
        raise BadRequest(
            "提交的数据不符合要求，请检查后重试",
            code="validation_error",
            field_errors=dict.fromkeys(names, "不支持此字段"),
        )


async def _precheck(
    student_id: int,
    field_code: str,
    new_value: str,
    source: RequestSource,
    photos: Sequence[EvidencePhoto],
) -> None:
    """What `create_request` would refuse, refused before any photo is stored."""
    found = catalog_field(field_code)
    clean_value(found, new_value)
    place = await place_of(student_id)
    control = await control_for(place.region_code, found)
    if source in FROM_PARENTS and not control.parents_may_propose:
        raise NotProposable(field_errors={"field_code": NotProposable.message})
    if EVIDENCE_REQUIRED[control.chain] and not any(p.kind is EvidenceKind.id_scan for p in photos):
        raise EvidenceRequired(field_errors={"id_scan": EvidenceRequired.message})
    await require_open(place.region_code, Switch.corrections)
    await refuse_if_held(student_id)


async def _forget(storage: Storage, stored: Sequence[EvidenceIn]) -> None:
    for item in stored:
        await storage.delete(item.storage_key)


async def submit(
    principal: Principal,
    actor: Actor,
    storage: Storage,
    *,
    student_id: int,
    field_code: str,
    new_value: str,
    reason: str,
    source: RequestSource,
    photos: Sequence[EvidencePhoto],
    then: Callable[[int], Awaitable[None]] | None = None,
) -> int:
    """Store the photos and create the request (round 1); `then(request_id)` runs in the same
    transaction. The caller has checked who may make it for this student. Photos of a request
    that was refused are removed again."""
    new_value, reason = text(new_value, "new_value"), text(reason, "reason")
    await _precheck(student_id, field_code, new_value, source, photos)
    stored = await store_photos(storage, student_id, photos)
    try:
        async with transaction():
            request_id = await create_request(
                principal,
                actor,
                NewRequest(student_id, field_code, new_value, reason, source, stored),
            )
            if then is not None:
                await then(request_id)
    except DomainError:
        await _forget(storage, stored)
        raise
    return request_id


async def create_by_registrar(
    principal: Principal,
    actor: Actor,
    storage: Storage,
    *,
    student_id: int,
    field_code: str,
    new_value: str,
    reason: str,
    photos: Sequence[EvidencePhoto],
) -> ChangeRequestDetail:
    require(principal, Action.create_change_request)
    await get_scoped(
        actor, principal.scope, Student, Student.id == student_id, "student", student_id
    )
    request_id = await submit(
        principal,
        actor,
        storage,
        student_id=student_id,
        field_code=field_code,
        new_value=new_value,
        reason=reason,
        source=RequestSource.registrar,
        photos=photos,
    )
    return await detail(principal, request_id)


# ---- withdrawing, amending, submitting again ----------------------------------------------------


async def _own(principal: Principal, actor: Actor, request_id: int) -> dict[str, Any]:
    row = await get_scoped(
        actor,
        principal.scope,
        ChangeRequest,
        ChangeRequest.id == request_id,
        "change_request",
        request_id,
    )
    if row["author"] != principal.account_id:
        raise NotYourRequest()
    return row


async def withdraw(principal: Principal, actor: Actor, request_id: int) -> ChangeRequestDetail:
    """The author takes the request back, until the school has entered it."""
    row = await _own(principal, actor, request_id)
    if row["entered_at"] is not None:
        raise AlreadyEntered()
    if row["state"] not in (RequestState.in_review, RequestState.returned):
        raise NotWithdrawable()
    now = datetime.now(UTC)
    async with transaction():
        moved = await REQUEST_STATE.move(
            request_id,
            RequestState.withdrawn,
            sources={RequestState.in_review, RequestState.returned},
            where=ChangeRequest.entered_at.is_null(),
            values={ChangeRequest.updated_at: now},
        )
        if not moved:  # entered (or decided) a moment ago
            fresh = await ChangeRequest.select().where(ChangeRequest.id == request_id).first()
            if fresh is not None and fresh["entered_at"] is not None:
                raise AlreadyEntered()
            raise NotWithdrawable()
        await cancel_rest(SubjectKind.change_request, request_id)
        await audit.record(
            actor,
            "withdraw",
            "change_request",
            request_id,
            before={"state": row["state"]},
            after={"state": RequestState.withdrawn.value},
        )
    return await detail(principal, request_id)


async def resubmit(
    principal: Principal,
    actor: Actor,
    storage: Storage,
    request_id: int,
    *,
    new_value: str | None,
    reason: str | None,
    photos: Sequence[EvidencePhoto],
) -> ChangeRequestDetail:
    """The author amends a returned or rejected request (any of new value, reason, more
    photos; or nothing, to confirm it as it was) and submits it again: a new round."""
    row = await _own(principal, actor, request_id)
    was = RequestState(row["state"])
    if was not in (RequestState.returned, RequestState.rejected):
        raise NotResubmittable()
    found = catalog_field(row["field_code"])
    value = row["new_value"]
    if new_value is not None:
        value = clean_value(found, text(new_value, "new_value"))
    source = RequestSource(row["source"])
    place = await place_of(row["student"])
    if source not in (RequestSource.problem, RequestSource.import_file):
        await require_open(place.region_code, Switch.corrections)
    chain = Chain(row["chain"])
    specs = list(steps_for(chain, source))
    restart = True
    if was is RequestState.returned:
        sender = (
            await ReviewStep.select(ReviewStep.kind)
            .where(
                (ReviewStep.subject_kind == SubjectKind.change_request.value)
                & (ReviewStep.subject_id == request_id)
                & (ReviewStep.round == row["round"])
                & (ReviewStep.state == StepState.sent_back.value)
            )
            .first()
        )
        kinds = [spec.kind.value for spec in specs]
        if sender is not None and sender["kind"] in kinds:
            specs = specs[kinds.index(sender["kind"]) :]
            restart = False
    if EVIDENCE_REQUIRED[chain] and not any(p.kind is EvidenceKind.id_scan for p in photos):
        has_scan = await Evidence.exists().where(
            (Evidence.subject_kind == SubjectKind.change_request.value)
            & (Evidence.subject_id == request_id)
            & (Evidence.kind == EvidenceKind.id_scan.value)
        )
        if not has_scan:
            raise EvidenceRequired(field_errors={"id_scan": EvidenceRequired.message})
    await refuse_if_held(row["student"])
    stored = await store_photos(storage, row["student"], photos)
    now = datetime.now(UTC)
    round_number = row["round"] + 1
    try:
        async with transaction():
            student = await lock_unheld(row["student"])
            old = load_fields(student["fields"]).get(found.code, "")
            if old == value:
                raise NoChange(field_errors={"new_value": NoChange.message})
            values: dict[Any, Any] = {
                ChangeRequest.round: round_number,
                ChangeRequest.old_value: old,
                ChangeRequest.new_value: value,
                ChangeRequest.updated_at: now,
                ChangeRequest.school: place.school_id,
                ChangeRequest.school_class: place.class_id,
                ChangeRequest.region_code: place.region_code,
            }
            if reason is not None:
                values[ChangeRequest.reason] = text(reason, "reason").strip()
            if restart:
                values[ChangeRequest.entered_at] = None
            moved = await REQUEST_STATE.move(
                request_id, RequestState.in_review, sources={was}, values=values
            )
            if not moved:
                raise NotResubmittable()
            await attach_evidence(principal, place, request_id, stored, now)
            await open_round(
                SubjectKind.change_request,
                request_id,
                round_number,
                specs,
                place,
                author=principal,
                now=now,
            )
            if restart:
                await _mark_entered(request_id, round_number, now)
            await audit.record(
                actor,
                "resubmit",
                "change_request",
                request_id,
                before={"state": was.value, "round": row["round"]},
                after={
                    "state": RequestState.in_review.value,
                    "round": round_number,
                    "changed_value": new_value is not None,
                    "photos": len(stored),
                    "from_step": specs[0].kind.value,
                },
            )
    except DomainError:
        await _forget(storage, stored)
        raise
    return await detail(principal, request_id)


async def _mark_entered(request_id: int, round_number: int, now: datetime) -> None:
    entered = await ReviewStep.exists().where(
        (ReviewStep.subject_kind == SubjectKind.change_request.value)
        & (ReviewStep.subject_id == request_id)
        & (ReviewStep.round == round_number)
        & (ReviewStep.kind == StepKind.enter.value)
        & (ReviewStep.state == StepState.approved.value)
    )
    if entered:
        await ChangeRequest.update({ChangeRequest.entered_at: now}).where(
            ChangeRequest.id == request_id
        )

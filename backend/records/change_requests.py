"""Change requests: one field of one student's record, from the value it had to a new one,
through the review chain its field takes (`records.chains`), applied to the record by the
last approval in the same transaction as that approval and its audit row.

    request_id = await create_request(principal, actor, NewRequest(...))

Every way a request is made (a parent in the app, a teacher or registrar transcribing a
draft, a registrar directly, a re-import changing a key field, a problem record's "change"
action) comes through `create_request`; every decision through `records.reviews.decide`,
whose handler for change requests is `ChangeRequestDecisions` below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from piccolo.columns import Column

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.principal import Principal
from backend.db import transaction
from backend.errors import BadRequest, Conflict, Forbidden, NotFound
from backend.records.campaigns import Switch, require_open
from backend.records.catalog import BY_CODE, Chain, Field
from backend.records.chains import EVIDENCE_REQUIRED, steps_for
from backend.records.controls import control_for
from backend.records.holds import lock_unheld
from backend.records.notices import request_decided
from backend.records.registry_numbers import follow_id_number
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
from backend.records.reviews import Place, handle, open_round, place_of, tell_on_decision
from backend.records.service import ChangeKind, RecordChange, RecordIn, apply_changes, load_fields
from backend.records.tables import Student
from backend.records.validate import InvalidValue, clean


@dataclass(frozen=True, slots=True)
class EvidenceIn:
    """A photo or scan already in storage (same upload rules as form photos)."""

    kind: EvidenceKind
    storage_key: str
    content_type: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class NewRequest:
    student_id: int
    field_code: str
    new_value: object  # as typed: cleaned by the field catalog
    reason: str
    source: RequestSource
    evidence: Sequence[EvidenceIn] = field(default_factory=tuple)
    # Whether the author takes the leading steps that are theirs to decide (a registrar
    # entering their own change). A re-import's request waits for the registrar to attach
    # the ID document and enter it.
    author_takes_own_steps: bool = True
    # Problem records follow their own deadline, not the campaign's corrections switch.
    check_window: bool = True


# A change to one of these may give the record its resident ID number, and with it a G
# registry number in place of its J number (`registry_numbers`).
ID_FIELDS = frozenset({"id_type", "id_number"})


# A parent's own request, or their paper correction transcribed by the school.
FROM_PARENTS = frozenset({RequestSource.parent, RequestSource.transcribed})


class NotProposable(BadRequest):
    code = "field_not_proposable"
    message = "本省规定家长不能申请更正这一项，请联系学校学籍管理员"


class NoChange(BadRequest):
    code = "no_change"
    message = "新值与当前学籍信息相同，无需更正"


class EvidenceRequired(BadRequest):
    code = "evidence_required"
    message = "关键数据变更须上传身份证件照片作为佐证材料"


class OwnRequest(Forbidden):
    code = "own_request"
    message = "不能审核自己提出的变更申请，请由同级其他工作人员审核"


# Steps that judge a request (rather than take it in): never decided by the one who asked.
_JUDGING = frozenset({StepKind.approve.value, StepKind.review.value})


APPROVAL_HELD = "该学生有正在办理的学籍异动（如转学），办结前不能批准这项更正；请在异动办结后再审核"


class RecordChangedSince(Conflict):
    code = "record_changed_since"
    message = "该学生的这项信息在申请提交后已被修改，请驳回后按现值重新提交"


def catalog_field(code: str) -> Field:
    found = BY_CODE.get(code)
    if found is None:
        raise BadRequest(
            "没有这个学籍字段",
            code="unknown_field",
            field_errors={"field_code": "没有这个学籍字段"},
        )
    return found


def clean_value(found: Field, raw: object) -> str:
    try:
        value = clean(found, raw)
    except InvalidValue as exc:
        message = str(exc)
        raise BadRequest(
            message, code="invalid_value", field_errors={"new_value": message}
        ) from None
    return value or ""


async def create_request(principal: Principal, actor: Actor, new: NewRequest) -> int:
    """Validate, store and start the review of one request; its id. Who may make it for which
    student is the caller's business (scope and permission checks come first). None is made
    while a status change is open on the record (409 `record_change_open`, `records.holds`)."""
    found = catalog_field(new.field_code)
    value = clean_value(found, new.new_value)
    place = await place_of(new.student_id)
    # the province's controls over the national catalog's (`records.controls`)
    control = await control_for(place.region_code, found)
    if new.source in FROM_PARENTS and not control.parents_may_propose:
        raise NotProposable(field_errors={"field_code": NotProposable.message})
    chain = control.chain
    needs_document = EVIDENCE_REQUIRED[chain] and new.source is not RequestSource.import_file
    if needs_document and not any(e.kind is EvidenceKind.id_scan for e in new.evidence):
        raise EvidenceRequired(field_errors={"evidence": EvidenceRequired.message})
    if new.check_window:
        await require_open(place.region_code, Switch.corrections)
    now = datetime.now(UTC)
    async with transaction():
        # under the record's row lock: a status change opened at this instant is either seen
        # here (409 `record_change_open`) or opened after this request exists
        student = await lock_unheld(new.student_id)
        old = load_fields(student["fields"]).get(found.code, "")
        if old == value:
            raise NoChange(field_errors={"new_value": NoChange.message})
        rows = await ChangeRequest.insert(
            ChangeRequest(
                student=new.student_id,
                school=place.school_id,
                school_class=place.class_id,
                region_code=place.region_code,
                field_code=found.code,
                chain=chain.value,
                old_value=old,
                new_value=value,
                reason=new.reason.strip(),
                source=new.source.value,
                author=principal.account_id,
                created_at=now,
                updated_at=now,
            )
        ).returning(ChangeRequest.id)
        request_id: int = rows[0]["id"]
        await attach_evidence(principal, place, request_id, new.evidence, now)
        author = principal if new.author_takes_own_steps else None
        await open_round(
            SubjectKind.change_request,
            request_id,
            1,
            steps_for(chain, new.source),
            place,
            author=author,
            now=now,
        )
        await _mark_entered_if_taken(request_id, now)
        await audit.record(
            actor,
            "create",
            "change_request",
            request_id,
            after={
                "student": new.student_id,
                "field": found.code,
                "source": new.source.value,
                "chain": chain.value,
            },
        )
    return request_id


async def attach_evidence(
    principal: Principal,
    place: Place,
    request_id: int,
    evidence: Sequence[EvidenceIn],
    now: datetime,
    subject: SubjectKind = SubjectKind.change_request,
) -> None:
    for item in evidence:
        await Evidence.insert(
            Evidence(
                subject_kind=subject.value,
                subject_id=request_id,
                kind=item.kind.value,
                storage_key=item.storage_key,
                content_type=item.content_type,
                size_bytes=item.size_bytes,
                student=place.student_id,
                school=place.school_id,
                school_class=place.class_id,
                region_code=place.region_code,
                uploaded_by=principal.account_id,
                created_at=now,
            )
        )


async def _mark_entered_if_taken(request_id: int, now: datetime) -> None:
    entered = await ReviewStep.exists().where(
        (ReviewStep.subject_kind == SubjectKind.change_request.value)
        & (ReviewStep.subject_id == request_id)
        & (ReviewStep.kind == StepKind.enter.value)
        & (ReviewStep.state == StepState.approved.value)
    )
    if entered:
        await ChangeRequest.update({ChangeRequest.entered_at: now}).where(
            ChangeRequest.id == request_id
        )


async def _request(request_id: int) -> dict[str, Any]:
    row = await ChangeRequest.select().where(ChangeRequest.id == request_id).first()
    if row is None:
        raise NotFound("更正申请不存在", code="change_request_not_found")
    return dict(row)


async def has_document(request_id: int) -> bool:
    return bool(
        await Evidence.exists().where(
            (Evidence.subject_kind == SubjectKind.change_request.value)
            & (Evidence.subject_id == request_id)
            & (Evidence.kind == EvidenceKind.id_scan.value)
        )
    )


async def apply_request(actor: Actor, request: dict[str, Any], now: datetime) -> None:
    """Write the request's new value into the record (the one write path, audited), only if
    the record still holds the value the request was made against and no status change is
    open on it: then the last approval is refused (409 `record_change_open`) and, its
    transaction rolled back, the step stays current until the change is closed."""
    await lock_unheld(request["student"], message=APPROVAL_HELD)
    student = await Student.select().where(Student.id == request["student"]).first()
    if student is None:
        raise NotFound("学生不存在", code="student_not_found")
    fields = load_fields(student["fields"])
    code = request["field_code"]
    if fields.get(code, "") != request["old_value"]:
        raise RecordChangedSince()
    after = {**fields, code: request["new_value"]}
    if not request["new_value"]:
        after.pop(code, None)
    record = RecordIn(
        student["registry_number"],
        student["school"],
        student["school_class"],
        student["region_code"],
        after,
    )
    change = RecordChange(
        ChangeKind.update,
        record,
        student["id"],
        {code: request["old_value"]},
        {code: request["new_value"]},
        student["id_number"],
    )
    await apply_changes(actor, [change])
    if code in ID_FIELDS:
        await follow_id_number(actor, student["id"], request["id"])
    values: dict[Column | str, Any] = {
        ChangeRequest.applied_at: now,
        ChangeRequest.updated_at: now,
    }
    await REQUEST_STATE.move(
        request["id"], RequestState.applied, sources={RequestState.in_review}, values=values
    )


class ChangeRequestDecisions:
    """What a decision on a change request's step does (inside the decision's transaction)."""

    async def approved(self, step: dict[str, Any], actor: Actor, *, last: bool) -> None:
        request = await _request(step["subject_id"])
        if step["kind"] in _JUDGING and request["author"] == actor.account_id:
            raise OwnRequest()
        now = datetime.now(UTC)
        if step["kind"] == StepKind.enter.value:
            if EVIDENCE_REQUIRED[Chain(request["chain"])] and not await has_document(request["id"]):
                raise EvidenceRequired()
            await ChangeRequest.update(
                {ChangeRequest.entered_at: now, ChangeRequest.updated_at: now}
            ).where(ChangeRequest.id == request["id"])
        if last:
            await apply_request(actor, request, now)

    async def rejected(self, step: dict[str, Any], actor: Actor, reason: str) -> None:
        await _end_round(step["subject_id"], RequestState.rejected)

    async def sent_back(self, step: dict[str, Any], actor: Actor, reason: str) -> None:
        await _end_round(step["subject_id"], RequestState.returned)


async def _end_round(request_id: int, to: RequestState) -> None:
    now = datetime.now(UTC)
    await REQUEST_STATE.move(
        request_id,
        to,
        sources={RequestState.in_review},
        values={ChangeRequest.updated_at: now},
    )


handle(SubjectKind.change_request, ChangeRequestDecisions())
tell_on_decision(SubjectKind.change_request, request_decided)

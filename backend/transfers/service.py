"""Starting, taking up, withdrawing and resubmitting a status change (学籍异动). Deciding goes
through `records.reviews.decide` (`effects.ChangeDecisions` says what a decision means).

- A transfer is started by the registrar of the school the student goes to (`start_transfer`:
  the student looked up by registry number and name, the receiving class chosen); the other
  kinds by the registrar of the student's own school (`start_change`). The starter decides
  the first step at once (`reviews.open_round`).
- A parent applies for their confirmed child on the phone (`apply_as_parent`): a transfer to a
  named school, or another kind except a cancellation. The chain opens with its first step
  current for the school that acts first; that school's registrar chooses the class
  (`choose_class`) and approves the step.
- One open change per student: `Student.open_change` is set by a conditional UPDATE in the
  transaction that opens the chain (`_hold`), and cleared when the change ends.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.roles import Administration
from backend.accounts.scope import get_scoped
from backend.accounts.tables import School, SchoolClass
from backend.config import Settings
from backend.db import transaction
from backend.errors import BadRequest, Conflict, DomainError, Forbidden, NotFound
from backend.records.change_requests import EvidenceIn, attach_evidence
from backend.records.evidence import EvidencePhoto, store_photos
from backend.records.review_tables import ReviewStep, StepKind, StepState, SubjectKind
from backend.records.reviews import Place, cancel_rest, open_round, place_of
from backend.records.tables import Student, StudentStatus
from backend.storage import Storage
from backend.transfers import documents as asked
from backend.transfers import start_limits
from backend.transfers.chains import steps_for
from backend.transfers.repeats import check_repeat
from backend.transfers.tables import (
    CHANGE_STATE,
    ChangeKind,
    ChangeState,
    Span,
    StatusChange,
)
from backend.workdays import china_today

# The statuses a record may be in for a change of each kind to start.
STARTS_FROM: dict[ChangeKind, frozenset[StudentStatus]] = {
    ChangeKind.transfer: frozenset({StudentStatus.enrolled}),
    ChangeKind.suspend: frozenset({StudentStatus.enrolled}),
    ChangeKind.resume: frozenset(
        {StudentStatus.suspended, StudentStatus.left, StudentStatus.abroad}
    ),
    ChangeKind.leave: frozenset({StudentStatus.enrolled}),
    ChangeKind.skip: frozenset({StudentStatus.enrolled}),
    ChangeKind.repeat: frozenset({StudentStatus.enrolled}),
    ChangeKind.abroad: frozenset({StudentStatus.enrolled}),
    ChangeKind.cancel: frozenset(
        {
            StudentStatus.enrolled,
            StudentStatus.suspended,
            StudentStatus.left,
            StudentStatus.abroad,
        }
    ),
}
# Kinds that name a class to go to: chosen by the school that acts first.
WITH_CLASS = frozenset({ChangeKind.transfer, ChangeKind.skip, ChangeKind.repeat})
# A parent may apply for every kind but a cancellation after death (the school enters it).
PARENT_KINDS = frozenset(ChangeKind) - {ChangeKind.cancel}
FIRST_STEPS = frozenset({StepKind.start.value, StepKind.enter.value})


class ChangeAlreadyOpen(Conflict):
    code = "change_already_open"
    message = "该学生已有未办结的学籍异动，请待其办结或撤回后再申请"


class StatusNotAllowed(Conflict):
    code = "status_not_allowed"
    message = "该学生当前的学籍状态不能办理这项异动"


class StudentNotFound(NotFound):
    code = "student_not_found"
    message = "未找到学籍号和姓名都相符的学生，请核对后重试"


class SameSchool(BadRequest):
    code = "same_school"
    message = "该学生已在本校，校内调班不是转学"


class WrongClass(BadRequest):
    code = "wrong_target_class"
    message = "所选班级不符合这项异动的要求"


class ReasonRequired(BadRequest):
    code = "reason_required"
    message = "请填写异动原因"


class NotYourChange(Forbidden):
    code = "not_your_change"
    message = "只有提出该异动申请的人可以撤回或重新提交"


class NotWithdrawable(Conflict):
    code = "not_withdrawable"
    message = "该异动已办结，不能撤回"


class NotResubmittable(Conflict):
    code = "not_resubmittable"
    message = "只有被退回的异动申请可以修改后重新提交"


class NotChoosingNow(Conflict):
    code = "class_not_choosable"
    message = "只有在本校受理该异动的环节才能选择班级"


def span_between(sending: Place, receiving: Place) -> Span:
    """Within one authority (a county, or a city or province for schools it runs directly),
    within one province, or across provinces."""
    if (
        sending.authority_region == receiving.authority_region
        and sending.administration is receiving.administration
    ):
        return Span.county
    if sending.region_code[:2] == receiving.region_code[:2]:
        return Span.province
    return Span.country


async def _school(school_id: int) -> dict[str, Any]:
    row = await School.select().where(School.id == school_id).first()
    if row is None:
        raise NotFound("学校不存在", code="school_not_found")
    return dict(row)


async def _class(class_id: int) -> dict[str, Any]:
    row = await SchoolClass.select().where(SchoolClass.id == class_id).first()
    if row is None:
        raise NotFound("班级不存在", code="class_not_found")
    return dict(row)


async def receiving_place(student: Place, school_id: int, class_id: int | None) -> Place:
    """Where a transfer goes. Until the receiving school chooses the class (a parent's
    application), its steps are filed under the class the student is in now."""
    school = await _school(school_id)
    return Place(
        student.student_id,
        school_id,
        class_id if class_id is not None else student.class_id,
        school["region_code"],
        Administration(school["administered_by"]),
    )


async def check_target_class(kind: ChangeKind, place: Place, class_id: int) -> dict[str, Any]:
    """A skip goes to a higher grade of the same school, a repeat to a lower one."""
    target = await _class(class_id)
    if kind is ChangeKind.transfer:
        return target
    current = await _class(place.class_id)
    higher = target["grade"] > current["grade"]
    lower = target["grade"] < current["grade"]
    if target["school"] != place.school_id or not (
        (kind is ChangeKind.skip and higher) or (kind is ChangeKind.repeat and lower)
    ):
        what = "本校更高年级" if kind is ChangeKind.skip else "本校更低年级"
        raise WrongClass(field_errors={"to_class_id": f"请选择{what}的班级"})
    return target


async def _hold(student_id: int, change_id: int, kind: ChangeKind) -> None:
    """Mark the record as held by the change, only if no other is open and its status allows
    the kind; otherwise the caller's transaction rolls back with the reason."""
    allowed = sorted(status.value for status in STARTS_FROM[kind])
    held = (
        await Student.update({Student.open_change: change_id})
        .where(
            (Student.id == student_id)
            & Student.open_change.is_null()
            & Student.status.is_in(allowed)
        )
        .returning(Student.id)
    )
    if held:
        return
    row = await Student.select(Student.open_change).where(Student.id == student_id).first()
    if row is not None and row["open_change"] is not None:
        raise ChangeAlreadyOpen()
    raise StatusNotAllowed()


async def _open(
    principal: Principal,
    actor: Actor,
    *,
    kind: ChangeKind,
    place: Place,
    to: Place | None,
    span: Span | None,
    reason: str,
    details: Mapping[str, str],
    evidence: Sequence[EvidenceIn] = (),
    takes_first_step: bool,
    to_class_chosen: bool,
) -> int:
    now = datetime.now(UTC)
    async with transaction():
        query = StatusChange.insert(
            StatusChange(
                kind=kind.value,
                student=place.student_id,
                from_school=place.school_id,
                from_class=place.class_id,
                from_region=place.region_code,
                to_school=to.school_id if to else None,
                to_class=to.class_id if to and to_class_chosen else None,
                to_region=to.region_code if to else None,
                span=span.value if span else None,
                state=ChangeState.in_review.value,
                round=1,
                reason=reason,
                details=dict(details),
                applicant=principal.account_id,
                started_by=principal.account_id if takes_first_step else None,
                started_on=china_today(now),
                created_at=now,
                updated_at=now,
            )
        ).returning(StatusChange.id)
        change_id: int = (await query)[0]["id"]
        await _hold(place.student_id, change_id, kind)
        await attach_evidence(
            principal, place, change_id, evidence, now, subject=SubjectKind.status_change
        )
        where = Place(
            place.student_id,
            place.school_id,
            place.class_id,
            place.region_code,
            place.administration,
            receiving=to,
        )
        await open_round(
            SubjectKind.status_change,
            change_id,
            1,
            steps_for(kind, span),
            where,
            author=principal if takes_first_step else None,
            now=now,
        )
        await audit.record(
            actor,
            "create",
            "status_change",
            change_id,
            after={
                "kind": kind.value,
                "student": place.student_id,
                "to_school": to.school_id if to else None,
                "span": span.value if span else None,
                "by_parent": not takes_first_step,
                "evidence": len(evidence),
            },
        )
    return change_id


async def start_transfer(
    principal: Principal,
    actor: Actor,
    *,
    registry_number: str,
    student_name: str,
    to_class_id: int,
    reason: str,
    details: Mapping[str, str],
    redis: Redis,
    settings: Settings,
    documents_checked: Collection[asked.Document] = (),
) -> int:
    """The receiving school's registrar starts a transfer of a student of another school into
    one of its classes; its id. The student is found by registry number and name together (a
    wrong pair answers like no student); every try counts (`start_limits`); the documents its
    province asks for must have been checked (`documents_missing` otherwise)."""
    require(principal, Action.start_status_change)
    await start_limits.take_start_try(redis, settings, principal)
    klass = await get_scoped(
        actor,
        principal.scope,
        SchoolClass,
        SchoolClass.id == to_class_id,
        "school_class",
        to_class_id,
    )
    found = (
        await Student.select(Student.id)
        .where(
            (Student.registry_number == registry_number.strip())
            & (Student.name == student_name.strip())
            & (Student.status != StudentStatus.removed.value)
        )
        .first()
    )
    if found is None:
        raise StudentNotFound(field_errors={"registry_number": StudentNotFound.message})
    place = await place_of(found["id"])
    if place.school_id == klass["school"]:
        raise SameSchool()
    to = await receiving_place(place, klass["school"], to_class_id)
    span = span_between(place, to)
    required = await asked.required_for(
        asked.province_of(to.region_code), ChangeKind.transfer, span
    )
    asked.check_checked(required, documents_checked)
    return await _open(
        principal,
        actor,
        kind=ChangeKind.transfer,
        place=place,
        to=to,
        span=span,
        reason=reason.strip(),
        details=details,
        takes_first_step=True,
        to_class_chosen=True,
    )


async def start_change(
    principal: Principal,
    actor: Actor,
    *,
    kind: ChangeKind,
    student_id: int,
    to_class_id: int | None,
    reason: str,
    details: Mapping[str, str],
    documents_checked: Collection[asked.Document] = (),
) -> int:
    """The registrar of the student's school enters a change of another kind; its id. A
    repeat must be allowed (`repeats`); the documents the province asks for with the kind
    must have been checked."""
    require(principal, Action.start_status_change)
    if kind is ChangeKind.transfer:
        raise BadRequest(
            "转学由转入学校发起：请按学籍号和姓名查找学生",
            code="transfer_started_by_receiving_school",
        )
    await get_scoped(
        actor, principal.scope, Student, Student.id == student_id, "student", student_id
    )
    reason = reason.strip()
    if kind is ChangeKind.cancel and not reason:
        raise ReasonRequired(field_errors={"reason": "注销学籍须说明原因"})
    if kind is ChangeKind.repeat:
        await check_repeat(student_id)
    place = await place_of(student_id)
    required = await asked.required_for(asked.province_of(place.region_code), kind, None)
    asked.check_checked(required, documents_checked)
    if kind in WITH_CLASS:
        if to_class_id is None:
            raise WrongClass(field_errors={"to_class_id": "请选择转入的班级"})
        await check_target_class(kind, place, to_class_id)
    to = None
    if kind in WITH_CLASS and to_class_id is not None:
        to = Place(
            student_id, place.school_id, to_class_id, place.region_code, place.administration
        )
    return await _open(
        principal,
        actor,
        kind=kind,
        place=place,
        to=to,
        span=None,
        reason=reason,
        details=details,
        takes_first_step=True,
        to_class_chosen=True,
    )


async def apply_as_parent(
    principal: Principal,
    actor: Actor,
    storage: Storage,
    *,
    student_id: int,
    kind: ChangeKind,
    to_school_id: int | None,
    reason: str,
    photos: Sequence[EvidencePhoto],
) -> int:
    """A parent applies for their confirmed child; its id. Nothing runs until the school that
    acts first takes it up (its first step is current)."""
    require(principal, Action.apply_for_status_change)
    await get_scoped(
        actor, principal.scope, Student, Student.id == student_id, "student", student_id
    )
    _parents_may_apply_for(kind)
    reason = reason.strip()
    place = await place_of(student_id)
    to: Place | None = None
    span: Span | None = None
    if kind is ChangeKind.transfer:
        if to_school_id is not None and not reason:
            raise ReasonRequired(field_errors={"reason": "请填写转学原因"})
        to, span = await _transfer_target(place, to_school_id)
    if kind is ChangeKind.repeat:
        await check_repeat(student_id)
    required = await asked.required_for(asked.province_of((to or place).region_code), kind, span)
    asked.check_attached(required, {photo.kind for photo in photos})
    stored = await store_photos(storage, student_id, photos)
    try:
        return await _open(
            principal,
            actor,
            kind=kind,
            place=place,
            to=to,
            span=span,
            reason=reason,
            details={},
            evidence=stored,
            takes_first_step=False,
            to_class_chosen=False,
        )
    except DomainError:
        for item in stored:
            await storage.delete(item.storage_key)
        raise


def _parents_may_apply_for(kind: ChangeKind) -> None:
    if kind not in PARENT_KINDS:
        raise BadRequest(
            "注销学籍由学校办理，请联系学校",
            code="kind_not_for_parents",
            field_errors={"kind": "家长不能申请注销学籍"},
        )


async def _transfer_target(place: Place, to_school_id: int | None) -> tuple[Place, Span]:
    """Where a parent's transfer goes, and how far."""
    if to_school_id is None:
        raise BadRequest(
            "请选择转入学校",
            code="to_school_required",
            field_errors={"to_school_id": "请选择转入学校"},
        )
    if to_school_id == place.school_id:
        raise SameSchool()
    to = await receiving_place(place, to_school_id, None)
    return to, span_between(place, to)


async def documents_for_child(
    principal: Principal,
    actor: Actor,
    *,
    student_id: int,
    kind: ChangeKind,
    to_school_id: int | None,
) -> asked.DocumentList:
    """What a parent must attach to apply for `kind` for their child (a transfer: to
    `to_school_id`), before applying: the list of the province that asks."""
    require(principal, Action.apply_for_status_change)
    await get_scoped(
        actor, principal.scope, Student, Student.id == student_id, "student", student_id
    )
    _parents_may_apply_for(kind)
    place = await place_of(student_id)
    to: Place | None = None
    span: Span | None = None
    if kind is ChangeKind.transfer:
        to, span = await _transfer_target(place, to_school_id)
    return await asked.required_for(asked.province_of((to or place).region_code), kind, span)


async def change_in_scope(principal: Principal, actor: Actor, change_id: int) -> dict[str, Any]:
    return await get_scoped(
        actor,
        principal.scope,
        StatusChange,
        StatusChange.id == change_id,
        "status_change",
        change_id,
    )


async def current_step(change_id: int) -> dict[str, Any] | None:
    row = (
        await ReviewStep.select()
        .where(
            (ReviewStep.subject_kind == SubjectKind.status_change.value)
            & (ReviewStep.subject_id == change_id)
            & (ReviewStep.state == StepState.current.value)
        )
        .first()
    )
    return dict(row) if row else None


async def choose_class(principal: Principal, actor: Actor, change_id: int, class_id: int) -> None:
    """The school taking up an application chooses the class the student goes to (a transfer's
    receiving school, the student's school for a skip or repeat), before approving its step."""
    require(principal, Action.start_status_change)
    change = await change_in_scope(principal, actor, change_id)
    kind = ChangeKind(change["kind"])
    step = await current_step(change_id)
    if (
        kind not in WITH_CLASS
        or step is None
        or step["kind"] not in FIRST_STEPS
        or step["seat_school"] != principal.scope.school_id
    ):
        raise NotChoosingNow()
    place = await place_of(change["student"])
    target = await check_target_class(kind, place, class_id)
    wanted_school = change["to_school"] if kind is ChangeKind.transfer else place.school_id
    if target["school"] != wanted_school:
        raise WrongClass(field_errors={"to_class_id": "请选择本校的班级"})
    now = datetime.now(UTC)
    async with transaction():
        await StatusChange.update(
            {
                StatusChange.to_class: class_id,
                StatusChange.to_school: target["school"],
                StatusChange.to_region: target["region_code"],
                StatusChange.updated_at: now,
            }
        ).where(StatusChange.id == change_id)
        if kind is ChangeKind.transfer:
            # the receiving side's steps, filed under the student's class until now
            await ReviewStep.update({ReviewStep.school_class: class_id}).where(
                (ReviewStep.subject_kind == SubjectKind.status_change.value)
                & (ReviewStep.subject_id == change_id)
                & (ReviewStep.school == change["to_school"])
            )
        await audit.record(
            actor,
            "choose_class",
            "status_change",
            change_id,
            before={"to_class": change["to_class"]},
            after={"to_class": class_id},
        )


async def release(student_id: int, change_id: int) -> None:
    """The record accepts changes again (inside the transaction that ended the change)."""
    await Student.update({Student.open_change: None}).where(
        (Student.id == student_id) & (Student.open_change == change_id)
    )


async def _own(principal: Principal, actor: Actor, change_id: int) -> dict[str, Any]:
    change = await change_in_scope(principal, actor, change_id)
    if change["applicant"] != principal.account_id:
        raise NotYourChange()
    return change


async def withdraw(principal: Principal, actor: Actor, change_id: int) -> None:
    """Whoever applied takes the change back while it is open."""
    change = await _own(principal, actor, change_id)
    now = datetime.now(UTC)
    async with transaction():
        moved = await CHANGE_STATE.move(
            change_id,
            ChangeState.withdrawn,
            sources={ChangeState.in_review, ChangeState.returned},
            values={StatusChange.updated_at: now},
        )
        if not moved:
            raise NotWithdrawable()
        await cancel_rest(SubjectKind.status_change, change_id)
        await release(change["student"], change_id)
        await audit.record(
            actor,
            "withdraw",
            "status_change",
            change_id,
            before={"state": change["state"]},
            after={"state": ChangeState.withdrawn.value},
        )


async def resubmit(
    principal: Principal,
    actor: Actor,
    storage: Storage,
    change_id: int,
    *,
    reason: str | None,
    photos: Sequence[EvidencePhoto],
) -> None:
    """Whoever applied amends a change sent back to them (the reason, more documents) and
    submits it again: a new round, from the step that sent it back."""
    change = await _own(principal, actor, change_id)
    if change["state"] != ChangeState.returned.value:
        raise NotResubmittable()
    kind = ChangeKind(change["kind"])
    span = Span(change["span"]) if change["span"] else None
    specs = list(steps_for(kind, span))
    sender = (
        await ReviewStep.select(ReviewStep.kind)
        .where(
            (ReviewStep.subject_kind == SubjectKind.status_change.value)
            & (ReviewStep.subject_id == change_id)
            & (ReviewStep.round == change["round"])
            & (ReviewStep.state == StepState.sent_back.value)
        )
        .first()
    )
    kinds = [spec.kind.value for spec in specs]
    if sender is not None and sender["kind"] in kinds:
        specs = specs[kinds.index(sender["kind"]) :]
    place = await place_of(change["student"])
    to = None
    if change["to_school"] is not None and kind is ChangeKind.transfer:
        to = await receiving_place(place, change["to_school"], change["to_class"])
    where = Place(
        place.student_id,
        place.school_id,
        place.class_id,
        place.region_code,
        place.administration,
        receiving=to,
    )
    stored = await store_photos(storage, change["student"], photos)
    now = datetime.now(UTC)
    round_number = change["round"] + 1
    try:
        async with transaction():
            values: dict[Any, Any] = {
                StatusChange.round: round_number,
                StatusChange.refusal: "",
                StatusChange.updated_at: now,
            }
            if reason is not None:
                values[StatusChange.reason] = reason.strip()
            if not await CHANGE_STATE.move(
                change_id, ChangeState.in_review, sources={ChangeState.returned}, values=values
            ):
                raise NotResubmittable()
            await attach_evidence(
                principal, place, change_id, stored, now, subject=SubjectKind.status_change
            )
            await open_round(
                SubjectKind.status_change,
                change_id,
                round_number,
                specs,
                where,
                author=principal,
                now=now,
            )
            await audit.record(
                actor,
                "resubmit",
                "status_change",
                change_id,
                before={"state": change["state"], "round": change["round"]},
                after={
                    "state": ChangeState.in_review.value,
                    "round": round_number,
                    "photos": len(stored),
                    "from_step": specs[0].kind.value,
                },
            )
    except DomainError:
        for item in stored:
            await storage.delete(item.storage_key)
        raise

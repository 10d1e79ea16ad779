"""Problem records (问题学籍): cases the school must act on, its actions and their review.

A *case* is one (student, kind): from the registry's own checks (`ProblemFlag`, recomputed
whenever a record is written) or from the national system's list (`national_list`). The
school's registrar acts on an open case with one of

- *delete*: the student is not at this school; once approved the record leaves the roll
  (`StudentStatus.removed`), kept for history;
- *corroborate* (佐证): the record is right; evidence is the school-stamped proof of
  enrolment with the household register, or both sides of the ID card, or the household
  registration office's receipt (`EVIDENCE_SETS`);
- *change* (变更): a key-data change request (`change_requests.create_request`, source
  `problem`, outside the corrections window) with the same evidence.

Delete and corroborate are reviewed by the authority administering the school: one step
(`REVIEW`) of `records.reviews`, whose handler is `ProblemActionDecisions` below. A change is
reviewed as the change request it is; the case follows its request (`refresh`). A duplicate
both (all) schools corroborated goes to national arbitration (`ARBITRATION`): a national
account names the school that keeps the record, the others' records are removed.

No action is taken, and no deletion applied, while a status change (a transfer …) is open on
the record: 409 `record_change_open` (`records.holds`); the school it ends at acts.

Cases are brought up to date with the flags and the change requests by `refresh`, called
before every read of cases (lists, counts, one case) and after each action: no hook in the
write paths of records or requests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from piccolo.columns import Column

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.roles import Role, ScopeKind
from backend.accounts.scope import Scope, get_scoped, scope_filter, scoped
from backend.accounts.tables import School
from backend.db import transaction
from backend.errors import BadRequest, Conflict, Forbidden, NotFound
from backend.records import reviews
from backend.records.chains import Seat, StepSpec
from backend.records.change_requests import EvidenceIn, NewRequest, attach_evidence, create_request
from backend.records.holds import lock_unheld, refuse_if_held, unheld
from backend.records.ids import PROBLEM_LABEL, ProblemKind
from backend.records.national_list import NATIONAL_KIND_LABEL
from backend.records.problem_tables import (
    ACTION_STATE,
    CASE_STATE,
    ActionKind,
    ActionState,
    CaseKind,
    CaseSource,
    CaseState,
    ProblemAction,
    ProblemCase,
)
from backend.records.review_tables import (
    EvidenceKind,
    RequestSource,
    RequestState,
    ReviewStep,
    StepKind,
    StepState,
    SubjectKind,
)
from backend.records.service import recompute_flags
from backend.records.tables import STUDENT_STATUS, ProblemFlag, Student, StudentStatus
from backend.workdays import due_date

KIND_LABEL: dict[CaseKind, str] = {
    **{CaseKind(kind.value): label for kind, label in PROBLEM_LABEL.items()},
    **NATIONAL_KIND_LABEL,
    CaseKind.roll_not_here: "班级核对：在籍不在班",
}
LOCAL_KINDS = frozenset(CaseKind(kind.value) for kind in ProblemKind)
# Resolved when only one school still holds the ID; arbitrated when all holders corroborated.
DUPLICATE_KINDS = frozenset({CaseKind.duplicate_id, CaseKind.national_duplicate})

# What the school may do about each kind: two records of one school cannot both be right.
ALL_ACTIONS = frozenset({ActionKind.delete, ActionKind.corroborate, ActionKind.change})
ACTIONS_FOR: dict[CaseKind, frozenset[ActionKind]] = {
    kind: ALL_ACTIONS - {ActionKind.corroborate}
    if kind is CaseKind.duplicate_id_in_school
    else ALL_ACTIONS
    for kind in CaseKind
}
# A record the class roll found no child for (`records.roll`): deleted, or shown to be right
# after all; no key field to change.
ACTIONS_FOR[CaseKind.roll_not_here] = frozenset({ActionKind.delete, ActionKind.corroborate})

# Each is enough on its own (notice 001, 问题学籍处理).
EVIDENCE_SETS: tuple[frozenset[EvidenceKind], ...] = (
    frozenset({EvidenceKind.enrolment_proof, EvidenceKind.household_register}),
    frozenset({EvidenceKind.id_scan}),
    frozenset({EvidenceKind.registration_receipt}),
)

REVIEW: tuple[StepSpec, ...] = (StepSpec(StepKind.review, Seat.authority),)
ARBITRATION: tuple[StepSpec, ...] = (StepSpec(StepKind.arbitrate, Seat.national, Role.sysadmin),)


class EvidenceIncomplete(BadRequest):
    code = "evidence_incomplete"
    message = "佐证材料不全：须上传学校盖章的在校证明和户口簿，或身份证件正反面，或户籍部门回执"


class ActionNotAllowed(BadRequest):
    code = "action_not_allowed"
    message = "这类问题学籍不能这样处理"


class CaseNotOpen(Conflict):
    code = "case_not_open"
    message = "该问题学籍当前不需要处理（正在审核、已佐证、仲裁中或已解决），请刷新后查看"


class NotInArbitration(Conflict):
    code = "case_not_in_arbitration"
    message = "该问题学籍不在教育部仲裁中"


class KeepSchoolRequired(BadRequest):
    code = "keep_school_required"
    message = "仲裁须指定保留学籍的学校（请使用仲裁接口）"


def _now() -> datetime:
    return datetime.now(UTC)


def evidence_complete(kinds: Iterable[EvidenceKind]) -> bool:
    have = frozenset(kinds)
    return any(needed <= have for needed in EVIDENCE_SETS)


# ---------------------------------------------------------------------------------------
# Keeping cases up to date


async def refresh(scope: Scope | None = None) -> None:
    """Bring the cases in `scope` (all, without one) up to date: follow the change requests
    of change actions, open a case for each local flag without one, and resolve the cases
    whose problem is gone (the check passes now, the record left the roll, or only one school
    still holds a duplicated ID)."""
    if scope is not None and scope.reach is not None:
        # A sysadmin also reads the arbitration cases of students it does not hold: refreshed
        # from those students' side they would look gone. Only what its data scope holds.
        scope = dataclasses.replace(scope, reach=None)
    async with transaction():
        await _follow_change_requests(scope)
        await _sync_flags(scope)
        await _resolve_single_holders(scope)


def _in(scope: Scope | None, table: Any) -> Any:
    return None if scope is None else scope_filter(scope, table)


async def _follow_change_requests(scope: Scope | None) -> None:
    query = ProblemAction.select(
        ProblemAction.id,
        ProblemAction.case,
        ProblemAction.change_request.state,
        ProblemAction.change_request.id,
    ).where(
        (ProblemAction.state == ActionState.in_review.value)
        & (ProblemAction.action == ActionKind.change.value)
        & ProblemAction.change_request.is_not_null()
        & (ProblemAction.change_request.state != RequestState.in_review.value)
    )
    where = _in(scope, ProblemAction)
    rows = await (query if where is None else query.where(where))
    now = _now()
    for row in rows:
        state = RequestState(row["change_request.state"])
        if state is RequestState.applied:
            await _end_action(row["id"], ActionState.approved, "")
            await _move_case(row["case"], CaseState.resolved, now)
            continue
        reason = await _last_reason(row["change_request.id"])
        if state is RequestState.returned:
            await _end_action(row["id"], ActionState.sent_back, reason)
            await _move_case(row["case"], CaseState.sent_back, now, reason=reason)
        else:  # rejected, or withdrawn: the school acts again
            await _end_action(row["id"], ActionState.rejected, reason)
            await _move_case(row["case"], CaseState.open, now, reason=reason)
    # A request sent back or rejected that its author amended and got applied after all.
    late = ProblemAction.select(ProblemAction.case).where(
        (ProblemAction.action == ActionKind.change.value)
        & ProblemAction.state.is_in([ActionState.sent_back.value, ActionState.rejected.value])
        & (ProblemAction.change_request.state == RequestState.applied.value)
        & (ProblemAction.case.state != CaseState.resolved.value)
    )
    rows = await (late if where is None else late.where(where))
    await _resolve(sorted({row["case"] for row in rows}), now, cancel=True)


async def _last_reason(request_id: int) -> str:
    row = (
        await ReviewStep.select(ReviewStep.reason)
        .where(
            (ReviewStep.subject_kind == SubjectKind.change_request.value)
            & (ReviewStep.subject_id == request_id)
            & ReviewStep.state.is_in([StepState.rejected.value, StepState.sent_back.value])
        )
        .order_by(ReviewStep.id, ascending=False)
        .first()
    )
    return str(row["reason"]) if row else ""


async def _sync_flags(scope: Scope | None) -> None:
    query = ProblemFlag.select(
        ProblemFlag.student,
        ProblemFlag.kind,
        ProblemFlag.detail,
        ProblemFlag.student.school,
        ProblemFlag.student.school_class,
        ProblemFlag.student.region_code,
        ProblemFlag.student.id_number,
    ).where(ProblemFlag.student.status != StudentStatus.removed.value)
    if scope is not None:
        students = scoped(Student.select(Student.id), scope, Student)
        query = query.where(ProblemFlag.student.is_in(students))
    flags = {(f["student"], f["kind"]): f for f in await query}
    cases_query = ProblemCase.select(
        ProblemCase.id, ProblemCase.student, ProblemCase.kind, ProblemCase.state
    ).where(ProblemCase.source == CaseSource.local.value)
    where = _in(scope, ProblemCase)
    cases = await (cases_query if where is None else cases_query.where(where))
    known = {(c["student"], c["kind"]): c for c in cases}
    now = _now()
    new = [
        ProblemCase(
            student=student,
            school=f["student.school"],
            school_class=f["student.school_class"],
            region_code=f["student.region_code"],
            kind=kind,
            source=CaseSource.local.value,
            detail=f["detail"],
            id_number=f["student.id_number"],
            due_on=due_date(now),
            created_at=now,
            updated_at=now,
        )
        for (student, kind), f in flags.items()
        if (student, kind) not in known
    ]
    if new:
        # Two reads of one scope at once open the case once.
        await ProblemCase.insert(*new).on_conflict(
            target=(ProblemCase.student, ProblemCase.kind), action="DO NOTHING"
        )
    back = [
        c["id"]
        for key, c in known.items()
        if key in flags and c["state"] == CaseState.resolved.value
    ]
    if back:
        await reopen(back, now)
    gone = [
        c["id"]
        for key, c in known.items()
        if key not in flags and c["state"] != CaseState.resolved.value
    ]
    if gone:
        await _resolve(gone, now, cancel=True)


async def reopen(case_ids: list[int], now: datetime, detail: str | None = None) -> None:
    values: dict[Column | str, Any] = {
        ProblemCase.updated_at: now,
        ProblemCase.resolved_at: None,
        ProblemCase.due_on: due_date(now),
    }
    if detail is not None:
        values[ProblemCase.detail] = detail
    await CASE_STATE.move_all(
        CaseState.open,
        ProblemCase.id.is_in(case_ids),
        sources={CaseState.resolved},
        values=values,
    )


async def _resolve(case_ids: Sequence[int], now: datetime, *, cancel: bool = False) -> None:
    """Resolve cases; with `cancel`, end what was still under review for them (the problem
    went away by itself: its review has nothing left to decide)."""
    if not case_ids:
        return
    if cancel:
        pending = await ProblemAction.select(ProblemAction.id).where(
            ProblemAction.case.is_in(list(case_ids))
            & (ProblemAction.state == ActionState.in_review.value)
            & (ProblemAction.action != ActionKind.change.value)
        )
        for action in pending:
            await reviews.cancel_rest(SubjectKind.problem_action, action["id"])
            await _end_action(action["id"], ActionState.rejected, "问题已消除，无需再审核")
    await CASE_STATE.move_all(
        CaseState.resolved,
        ProblemCase.id.is_in(list(case_ids)),
        sources=CASE_STATE.sources(CaseState.resolved),
        values={ProblemCase.updated_at: now, ProblemCase.resolved_at: now},
    )


async def _resolve_single_holders(scope: Scope | None) -> None:
    """A duplicate is resolved when only one school still holds the ID (the other deleted
    the record or changed its ID number)."""
    query = ProblemCase.select(
        ProblemCase.id, ProblemCase.school, ProblemCase.id_number, ProblemCase.student.id_number
    ).where(
        ProblemCase.kind.is_in([k.value for k in DUPLICATE_KINDS])
        & (ProblemCase.state != CaseState.resolved.value)
        & ProblemCase.id_number.is_not_null()
    )
    where = _in(scope, ProblemCase)
    cases = await (query if where is None else query.where(where))
    if not cases:
        return
    numbers = sorted({c["id_number"] for c in cases})
    holders: dict[str, set[int]] = {}
    for row in await Student.select(Student.school, Student.id_number).where(
        Student.id_number.is_in(numbers) & (Student.status != StudentStatus.removed.value)
    ):
        holders.setdefault(row["id_number"], set()).add(row["school"])
    # Another school once held it (its own case names the number): not a lone national entry.
    others: dict[str, set[int]] = {}
    for row in await ProblemCase.select(ProblemCase.school, ProblemCase.id_number).where(
        ProblemCase.id_number.is_in(numbers)
        & ProblemCase.kind.is_in([k.value for k in DUPLICATE_KINDS])
    ):
        others.setdefault(row["id_number"], set()).add(row["school"])
    done = [
        c["id"]
        for c in cases
        if c["student.id_number"] != c["id_number"]  # its own ID number changed
        or (
            holders.get(c["id_number"], set()) <= {c["school"]}
            and len(others.get(c["id_number"], set())) > 1
        )
    ]
    await _resolve(done, _now(), cancel=True)


async def _move_case(
    case_id: int, to: CaseState, now: datetime, *, reason: str | None = None
) -> bool:
    values: dict[Column | str, Any] = {ProblemCase.updated_at: now}
    if reason is not None:
        values[ProblemCase.reason] = reason
    if to is CaseState.resolved:
        values[ProblemCase.resolved_at] = now
    if to in (CaseState.open, CaseState.sent_back):
        values[ProblemCase.due_on] = due_date(now)  # the school's new 10 working days
    return await CASE_STATE.move(case_id, to, values=values)


async def _end_action(action_id: int, to: ActionState, reason: str) -> None:
    await ACTION_STATE.move(
        action_id,
        to,
        sources={ActionState.in_review},
        values={ProblemAction.decided_reason: reason, ProblemAction.updated_at: _now()},
    )


# ---------------------------------------------------------------------------------------
# Removing a record from the roll


async def remove_student(actor: Actor, student_id: int, why: str) -> None:
    """Take the record off the roll (kept for history): its flags go, its other cases are
    resolved, the other holders of its ID number lose their duplicate flags. In the caller's
    transaction."""
    student = await Student.select(Student.id_number).where(Student.id == student_id).first()
    if student is None:
        raise NotFound("学生不存在", code="student_not_found")
    now = _now()
    moved = await STUDENT_STATUS.move(
        student_id,
        StudentStatus.removed,
        sources={StudentStatus.enrolled},
        where=unheld(),
        values={Student.updated_at: now},
    )
    if not moved:
        await refuse_if_held(student_id)  # held: refused; otherwise removed already
        return
    await ProblemFlag.delete().where(ProblemFlag.student == student_id)
    if student["id_number"]:
        await recompute_flags([], [student["id_number"]])
    cases = await ProblemCase.select(ProblemCase.id).where(ProblemCase.student == student_id)
    await _resolve([c["id"] for c in cases], now, cancel=True)
    await audit.record(
        actor,
        "remove",
        "student",
        student_id,
        before={"status": StudentStatus.enrolled.value},
        after={"status": StudentStatus.removed.value, "why": why},
    )


# ---------------------------------------------------------------------------------------
# The school acts


@dataclass(frozen=True, slots=True)
class ActionIn:
    action: ActionKind
    note: str = ""
    evidence: Sequence[EvidenceIn] = field(default_factory=tuple)
    field_code: str | None = None  # change: which key field
    new_value: str | None = None  # change: its new value


async def _case(principal: Principal, actor: Actor, case_id: int) -> dict[str, Any]:
    return await get_scoped(
        actor, principal.scope, ProblemCase, ProblemCase.id == case_id, "problem_case", case_id
    )


async def case_student(principal: Principal, actor: Actor, case_id: int) -> int:
    """The student of a case the caller may act on (before its evidence is stored): 409
    `record_change_open` now rather than after the photos are stored."""
    require(principal, Action.act_on_problem)
    case = await _case(principal, actor, case_id)
    await refuse_if_held(case["student"])
    return int(case["student"])


async def act(principal: Principal, actor: Actor, case_id: int, new: ActionIn) -> int:
    """The registrar's action on an open (or sent back) case; the action's id. Delete and
    corroborate open their review by the administering authority; change makes a key-data
    change request, reviewed as one."""
    require(principal, Action.act_on_problem)
    await refresh(principal.scope)
    case = await _case(principal, actor, case_id)
    if case["state"] not in (CaseState.open.value, CaseState.sent_back.value):
        raise CaseNotOpen()
    kind = CaseKind(case["kind"])
    if new.action not in ACTIONS_FOR[kind]:
        raise ActionNotAllowed(field_errors={"action": ActionNotAllowed.message})
    note = new.note.strip()
    if new.action is ActionKind.delete and not note:
        raise BadRequest(
            "请说明理由", code="note_required", field_errors={"note": "删除学籍须说明理由"}
        )
    if new.action is not ActionKind.delete and not evidence_complete(e.kind for e in new.evidence):
        raise EvidenceIncomplete(field_errors={"evidence": EvidenceIncomplete.message})
    if new.action is ActionKind.change and not (new.field_code and new.new_value is not None):
        raise BadRequest(
            "请填写要变更的字段和新值",
            code="change_required",
            field_errors={"field_code": "变更须指明字段和新值"},
        )
    await refuse_if_held(case["student"])
    now = _now()
    place = await reviews.place_of(case["student"])
    rounds = await ProblemAction.count().where(ProblemAction.case == case_id)
    async with transaction():
        # the record is checked by the school it ends up at, once its status change is done
        await lock_unheld(case["student"])
        if not await CASE_STATE.move(
            case_id,
            CaseState.in_review,
            sources={CaseState.open, CaseState.sent_back},
            values={ProblemCase.updated_at: now, ProblemCase.reason: ""},
        ):
            raise CaseNotOpen()
        request_id: int | None = None
        if new.action is ActionKind.change:
            assert new.field_code is not None
            request_id = await create_request(
                principal,
                actor,
                NewRequest(
                    case["student"],
                    new.field_code,
                    new.new_value,
                    note or f"问题学籍处理：{KIND_LABEL[kind]}",
                    RequestSource.problem,
                    evidence=new.evidence,
                    check_window=False,
                ),
            )
        rows = await ProblemAction.insert(
            ProblemAction(
                case=case_id,
                action=new.action.value,
                note=note,
                change_request=request_id,
                round=rounds + 1,
                student=place.student_id,
                school=place.school_id,
                school_class=place.class_id,
                region_code=place.region_code,
                author=principal.account_id,
                created_at=now,
                updated_at=now,
            )
        ).returning(ProblemAction.id)
        action_id: int = rows[0]["id"]
        if new.action is not ActionKind.change:
            await attach_evidence(
                principal, place, action_id, new.evidence, now, SubjectKind.problem_action
            )
            await reviews.open_round(
                SubjectKind.problem_action,
                action_id,
                rounds + 1,
                REVIEW,
                place,
                author=principal,
                now=now,
            )
        await audit.record(
            actor,
            f"problem_{new.action.value}",
            "problem_case",
            case_id,
            after={
                "action": action_id,
                "kind": kind.value,
                "change_request": request_id,
                "evidence": sorted({e.kind.value for e in new.evidence}),
            },
        )
    return action_id


# ---------------------------------------------------------------------------------------
# Decisions (through `reviews.decide`)


async def _action(action_id: int) -> dict[str, Any]:
    row = await ProblemAction.select().where(ProblemAction.id == action_id).first()
    if row is None:
        raise NotFound("问题学籍处理记录不存在", code="problem_action_not_found")
    return dict(row)


async def _case_row(case_id: int) -> dict[str, Any]:
    row = await ProblemCase.select().where(ProblemCase.id == case_id).first()
    if row is None:
        raise NotFound()
    return dict(row)


class ProblemActionDecisions:
    """What the authority's (or the national arbiter's) decision does, inside its
    transaction."""

    async def approved(self, step: dict[str, Any], actor: Actor, *, last: bool) -> None:
        action = await _action(step["subject_id"])
        now = _now()
        kind = ActionKind(action["action"])
        if kind is ActionKind.arbitrate:
            await _arbitrated(action, actor, now)
            return
        if not last:
            return
        await _end_action(action["id"], ActionState.approved, "")
        if kind is ActionKind.delete:
            await _move_case(action["case"], CaseState.resolved, now)
            await remove_student(actor, action["student"], "问题学籍：删除（经审核）")
        elif kind is ActionKind.corroborate:
            await _move_case(action["case"], CaseState.corroborated, now)
            await _maybe_arbitration(await _case_row(action["case"]), now)

    async def rejected(self, step: dict[str, Any], actor: Actor, reason: str) -> None:
        await self._back(step, reason, ActionState.rejected, CaseState.open)

    async def sent_back(self, step: dict[str, Any], actor: Actor, reason: str) -> None:
        await self._back(step, reason, ActionState.sent_back, CaseState.sent_back)

    async def _back(
        self, step: dict[str, Any], reason: str, action_to: ActionState, case_to: CaseState
    ) -> None:
        action = await _action(step["subject_id"])
        now = _now()
        await _end_action(action["id"], action_to, reason)
        if action["action"] == ActionKind.arbitrate.value:
            # Not arbitrated: every school of the duplicate acts again.
            for case in await _arbitration_group(await _case_row(action["case"])):
                await _move_case(case["id"], CaseState.open, now, reason=reason)
            return
        await _move_case(action["case"], case_to, now, reason=reason)


reviews.handle(SubjectKind.problem_action, ProblemActionDecisions())


async def _holders(id_number: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await Student.select(Student.id, Student.school).where(
        (Student.id_number == id_number) & (Student.status != StudentStatus.removed.value)
    )
    return rows


async def _maybe_arbitration(case: dict[str, Any], now: datetime) -> None:
    """When every school holding a duplicated ID corroborated its record, the duplicate goes
    to national arbitration (教育部仲裁): one step for a national account."""
    if CaseKind(case["kind"]) not in DUPLICATE_KINDS or not case["id_number"]:
        return
    holders = await _holders(case["id_number"])
    if len({h["school"] for h in holders}) < 2:
        return
    cases = await ProblemCase.select().where(
        ProblemCase.student.is_in([h["id"] for h in holders])
        & ProblemCase.kind.is_in([k.value for k in DUPLICATE_KINDS])
        & (ProblemCase.state != CaseState.resolved.value)
    )
    corroborated = {c["student"] for c in cases if c["state"] == CaseState.corroborated.value}
    if not all(h["id"] in corroborated for h in holders):
        return
    first = min(cases, key=lambda c: c["id"])
    await CASE_STATE.move_all(
        CaseState.arbitration,
        ProblemCase.id.is_in([c["id"] for c in cases]),
        sources={CaseState.corroborated},
        values={ProblemCase.updated_at: now},
    )
    place = await reviews.place_of(first["student"])
    rows = await ProblemAction.insert(
        ProblemAction(
            case=first["id"],
            action=ActionKind.arbitrate.value,
            note=f"{len(holders)} 所学校均已佐证，提请教育部仲裁",
            student=place.student_id,
            school=place.school_id,
            school_class=place.class_id,
            region_code=place.region_code,
            created_at=now,
            updated_at=now,
        )
    ).returning(ProblemAction.id)
    await reviews.open_round(SubjectKind.problem_action, rows[0]["id"], 1, ARBITRATION, place)


async def _arbitration_group(case: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await ProblemCase.select().where(
        (ProblemCase.id_number == case["id_number"])
        & (ProblemCase.state == CaseState.arbitration.value)
    )
    return rows


async def _arbitrated(action: dict[str, Any], actor: Actor, now: datetime) -> None:
    keep = action["keep_school"]
    if keep is None:
        raise KeepSchoolRequired(field_errors={"keep_school_id": KeepSchoolRequired.message})
    await _end_action(action["id"], ActionState.approved, "")
    school = await School.select(School.name).where(School.id == keep).first()
    name = school["name"] if school else str(keep)
    for case in await _arbitration_group(await _case_row(action["case"])):
        if case["school"] == keep:
            reason = "教育部仲裁：保留本校学籍"
            await _move_case(case["id"], CaseState.resolved, now, reason=reason)
        else:
            reason = f"教育部仲裁：由{name}保留学籍，本校学籍已删除"
            await _move_case(case["id"], CaseState.resolved, now, reason=reason)
            await remove_student(actor, case["student"], reason)


async def arbitrate(
    principal: Principal, actor: Actor, case_id: int, keep_school_id: int, reason: str
) -> int:
    """A national account decides a duplicate in arbitration: the school that keeps the
    record; the other schools' records are removed. The arbitration step's id."""
    require(principal, Action.arbitrate_problem)
    if principal.reach.kind is not ScopeKind.national:
        raise Forbidden("只有国家级账号可以仲裁重复学籍", code="national_only")
    case = await _case(principal, actor, case_id)
    if case["state"] != CaseState.arbitration.value:
        raise NotInArbitration()
    group = await _arbitration_group(case)
    if keep_school_id not in {c["school"] for c in group}:
        raise BadRequest(
            "保留学籍的学校须是重复学籍所在的学校之一",
            code="invalid_keep_school",
            field_errors={"keep_school_id": "不是该重复学籍所在的学校"},
        )
    step = (
        await ReviewStep.select(ReviewStep.id, ReviewStep.subject_id)
        .where(
            (ReviewStep.subject_kind == SubjectKind.problem_action.value)
            & (ReviewStep.kind == StepKind.arbitrate.value)
            & (ReviewStep.state == StepState.current.value)
            & ReviewStep.subject_id.is_in(
                ProblemAction.select(ProblemAction.id).where(
                    ProblemAction.case.is_in([c["id"] for c in group])
                    & (ProblemAction.action == ActionKind.arbitrate.value)
                )
            )
        )
        .first()
    )
    if step is None:
        raise NotInArbitration()
    async with transaction():
        await ProblemAction.update({ProblemAction.keep_school: keep_school_id}).where(
            ProblemAction.id == step["subject_id"]
        )
        await reviews.decide(principal, actor, step["id"], reviews.Decision.approve, reason)
    step_id: int = step["id"]
    return step_id

"""Review steps: opening a round of a chain (`records.chains`) for a subject, deciding the
current step, and cancelling what is left. What a decision *means* for the subject (a change
applied, a problem resolved) is the subject's handler's business, called inside the same
transaction as the decision: two reviewers deciding the same step at once get one decision
and one 409, never two effects.

    where = await place_of(student_id)
    await open_round(SubjectKind.change_request, request_id, 1, steps, where, author=principal)
    await decide(principal, actor, step_id, Decision.approve, reason="")

Due dates: a step is due 10 working days (`backend.workdays`) after it became current.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from piccolo.columns import Column

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.principal import Principal
from backend.accounts.roles import (
    AUTHORITY_ROLE,
    Administration,
    ScopeKind,
    administering_region,
)
from backend.accounts.scope import get_scoped
from backend.db import transaction
from backend.errors import BadRequest, Conflict, Forbidden, NotFound
from backend.outbox import Outbox
from backend.records import queue_totals
from backend.records.chains import Seat, StepSpec
from backend.records.review_tables import STEP_STATE, ReviewStep, StepState, SubjectKind
from backend.records.tables import Student
from backend.workdays import due_date


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"  # with a reason; the author may amend and submit again
    send_back = "send_back"  # with a reason: for evidence, or to the parent to confirm


DECISION_STATE = {
    Decision.approve: StepState.approved,
    Decision.reject: StepState.rejected,
    Decision.send_back: StepState.sent_back,
}


class StepAlreadyDecided(Conflict):
    code = "step_already_decided"
    message = "该步骤已由他人处理或已不在待办中，请刷新后查看"


class NotYourStep(Forbidden):
    code = "not_your_step"
    message = "该步骤不由您处理"


@dataclass(frozen=True, slots=True)
class Place:
    """Where a student is, and so where each seat of a chain is; for a transfer, also where
    the student goes (`receiving`: the receiving school's and its authority's seats)."""

    student_id: int
    school_id: int
    class_id: int
    region_code: str
    administration: Administration
    receiving: Place | None = None

    @property
    def authority_region(self) -> str:
        return administering_region(self.region_code, self.administration)

    def side(self, seat: Seat) -> Place:
        """The place a seat is on: the receiving side's seats are on `receiving`."""
        if seat in (Seat.receiving_school, Seat.receiving_authority):
            if self.receiving is None:
                raise ValueError(f"a {seat.value} seat needs the receiving place")
            return self.receiving
        return self


async def place_of(student_id: int) -> Place:
    row = (
        await Student.select(
            Student.id,
            Student.school,
            Student.school_class,
            Student.region_code,
            Student.school.administered_by,
        )
        .where(Student.id == student_id)
        .first()
    )
    if row is None:
        raise NotFound("学生不存在", code="student_not_found")
    return Place(
        row["id"],
        row["school"],
        row["school_class"],
        row["region_code"],
        Administration(row["school.administered_by"]),
    )


_SCHOOL_SEATS = (Seat.school, Seat.receiving_school)
_AUTHORITY_SEATS = (Seat.authority, Seat.receiving_authority)


def _seat_columns(spec: StepSpec, place: Place) -> dict[Any, Any]:
    side = place.side(spec.seat)
    return {
        ReviewStep.seat_class: side.class_id if spec.seat is Seat.school_class else None,
        ReviewStep.seat_school: side.school_id if spec.seat in _SCHOOL_SEATS else None,
        ReviewStep.seat_region: side.authority_region if spec.seat in _AUTHORITY_SEATS else None,
    }


def occupies(principal: Principal, step: dict[str, Any]) -> bool:
    """Whether `principal` is who decides `step`: its role, sitting in its seat (a
    sysadmin's national seat is its account's own scope, with or without a support grant)."""
    scope = principal.reach
    if principal.role.value != step["role"]:
        return False
    if step["seat_class"] is not None:
        return bool(scope.class_id == step["seat_class"])
    if step["seat_school"] is not None:
        return bool(scope.school_id == step["seat_school"])
    if step["seat_region"] is not None:
        return scope.kind is ScopeKind.region and scope.region_code == step["seat_region"]
    return scope.kind is ScopeKind.national


def _may_take(principal: Principal | None, spec: StepSpec, place: Place) -> bool:
    if principal is None:
        return False
    row = {"role": spec.role_for(place.side(spec.seat).administration).value}
    row |= {column._meta.name: value for column, value in _seat_columns(spec, place).items()}
    return occupies(principal, row)


async def open_round(
    subject: SubjectKind,
    subject_id: int,
    round_number: int,
    steps: Sequence[StepSpec],
    place: Place,
    *,
    author: Principal | None = None,
    now: datetime | None = None,
) -> int | None:
    """Write the steps of one round, the first current. Leading steps the author is the one
    to decide (a registrar entering their own change) are approved by them at once. The id of
    the current step; None when the author decided every step. Inside the caller's
    transaction."""
    now = now or datetime.now(UTC)
    queue_totals.forget()
    current: int | None = None
    taking = True
    for position, spec in enumerate(steps, start=1):
        # A step is filed where its seat is: the receiving side's steps of a transfer lie in
        # the receiving school's scope, so its staff and authority may read and decide them.
        side = place.side(spec.seat)
        taken = taking and _may_take(author, spec, place)
        taking = taken
        state = StepState.approved if taken else StepState.waiting
        if not taken and current is None:
            state = StepState.current
        values: dict[Any, Any] = {
            ReviewStep.subject_kind: subject.value,
            ReviewStep.subject_id: subject_id,
            ReviewStep.round: round_number,
            ReviewStep.position: position,
            ReviewStep.kind: spec.kind.value,
            ReviewStep.due_days: spec.due_days,
            ReviewStep.role: spec.role_for(side.administration).value,
            ReviewStep.student: place.student_id,
            ReviewStep.school: side.school_id,
            ReviewStep.school_class: side.class_id,
            ReviewStep.region_code: side.region_code,
            ReviewStep.created_at: now,
            **_seat_columns(spec, place),
        }
        if taken:
            assert author is not None
            values |= {
                ReviewStep.became_current_at: now,
                ReviewStep.decided_by: author.account_id,
                ReviewStep.decided_at: now,
            }
        elif state is StepState.current:
            values |= {
                ReviewStep.became_current_at: now,
                ReviewStep.due_on: due_date(now, spec.due_days),
            }
        row = ReviewStep(
            state=state.value, **{column._meta.name: value for column, value in values.items()}
        )
        inserted = await ReviewStep.insert(row).returning(ReviewStep.id)
        if state is StepState.current:
            current = inserted[0]["id"]
    return current


class SubjectHandler(Protocol):
    """What a decision means for a subject; each call runs inside the decision's transaction."""

    async def approved(self, step: dict[str, Any], actor: Actor, *, last: bool) -> None: ...

    async def rejected(self, step: dict[str, Any], actor: Actor, reason: str) -> None: ...

    async def sent_back(self, step: dict[str, Any], actor: Actor, reason: str) -> None: ...


HANDLERS: dict[SubjectKind, SubjectHandler] = {}


def handle(subject: SubjectKind, handler: SubjectHandler) -> None:
    """Register what decisions on `subject`'s steps do (once, in the subject's module)."""
    HANDLERS[subject] = handler


# Who is told of a decision (the step as decided, the outbox, the moment), after its handler,
# inside its transaction: `records.notices.request_decided` for change requests.
DecisionNotice = Callable[[dict[str, Any], Outbox, datetime], Awaitable[None]]
NOTICES: dict[SubjectKind, DecisionNotice] = {}


def tell_on_decision(subject: SubjectKind, notice: DecisionNotice) -> None:
    """Register who is told when one of `subject`'s steps is decided."""
    NOTICES[subject] = notice


async def decide(
    principal: Principal,
    actor: Actor,
    step_id: int,
    decision: Decision,
    reason: str = "",
    *,
    in_bulk: bool = False,
    outbox: Outbox | None = None,
) -> dict[str, Any]:
    """Decide a current step as the one who sits in its seat; the step as decided. A step
    outside the caller's scope is 404 (audited), someone else's 403, one already decided (by
    another reviewer a moment ago, or withdrawn) 409. With `outbox`, whoever the subject
    tells of a decision (`tell_on_decision`) is told in the same transaction."""
    reason = reason.strip()
    if decision is not Decision.approve and not reason:
        raise BadRequest(
            "请填写理由", code="reason_required", field_errors={"reason": "退回或不通过须说明理由"}
        )
    step = await get_scoped(
        actor, principal.scope, ReviewStep, ReviewStep.id == step_id, "review_step", step_id
    )
    if not occupies(principal, step):
        raise NotYourStep()
    handler = HANDLERS[SubjectKind(step["subject_kind"])]
    now = datetime.now(UTC)
    async with transaction():
        decided: dict[Column | str, Any] = {
            ReviewStep.decided_by: principal.account_id,
            ReviewStep.decided_at: now,
            ReviewStep.reason: reason,
        }
        if not await STEP_STATE.move(
            step_id, DECISION_STATE[decision], sources={StepState.current}, values=decided
        ):
            raise StepAlreadyDecided()
        queue_totals.forget()
        step |= {
            "state": DECISION_STATE[decision].value,
            "decided_by": principal.account_id,
            "decided_at": now,
            "reason": reason,
        }
        await audit.record(
            actor,
            f"review_{decision.value}",
            "review_step",
            step_id,
            after={
                "subject": step["subject_kind"],
                "subject_id": step["subject_id"],
                "kind": step["kind"],
                "in_bulk": in_bulk,
            },
        )
        if decision is Decision.approve:
            following = await _make_next_current(step, now)
            await handler.approved(step, actor, last=following is None)
        else:
            await cancel_rest(SubjectKind(step["subject_kind"]), step["subject_id"])
            if decision is Decision.reject:
                await handler.rejected(step, actor, reason)
            else:
                await handler.sent_back(step, actor, reason)
        notice = NOTICES.get(SubjectKind(step["subject_kind"]))
        if outbox is not None and notice is not None:
            await notice(step, outbox, now)
    queue_totals.forget()  # again once committed: a page read meanwhile counted the old queue
    return step


async def _make_next_current(step: dict[str, Any], now: datetime) -> int | None:
    following = (
        await ReviewStep.select(ReviewStep.id, ReviewStep.due_days)
        .where(
            (ReviewStep.subject_kind == step["subject_kind"])
            & (ReviewStep.subject_id == step["subject_id"])
            & (ReviewStep.round == step["round"])
            & (ReviewStep.position == step["position"] + 1)
        )
        .first()
    )
    if following is None:
        return None
    await STEP_STATE.move(
        following["id"],
        StepState.current,
        sources={StepState.waiting},
        values={
            ReviewStep.became_current_at: now,
            ReviewStep.due_on: due_date(now, following["due_days"]),
        },
    )
    step_id: int = following["id"]
    return step_id


async def cancel_rest(subject: SubjectKind, subject_id: int) -> list[int]:
    """Cancel the subject's steps still waiting or current (withdrawn, rejected, sent back)."""
    queue_totals.forget()
    return await STEP_STATE.move_all(
        StepState.cancelled,
        (ReviewStep.subject_kind == subject.value) & (ReviewStep.subject_id == subject_id),
        sources={StepState.waiting, StepState.current},
    )


async def reseat(student_id: int) -> int:
    """After a move, the student's undecided steps are decided where the student is now: the
    new class's teacher, the new school's staff, the authority administering the new school
    (its role too: a county-run school's review becomes the city's when the new school is
    city-run). How many steps changed seat; inside the move's transaction."""
    place = await place_of(student_id)
    queue_totals.forget()
    undecided = (ReviewStep.student == student_id) & ReviewStep.state.is_in(
        [StepState.waiting.value, StepState.current.value]
    )
    moved = 0
    seats: list[tuple[Column, dict[Column | str, Any]]] = [
        (ReviewStep.seat_class, {ReviewStep.seat_class: place.class_id}),
        (ReviewStep.seat_school, {ReviewStep.seat_school: place.school_id}),
        (
            ReviewStep.seat_region,
            {
                ReviewStep.seat_region: place.authority_region,
                ReviewStep.role: AUTHORITY_ROLE[place.administration].value,
            },
        ),
    ]
    for seat, values in seats:
        rows = await (
            ReviewStep.update(values).where(undecided & seat.is_not_null()).returning(ReviewStep.id)
        )
        moved += len(rows)
    return moved


async def steps_of(subject: SubjectKind, subject_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Every step of the subjects, every round, in order: their history."""
    if not subject_ids:
        return []
    rows: list[dict[str, Any]] = (
        await ReviewStep.select()
        .where(
            (ReviewStep.subject_kind == subject.value)
            & ReviewStep.subject_id.is_in(list(subject_ids))
        )
        .order_by(ReviewStep.subject_id, ReviewStep.round, ReviewStep.position)
    )
    return rows

"""Reading status changes as each side sees them: the list of one's scope (the sending side
by the change's own columns, the receiving side as related rows), and one change with every
step in Chinese: which is current, who holds it, its due date, whether it is overdue, the
reason of a refusal. A parent reads their children's the same way (the guardian scope).
Free text (reasons, details) passes the one masking rule (`masking.mask_text`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from backend import masking
from backend.accounts.audit import Actor
from backend.accounts.principal import Principal
from backend.accounts.roles import ROLE_LABEL, Role
from backend.accounts.scope import scoped
from backend.accounts.tables import Region, School
from backend.pages import Page, window
from backend.records.request_service import STEP_KIND_LABEL, STEP_STATE_LABEL, evidence_read
from backend.records.review_tables import (
    Evidence,
    ReviewStep,
    StepKind,
    StepState,
    SubjectKind,
)
from backend.records.reviews import steps_of
from backend.transfers.effects import KIND_LABEL
from backend.transfers.schemas import ChangeStepRead, StatusChangeDetail, StatusChangeRead
from backend.transfers.service import change_in_scope
from backend.transfers.tables import ChangeKind, ChangeState, Span, StatusChange
from backend.workdays import china_today

STATE_LABEL = {
    ChangeState.in_review: "办理中",
    ChangeState.returned: "已退回，请补充后重新提交",
    ChangeState.refused: "未通过",
    ChangeState.withdrawn: "已撤回",
    ChangeState.completed: "已办结",
}
SPAN_LABEL = {Span.county: "县域内转学", Span.province: "省内跨县转学", Span.country: "跨省转学"}


async def _names(steps: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]]) -> Names:
    schools = {s["seat_school"] for s in steps if s["seat_school"]}
    schools |= {r["from_school"] for r in rows} | {r["to_school"] for r in rows if r["to_school"]}
    regions = {s["seat_region"] for s in steps if s["seat_region"]}
    school_names = (
        {
            r["id"]: r["name"]
            for r in await School.select(School.id, School.name).where(
                School.id.is_in(sorted(schools))
            )
        }
        if schools
        else {}
    )
    region_names = (
        {
            r["code"]: r["name"]
            for r in await Region.select(Region.code, Region.name).where(
                Region.code.is_in(sorted(regions))
            )
        }
        if regions
        else {}
    )
    return Names(school_names, region_names)


class Names:
    def __init__(self, schools: dict[int, str], regions: dict[str, str]) -> None:
        self.schools = schools
        self.regions = regions

    def holder(self, step: dict[str, Any]) -> str:
        role = ROLE_LABEL[Role(step["role"])]
        if step["seat_school"] is not None:
            return f"{self.schools.get(step['seat_school'], '')} {role}".strip()
        if step["seat_region"] is not None:
            return f"{self.regions.get(step['seat_region'], step['seat_region'])} {role}"
        return role


def step_read(row: dict[str, Any], names: Names) -> ChangeStepRead:
    due = row["due_on"]
    state = StepState(row["state"])
    return ChangeStepRead(
        id=row["id"],
        round=row["round"],
        position=row["position"],
        kind=StepKind(row["kind"]),
        kind_label=STEP_KIND_LABEL[StepKind(row["kind"])],
        role=Role(row["role"]),
        role_label=ROLE_LABEL[Role(row["role"])],
        holder=names.holder(row),
        state=state,
        state_label=STEP_STATE_LABEL[state],
        due_days=row["due_days"],
        due_on=due,
        overdue=due is not None and state is StepState.current and china_today() > due,
        decided_at=row["decided_at"],
        reason=masking.mask_text(row["reason"]),
    )


def _details(raw: Any) -> dict[str, str]:
    value = json.loads(raw) if isinstance(raw, str) else raw
    return {str(k): masking.mask_text(str(v)) for k, v in (value or {}).items()}


def _fields(
    row: dict[str, Any], principal: Principal, current: ChangeStepRead | None, names: Names
) -> dict[str, Any]:
    kind = ChangeKind(row["kind"])
    state = ChangeState(row["state"])
    span = Span(row["span"]) if row["span"] else None
    return {
        "id": row["id"],
        "kind": kind,
        "kind_label": KIND_LABEL[kind],
        "student_id": row["student"],
        "student_name": row.get("student_name") or "",
        "from_school_id": row["from_school"],
        "from_school_name": names.schools.get(row["from_school"], ""),
        "to_school_id": row["to_school"],
        "to_school_name": names.schools.get(row["to_school"]) if row["to_school"] else None,
        "to_class_id": row["to_class"],
        "span": span,
        "span_label": SPAN_LABEL[span] if span else None,
        "state": state,
        "state_label": STATE_LABEL[state],
        "round": row["round"],
        "reason": masking.mask_text(row["reason"]),
        "details": _details(row["details"]),
        "refusal": masking.mask_text(row["refusal"]),
        "mine": row["applicant"] == principal.account_id,
        "current_step": current,
        "started_on": row["started_on"],
        "completed_at": row["completed_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def _select() -> Any:
    return StatusChange.select(
        *StatusChange.all_columns(), StatusChange.student.name.as_alias("student_name")
    )


async def list_changes(
    principal: Principal,
    *,
    kind: ChangeKind | None = None,
    state: ChangeState | None = None,
    student_id: int | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[StatusChangeRead]:
    """The changes in the caller's scope (each side sees its own), latest changed first."""
    query = scoped(_select(), principal.scope, StatusChange)
    count = scoped(StatusChange.count(), principal.scope, StatusChange)
    where: list[Any] = []
    if kind is not None:
        where.append(StatusChange.kind == kind.value)
    if state is not None:
        where.append(StatusChange.state == state.value)
    if student_id is not None:
        where.append(StatusChange.student == student_id)
    for clause in where:
        query, count = query.where(clause), count.where(clause)
    query = query.order_by(StatusChange.updated_at, ascending=False).order_by(
        StatusChange.id, ascending=False
    )
    w = window(page, page_size)
    rows, total = await w.fetch(query, count)
    ids = [r["id"] for r in rows]
    current = (
        await ReviewStep.select().where(
            (ReviewStep.subject_kind == SubjectKind.status_change.value)
            & ReviewStep.subject_id.is_in(ids)
            & (ReviewStep.state == StepState.current.value)
        )
        if ids
        else []
    )
    names = await _names(current, rows)
    by_change = {s["subject_id"]: step_read(s, names) for s in current}
    return w.page(
        [StatusChangeRead(**_fields(r, principal, by_change.get(r["id"]), names)) for r in rows],
        total,
    )


async def get_change(principal: Principal, actor: Actor, change_id: int) -> StatusChangeDetail:
    """One change in scope (404 otherwise, audited), with every step of every round."""
    await change_in_scope(principal, actor, change_id)
    return await detail(principal, change_id)


async def detail(principal: Principal, change_id: int) -> StatusChangeDetail:
    row = await _select().where(StatusChange.id == change_id).first()
    assert row is not None
    steps = await steps_of(SubjectKind.status_change, [change_id])
    names = await _names(steps, [row])
    reads = [step_read(s, names) for s in steps]
    current = next((s for s in reads if s.state is StepState.current), None)
    evidence = (
        await Evidence.select()
        .where(
            (Evidence.subject_kind == SubjectKind.status_change.value)
            & (Evidence.subject_id == change_id)
        )
        .order_by(Evidence.id)
    )
    return StatusChangeDetail(
        **_fields(row, principal, current, names),
        steps=reads,
        evidence=[evidence_read(e) for e in evidence],
    )

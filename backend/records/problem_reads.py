"""Reads of problem records (问题学籍): lists, one case with its actions and their review,
and counts of open cases per school and region. Each brings the caller's cases up to date
first (`problems.refresh`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from piccolo.query.functions.aggregate import Count

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.roles import ScopeKind
from backend.accounts.scope import Scope, get_scoped, scoped
from backend.accounts.tables import Region, School
from backend.errors import NotFound
from backend.masking import mask_id_number, mask_registry_number
from backend.pages import Page, window
from backend.records import queues, reviews
from backend.records.problem_schemas import ACTION_LABEL
from backend.records.problem_tables import (
    OPEN_STATES,
    ActionKind,
    CaseKind,
    CaseState,
    ProblemAction,
    ProblemCase,
)
from backend.records.problems import KIND_LABEL, refresh
from backend.records.queue_schemas import SubjectSummary
from backend.records.review_tables import Evidence, EvidenceKind, SubjectKind


@dataclass(frozen=True, slots=True)
class CaseFilter:
    kind: CaseKind | None = None
    state: CaseState | None = None
    open_only: bool = False
    school_id: int | None = None
    student_id: int | None = None


_CASE_COLUMNS: tuple[Any, ...] = (
    *ProblemCase.all_columns(),
    ProblemCase.student.name.as_alias("student_name"),
    ProblemCase.student.registry_number.as_alias("registry_number"),
    ProblemCase.student.id_number.as_alias("student_id_number"),
    ProblemCase.school.name.as_alias("school_name"),
)


def case_values(row: dict[str, Any]) -> dict[str, Any]:
    """A case row as its reader sees it: sensitive values masked."""
    return {
        **row,
        "kind_label": KIND_LABEL[CaseKind(row["kind"])],
        "registry_number": mask_registry_number(row["registry_number"]),
        "id_number": mask_id_number(row["student_id_number"]),
    }


async def list_cases(
    principal: Principal, by: CaseFilter, page: int, page_size: int
) -> Page[dict[str, Any]]:
    require(principal, Action.read_problem_cases)
    await refresh(principal.scope)
    where: list[Any] = []
    if by.kind is not None:
        where.append(ProblemCase.kind == by.kind.value)
    if by.state is not None:
        where.append(ProblemCase.state == by.state.value)
    if by.open_only:
        where.append(ProblemCase.state.is_in([s.value for s in OPEN_STATES]))
    if by.school_id is not None:
        where.append(ProblemCase.school == by.school_id)
    if by.student_id is not None:
        where.append(ProblemCase.student == by.student_id)
    query = scoped(ProblemCase.select(*_CASE_COLUMNS), principal.scope, ProblemCase)
    count = scoped(ProblemCase.count(), principal.scope, ProblemCase)
    for clause in where:
        query, count = query.where(clause), count.where(clause)
    query = query.order_by(ProblemCase.due_on).order_by(ProblemCase.id)
    w = window(page, page_size)
    rows, total = await w.fetch(query, count)
    return w.page([case_values(r) for r in rows], total)


async def get_case(principal: Principal, actor: Actor, case_id: int) -> dict[str, Any]:
    """One case in scope with its actions, their evidence and review steps (audited)."""
    require(principal, Action.read_problem_cases)
    await refresh(principal.scope)
    await get_scoped(
        actor, principal.scope, ProblemCase, ProblemCase.id == case_id, "problem_case", case_id
    )
    row = await ProblemCase.select(*_CASE_COLUMNS).where(ProblemCase.id == case_id).first()
    assert row is not None
    await audit.record(actor, "read", "problem_case", case_id)
    actions = (
        await ProblemAction.select().where(ProblemAction.case == case_id).order_by(ProblemAction.id)
    )
    ids = [a["id"] for a in actions]
    evidence: dict[int, list[dict[str, Any]]] = {}
    if ids:
        for e in await Evidence.select(Evidence.id, Evidence.kind, Evidence.subject_id).where(
            (Evidence.subject_kind == SubjectKind.problem_action.value)
            & Evidence.subject_id.is_in(ids)
        ):
            evidence.setdefault(e["subject_id"], []).append(e)
    steps: dict[int, list[dict[str, Any]]] = {}
    for s in await reviews.steps_of(SubjectKind.problem_action, ids):
        steps.setdefault(s["subject_id"], []).append(s)
    requests = [a["change_request"] for a in actions if a["change_request"] is not None]
    for s in await reviews.steps_of(SubjectKind.change_request, requests):
        steps.setdefault(-s["subject_id"], []).append(s)
    for a in actions:
        a["evidence"] = evidence.get(a["id"], [])
        a["steps"] = (
            steps.get(-a["change_request"], [])
            if a["change_request"] is not None
            else steps.get(a["id"], [])
        )
    return {**case_values(row), "actions": actions}


@dataclass
class CountGroup:
    key: str  # a region code, or a school id
    name: str
    by_kind: dict[CaseKind, int] = field(default_factory=dict)


@dataclass
class Counts:
    region_code: str | None
    school_id: int | None
    by_kind: dict[CaseKind, int]
    groups_are: str  # "region" or "school"
    groups: list[CountGroup]


def _child_region(code: str, level_digits: int) -> str:
    return code[:level_digits].ljust(6, "0")


async def counts(
    principal: Principal, actor: Actor, *, region_code: str | None, school_id: int | None
) -> Counts:
    """Open cases (open, in review, sent back, in arbitration) by kind, for the caller's
    scope or a region or school inside it; a region's counts grouped by its child regions
    (a county's by its schools)."""
    require(principal, Action.read_problem_cases)
    scope = principal.scope
    await refresh(scope)
    query = ProblemCase.select(
        ProblemCase.school, ProblemCase.region_code, ProblemCase.kind, Count()
    ).where(ProblemCase.state.is_in([s.value for s in OPEN_STATES]))
    query = scoped(query, scope, ProblemCase)
    if school_id is not None:
        await get_scoped(actor, scope, School, School.id == school_id, "school", school_id)
        query = query.where(ProblemCase.school == school_id)
    elif region_code is not None:
        if scope.kind not in (ScopeKind.region, ScopeKind.national) or not scope.covers_region(
            region_code
        ):
            await audit.record(actor, "access_denied", "region", region_code)
            raise NotFound()
        query = scoped(query, Scope(ScopeKind.region, region_code), ProblemCase)
    elif scope.kind is ScopeKind.region:
        region_code = scope.region_code
    elif scope.kind in (ScopeKind.school, ScopeKind.school_class):
        school_id = scope.school_id
    rows = await query.group_by(ProblemCase.school, ProblemCase.region_code, ProblemCase.kind)
    total: dict[CaseKind, int] = {}
    grouped: dict[str, dict[CaseKind, int]] = {}
    if school_id is not None:
        groups_are = "school"
        digits = 0
    elif region_code is None:
        groups_are, digits = "region", 2  # the nation: by province
    elif region_code.endswith("0000"):
        groups_are, digits = "region", 4  # a province: by city
    elif region_code.endswith("00"):
        groups_are, digits = "region", 6  # a city: by county
    else:
        groups_are, digits = "school", 0  # a county: by school
    for row in rows:
        kind = CaseKind(row["kind"])
        n = int(row["count"])
        total[kind] = total.get(kind, 0) + n
        key = str(row["school"]) if digits == 0 else _child_region(row["region_code"], digits)
        bucket = grouped.setdefault(key, {})
        bucket[kind] = bucket.get(kind, 0) + n
    names: dict[str, str] = {}
    if groups_are == "school" and grouped:
        for s in await School.select(School.id, School.name).where(
            School.id.is_in([int(k) for k in grouped])
        ):
            names[str(s["id"])] = s["name"]
    elif grouped:
        for r in await Region.select(Region.code, Region.name).where(
            Region.code.is_in(list(grouped))
        ):
            names[r["code"]] = r["name"]
    groups = [
        CountGroup(key, names.get(key, key), by_kind) for key, by_kind in sorted(grouped.items())
    ]
    return Counts(region_code, school_id, total, groups_are, groups)


# -- in the reviewers' queues ---------------------------------------------------------------


def _queue_summary(row: dict[str, Any]) -> SubjectSummary | None:
    if row["pa_action"] is None:
        return None
    action = ACTION_LABEL[ActionKind(row["pa_action"])]
    return SubjectSummary(
        title=f"问题学籍「{KIND_LABEL[CaseKind(row['pa_kind'])]}」：{action}",
        field=None,
        source=None,
        reason=row["pa_note"],
        has_document=EvidenceKind.id_scan in queues.evidence_kinds(row["pa_evidence"]),
        evidence=queues.evidence_kinds(row["pa_evidence"]),
        round=int(row["pa_round"]),
    )


queues.summarize(
    SubjectKind.problem_action,
    queues.Summary(
        join="LEFT JOIN problem_action pa ON p.subject_kind = 'problem_action' "
        'AND pa.id = p.subject_id LEFT JOIN problem_case pc ON pc.id = pa."case"',
        columns=lambda: (
            "pa.action AS pa_action, pa.note AS pa_note, pa.round AS pa_round, "
            "pc.kind AS pa_kind, "
            f"(SELECT {queues.evidence_list()} FROM evidence e "
            "WHERE e.subject_kind = 'problem_action' AND e.subject_id = pa.id) AS pa_evidence"
        ),
        read=_queue_summary,
    ),
)

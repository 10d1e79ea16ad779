"""The review queues: "what waits on me" (the current steps whose seat the caller occupies),
its counts for the phone's badge, and a school leader's bulk approval of ordinary changes.

Which steps wait on a caller is `reviews.occupies` written as SQL (`seat_sql`): the step's
role is the caller's and its seat is the caller's class, school, region, or the nation. A
seat lies inside its occupant's scope (steps are seated where their student is, and re-seated
when the student moves), so a queue never lists a step its reader could not decide. One
statement reads a page with its total (indexes:
`migrations/backend_2026_12_01t09_30_00_000000.py`) and, joined to it, what the reviewer
decides on: each kind of subject registers the join and columns that summarise it
(`summarize`), so a reviewer needs no second request and the page no second statement:

    summarize(SubjectKind.problem_action, Summary(join=..., columns=..., read=...))

A kind with no summary registered is listed without one.

What waits on someone beside the review steps (a class-roll mismatch waits on the school's
registrar, and is no review step: `records.roll_waiting`) is listed in the same queue, in the
same order, and counted on the same badge (`list_beside`); for a caller nothing else waits
on, the queue's statement is the steps' alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.roles import ScopeKind
from backend.accounts.scope import in_scope_sql
from backend.db import fetch_rows, is_postgres
from backend.errors import DomainError
from backend.masking import is_masked, mask
from backend.outbox import Outbox
from backend.pages import Page, window
from backend.records import queue_totals
from backend.records.catalog import BY_CODE
from backend.records.chains import CHAINS, CHECK
from backend.records.queue_schemas import (
    BulkItem,
    BulkOutcome,
    BulkResult,
    FieldChange,
    QueueCounts,
    QueueItem,
    RequestStateCount,
    SubjectSummary,
)
from backend.records.review_tables import (
    EvidenceKind,
    RequestSource,
    RequestState,
    StepKind,
    SubjectKind,
)
from backend.records.reviews import Decision, decide
from backend.workdays import add_working_days, china_today, working_days_between


@dataclass(frozen=True, slots=True)
class Summary:
    """How a kind of subject is summarised in the queue, inside the page's statement: a
    `LEFT JOIN` on the page's step `p` (matching `p.subject_kind` and `p.subject_id`), the
    columns it adds (each aliased with a prefix of its own; a function, called per query,
    since the SQL may differ by engine), and how a row with those columns reads as a summary
    (None when the join found nothing)."""

    join: str
    columns: Callable[[], str]
    read: Callable[[dict[str, Any]], SubjectSummary | None]


SUMMARIES: dict[SubjectKind, Summary] = {}

# The kinds of step a school leader may approve many at a time: from the chains' data
# (`StepSpec.in_bulk`), never from the field changed. A key-data review is never among them.
BULK_KINDS: frozenset[StepKind] = frozenset(
    spec.kind for chain in CHAINS.values() for spec in (CHECK, *chain) if spec.in_bulk
)
DUE_SOON_DAYS = 2
_EVIDENCE_KINDS = frozenset(kind.value for kind in EvidenceKind)


def summarize(kind: SubjectKind, summary: Summary) -> None:
    """Register how the queue summarises subjects of `kind` (once, in the subject's module)."""
    SUMMARIES[kind] = summary


@dataclass(frozen=True, slots=True)
class Beside:
    """Something that waits on a caller beside the review steps. `rows(principal)` is a SELECT
    of what of it waits on `principal`, with its arguments, or None when nothing of the kind
    can; its columns, in this order: `id` (NULL: no step), `subject_kind`, `subject_id`,
    `kind`, `role`, `student` (may be NULL), `school`, `school_class`, `became_current_at`,
    `due_on`, `name` (shown when `student` is NULL), `sort_kind` (> 0), `sort_id`."""

    subject_kind: SubjectKind
    step_kind: StepKind
    rows: Callable[[Principal], tuple[str, list[Any]] | None]


BESIDE: dict[SubjectKind, Beside] = {}


def list_beside(beside: Beside) -> None:
    """List a kind of thing in the queues and badges of whoever it waits on (once, in its
    module)."""
    BESIDE[beside.subject_kind] = beside


def _beside(
    principal: Principal,
    subject_kind: SubjectKind | None,
    step_kind: StepKind | None,
    overdue_only: bool,
    today: date,
) -> list[tuple[SubjectKind, str, list[Any]]]:
    """What waits on the caller beside the steps, through the queue's filters: a SELECT (and
    its arguments) per kind."""
    found = []
    for kind, beside in BESIDE.items():
        if subject_kind not in (None, kind) or step_kind not in (None, beside.step_kind):
            continue
        rows = beside.rows(principal)
        if rows is None:
            continue
        sql, args = rows
        if overdue_only:
            sql, args = f"SELECT * FROM ({sql}) b WHERE b.due_on < {{}}", [*args, today]
        found.append((kind, sql, list(args)))
    return found


class NotInBulk(DomainError):
    status = 409
    code = "not_in_bulk"
    message = "关键数据变更须逐条审核，不能批量通过"


def seat_sql(principal: Principal, alias: str) -> tuple[str, list[Any]]:
    """`reviews.occupies` as SQL: the current steps `principal` decides."""
    scope = principal.reach
    where = f"{alias}.state = 'current' AND {alias}.role = {{}}"
    args: list[Any] = [principal.role.value]
    if scope.kind is ScopeKind.school_class:
        where += f" AND {alias}.seat_class = {{}}"
        args.append(scope.class_id)
    elif scope.kind is ScopeKind.school:
        where += f" AND {alias}.seat_school = {{}}"
        args.append(scope.school_id)
    elif scope.kind is ScopeKind.region:
        where += f" AND {alias}.seat_region = {{}}"
        args.append(scope.region_code)
    elif scope.kind is ScopeKind.national:
        where += (
            f" AND {alias}.seat_class IS NULL AND {alias}.seat_school IS NULL"
            f" AND {alias}.seat_region IS NULL"
        )
    else:
        return "1 = 0", []
    # No scope condition beside the seat: a seat lies inside its occupant's scope by
    # construction (`reviews.open_round` seats a step where its student is, `reviews.reseat`
    # follows a move), and `reviews.decide` checks the scope again. Written out, the region
    # range misled PostgreSQL's generic plan for this prepared statement into the
    # `region_code` index and a sort of the whole queue (15 ms a page instead of 3–4 ms).
    return where, args


def _filters(
    alias: str,
    subject_kind: SubjectKind | None,
    step_kind: StepKind | None,
    overdue_only: bool,
    today: date,
) -> tuple[str, list[Any]]:
    where, args = "", list[Any]()
    if subject_kind is not None:
        where += f" AND {alias}.subject_kind = {{}}"
        args.append(subject_kind.value)
    if step_kind is not None:
        where += f" AND {alias}.kind = {{}}"
        args.append(step_kind.value)
    if overdue_only:
        where += f" AND {alias}.due_on < {{}}"
        args.append(today)
    return where, args


@lru_cache(maxsize=4096)
def _days_overdue(due_on: date, today: date) -> int:
    return working_days_between(due_on, today)


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


async def waiting_on(
    principal: Principal,
    *,
    subject_kind: SubjectKind | None = None,
    step_kind: StepKind | None = None,
    overdue_only: bool = False,
    page: int = 1,
    page_size: int = 50,
) -> Page[QueueItem]:
    """The current steps the caller decides, oldest due date first, one page."""
    require(principal, Action.decide_review_step)
    w = window(page, page_size)
    today = china_today()
    seat, seat_args = seat_sql(principal, "rs")
    more, more_args = _filters("rs", subject_kind, step_kind, overdue_only, today)
    count_seat, count_args = seat_sql(principal, "q")
    count_more, count_more_args = _filters("q", subject_kind, step_kind, overdue_only, today)
    # The page is taken from the queue index first, then joined: the joins run for its
    # rows only. Its total is counted in the same statement, unless counted a moment ago.
    seat_key = (seat, tuple(seat_args), more, tuple(more_args))
    known = queue_totals.recall(seat_key)
    count_sql = f"(SELECT COUNT(*) FROM review_step q WHERE {count_seat}{count_more})"
    count_args = [*count_args, *count_more_args]

    def steps(extra: str = "") -> str:
        return f"""SELECT rs.id, rs.subject_kind, rs.subject_id, rs.kind, rs.role, rs.student,
             rs.school, rs.school_class, rs.became_current_at, rs.due_on{extra}
      FROM review_step rs
      WHERE {seat}{more}"""

    page_sql = f"""{steps()}
      ORDER BY rs.due_on, rs.id"""
    page_args = [*seat_args, *more_args]
    student, name, order = "JOIN student s ON s.id = p.student", "s.name", "p.due_on, p.id"
    beside = _beside(principal, subject_kind, step_kind, overdue_only, today)
    if beside:  # one order over the steps and what waits beside them (`list_beside`)
        also = "".join(f"\n      UNION ALL {sql}" for _, sql, _ in beside)
        also_args = [arg for _, _, args in beside for arg in args]
        page_sql = f"""SELECT * FROM (
      {steps(", NULL AS name, 0 AS sort_kind, rs.id AS sort_id")}{also}) u
      ORDER BY u.due_on, u.sort_kind, u.sort_id"""
        page_args += also_args
        count_sql += "".join(f" + (SELECT COUNT(*) FROM ({sql}) bc)" for _, sql, _ in beside)
        count_args += also_args
        student = "LEFT JOIN student s ON s.id = p.student"  # a child without a record
        name, order = "COALESCE(s.name, p.name)", "p.due_on, p.sort_kind, p.sort_id"
    if known is None:
        total_column, total_args = count_sql, count_args
    else:
        total_column, total_args = "NULL", []
    summaries = list(SUMMARIES.items())
    columns = "".join(f",\n       {summary.columns()}" for _, summary in summaries)
    joins = "".join(f"\n{summary.join}" for _, summary in summaries)
    rows = await fetch_rows(
        f"""
SELECT p.id, p.subject_kind, p.subject_id, p.kind, p.role, p.student, p.school,
       p.school_class, p.became_current_at, p.due_on,
       {name} AS student_name, sc.name AS school_name, c.name AS class_name,
       {total_column} AS total{columns}
FROM ({page_sql}
      LIMIT {{}} OFFSET {{}}) p
{student}
JOIN school sc ON sc.id = p.school
JOIN school_class c ON c.id = p.school_class{joins}
ORDER BY {order}""",
        *total_args,
        *page_args,
        w.size,
        w.offset,
    )
    if known is not None:
        total = known
    elif rows:
        total = int(rows[0]["total"])
        queue_totals.keep(seat_key, total)
    else:  # past the last page: its total on its own
        counted = await fetch_rows(f"SELECT {count_sql} AS total", *count_args)
        total = int(counted[0]["total"])
    readers = {kind.value: summary.read for kind, summary in summaries}
    items = []
    for row in rows:
        due = _day(row["due_on"])
        late = today > due
        items.append(
            QueueItem(
                step_id=row["id"],
                subject_kind=row["subject_kind"],
                subject_id=row["subject_id"],
                step_kind=row["kind"],
                role=row["role"],
                student_id=row["student"],
                student_name=row["student_name"],
                school_id=row["school"],
                school_name=row["school_name"],
                class_id=row["school_class"],
                class_name=row["class_name"],
                became_current_at=row["became_current_at"],
                due_on=due,
                overdue=late,
                days_overdue=_days_overdue(due, today) if late else 0,
                in_bulk=row["kind"] in BULK_KINDS,
                summary=_summary(readers, row),
            )
        )
    return w.page(items, total)


def _summary(
    readers: dict[str, Callable[[dict[str, Any]], SubjectSummary | None]], row: dict[str, Any]
) -> SubjectSummary | None:
    read = readers.get(row["subject_kind"])
    return read(row) if read is not None else None


async def counts(principal: Principal) -> QueueCounts:
    """The badge: how many steps wait on the caller (overdue, due soon), and the change
    requests in the caller's scope by state."""
    require(principal, Action.decide_review_step)
    today = china_today()
    soon = add_working_days(today, DUE_SOON_DAYS)
    seat, seat_args = seat_sql(principal, "rs")
    waiting = await fetch_rows(
        f"""
SELECT COUNT(*) AS waiting,
       COALESCE(SUM(CASE WHEN rs.due_on < {{}} THEN 1 ELSE 0 END), 0) AS overdue,
       COALESCE(SUM(CASE WHEN rs.due_on >= {{}} AND rs.due_on <= {{}} THEN 1 ELSE 0 END), 0)
           AS due_soon
FROM review_step rs WHERE {seat}""",
        today,
        today,
        soon,
        *seat_args,
    )
    inside, inside_args = in_scope_sql(principal.scope, "cr")
    by_state = await fetch_rows(
        f"SELECT cr.state, COUNT(*) AS n FROM change_request cr WHERE {inside} GROUP BY cr.state",
        *inside_args,
    )
    found = {row["state"]: int(row["n"]) for row in by_state}
    row = waiting[0]
    total = [int(row["waiting"]), int(row["overdue"]), int(row["due_soon"])]
    beside: dict[SubjectKind, int] = {}
    for kind, sql, args in _beside(principal, None, None, False, today):
        also = await fetch_rows(
            f"""
SELECT COUNT(*) AS waiting,
       COALESCE(SUM(CASE WHEN b.due_on < {{}} THEN 1 ELSE 0 END), 0) AS overdue,
       COALESCE(SUM(CASE WHEN b.due_on >= {{}} AND b.due_on <= {{}} THEN 1 ELSE 0 END), 0)
           AS due_soon
FROM ({sql}) b""",
            today,
            today,
            soon,
            *args,
        )
        beside[kind] = int(also[0]["waiting"])
        total = [
            t + int(also[0][c])
            for t, c in zip(total, ("waiting", "overdue", "due_soon"), strict=True)
        ]
    return QueueCounts(
        waiting=total[0],
        overdue=total[1],
        due_soon=total[2],
        requests=[RequestStateCount(state, found.get(state.value, 0)) for state in RequestState],
        roll_entries=beside.get(SubjectKind.roll_entry, 0),
    )


async def approve_in_bulk(
    principal: Principal, actor: Actor, step_ids: Sequence[int], outbox: Outbox | None = None
) -> BulkResult:
    """Approve each step as `reviews.decide` does, each in its own transaction, so one refusal
    undoes nothing else; every decision audited (`in_bulk`). A step of a kind that is never
    approved in bulk (a key-data review) is refused `not_in_bulk` without being decided."""
    require(principal, Action.approve_in_bulk)
    items: list[BulkItem] = []
    seen: set[int] = set()
    for step_id in step_ids:
        if step_id in seen:
            continue
        seen.add(step_id)
        try:
            await _approve_one(principal, actor, step_id, outbox)
        except DomainError as refused:
            if refused.status == 403:  # as every refusal is (backend/refusals.py)
                await audit.record(
                    actor, "forbidden", "review_step", step_id, after={"code": refused.code}
                )
            items.append(BulkItem(step_id, BulkOutcome.refused, refused.code, refused.message))
        else:
            items.append(BulkItem(step_id, BulkOutcome.approved))
    approved = sum(1 for item in items if item.outcome is BulkOutcome.approved)
    return BulkResult(items, approved, len(items) - approved)


async def _approve_one(
    principal: Principal, actor: Actor, step_id: int, outbox: Outbox | None
) -> None:
    inside, inside_args = in_scope_sql(principal.scope, "rs")
    rows = await fetch_rows(
        f"SELECT rs.kind FROM review_step rs WHERE rs.id = {{}} AND {inside}",
        step_id,
        *inside_args,
    )
    if rows and rows[0]["kind"] not in BULK_KINDS:
        raise NotInBulk()
    # Outside the scope (or no such step): decide answers 404 and audits the attempt.
    await decide(principal, actor, step_id, Decision.approve, in_bulk=True, outbox=outbox)


# -- change requests ------------------------------------------------------------------------


def change_request_summary(row: dict[str, Any]) -> SubjectSummary | None:
    code = row["cr_field_code"]
    if code is None:
        return None
    kinds = evidence_kinds(row["cr_evidence"])
    field = BY_CODE.get(code)
    label = field.label if field is not None else code
    old, new = row["cr_old_value"], row["cr_new_value"]
    return SubjectSummary(
        title=f"更正「{label}」",
        field=FieldChange(
            code=code,
            label=label,
            old_value=mask(field, old),
            new_value=mask(field, new),
            old_text=mask(field, field.label_of(old) if field else old),
            new_text=mask(field, field.label_of(new) if field else new),
            masked=is_masked(field, old) or is_masked(field, new),
        ),
        source=RequestSource(row["cr_source"]),
        reason=row["cr_reason"],
        has_document=EvidenceKind.id_scan in kinds,
        evidence=kinds,
        round=int(row["cr_round"]),
    )


def evidence_list() -> str:
    if is_postgres():
        # not DISTINCT: PostgreSQL sets up a sort per row for it (≈ 0.1 ms each); the few
        # repeats are dropped in Python
        return "string_agg(e.kind, ',')"
    return "group_concat(e.kind)"


def evidence_kinds(raw: Any) -> list[EvidenceKind]:
    """The kinds in an aggregated list ("id_scan,other,id_scan"), each once, in the enum's
    order. A page repeats the same few lists: they are read once each."""
    return list(_evidence_kinds(str(raw) if raw else ""))


@lru_cache(maxsize=256)
def _evidence_kinds(raw: str) -> tuple[EvidenceKind, ...]:
    if not raw:
        return ()
    found = {EvidenceKind(kind) for kind in raw.split(",") if kind in _EVIDENCE_KINDS}
    return tuple(kind for kind in EvidenceKind if kind in found)


summarize(
    SubjectKind.change_request,
    Summary(
        join="LEFT JOIN change_request cr ON p.subject_kind = 'change_request' "
        "AND cr.id = p.subject_id",
        columns=lambda: (
            "cr.field_code AS cr_field_code, cr.old_value AS cr_old_value, "
            "cr.new_value AS cr_new_value, cr.source AS cr_source, cr.reason AS cr_reason, "
            f"cr.round AS cr_round, (SELECT {evidence_list()} FROM evidence e "
            "WHERE e.subject_kind = 'change_request' AND e.subject_id = cr.id) AS cr_evidence"
        ),
        read=change_request_summary,
    ),
)

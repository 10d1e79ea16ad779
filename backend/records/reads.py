"""Scoped reads of student records, masked; an audited reveal of one sensitive value."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from piccolo.columns.combination import WhereRaw

from backend import masking
from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, may, refusal, require
from backend.accounts.principal import Principal
from backend.accounts.roles import STAFF_ROLES
from backend.accounts.scope import Scope, get_scoped, in_scope_sql, scoped
from backend.db import fetch_rows, is_postgres
from backend.errors import BadRequest, NotFound
from backend.masking import mask_id_number, mask_registry_number
from backend.pages import Page, window
from backend.records import controls, proofs
from backend.records.catalog import BY_CODE, FIELDS, FieldType
from backend.records.ids import PROBLEM_LABEL, ProblemKind, normalise_id_number
from backend.records.review_tables import ChangeRequest, RequestState
from backend.records.schemas import (
    STATUS_LABEL,
    FieldValue,
    MissingProof,
    PendingChange,
    Problem,
    StudentDetail,
    StudentSummary,
)
from backend.records.service import load_fields
from backend.records.tables import ProblemFlag, Student, StudentStatus

LIKE_ESCAPE = str.maketrans({"%": r"\%", "_": r"\_", "\\": r"\\"})


PHONE_FIELDS = tuple(f.code for f in FIELDS if f.type is FieldType.phone)


async def printed_in_full(actor: Actor, entity: str, entity_id: object) -> None:
    """A printed form (a PNG, a class's PDF) shows every value in full, as a reveal does: the
    caller was allowed `Action.read_printed_form` before it was served, and this audits it."""
    await audit.record(actor, "read", entity, entity_id)


class IdentifierKind(StrEnum):
    registry_number = "registry_number"
    id_number = "id_number"
    phone = "phone"


_ID_NUMBER = re.compile(r"^(?:\d{17}[\dX]|\d{15})$")


def identifier_kind(q: str) -> IdentifierKind | None:
    """Whether a search term is (or tries to be) an identifier rather than a name: anything
    with 6 or more digits (no name has them) — a G/J registry number, a resident ID number,
    another document's number (letters and digits), or digits only: a phone (or part of
    one, or of anything else)."""
    compact = normalise_id_number(q)
    if sum(c.isdigit() for c in compact) < 6:
        return None
    if compact[0] in "GJ":
        return IdentifierKind.registry_number
    if _ID_NUMBER.match(compact) or not compact.isdigit():
        return IdentifierKind.id_number
    return IdentifierKind.phone


def _phone_is(phone: str) -> Any:
    """Any of the record's phones (the child's, both guardians') equals `phone`."""
    if is_postgres():
        sql = " OR ".join(f"fields->>'{code}' = {{}}" for code in PHONE_FIELDS)
    else:
        sql = " OR ".join(f"json_extract(fields, '$.{code}') = {{}}" for code in PHONE_FIELDS)
    return WhereRaw(f"({sql})", *([phone] * len(PHONE_FIELDS)))


def _identifier_clause(kind: IdentifierKind, q: str) -> Any:
    compact = normalise_id_number(q)
    if kind is IdentifierKind.registry_number:
        return Student.registry_number == compact
    if kind is IdentifierKind.id_number:
        return Student.id_number == compact
    # digits only: a phone, or the number of a document that has no letters
    return _phone_is(compact) | (Student.id_number == compact)


async def _problems_of(ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    if ids:
        for row in await ProblemFlag.select().where(ProblemFlag.student.is_in(ids)):
            found.setdefault(row["student"], []).append(row)
    return found


def _summary(row: dict[str, Any], problems: list[dict[str, Any]]) -> StudentSummary:
    values = load_fields(row["fields"])
    return StudentSummary(
        id=row["id"],
        registry_number=mask_registry_number(row["registry_number"]),
        name=row["name"],
        sex=BY_CODE["sex"].label_of(values.get("sex")) or None,
        birth_date=values.get("birth_date"),
        id_number=mask_id_number(row["id_number"]),
        school_id=row["school"],
        class_id=row["school_class"],
        status=row["status"],
        problems=sorted({p["kind"] for p in problems}),
        status_label=STATUS_LABEL[StudentStatus(row["status"])],
        change_open=row["open_change"] is not None,
    )


async def list_students(
    principal: Principal,
    actor: Actor,
    *,
    q: str | None = None,
    class_id: int | None = None,
    school_id: int | None = None,
    status: str | None = None,
    problem: ProblemKind | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[StudentSummary]:
    """Students in scope. A search by name is open to all staff; a search by an identifier
    (registry number, ID number, phone) only to those who may reveal, and audited: anyone else
    is refused whether or not it would match, so no answer confirms a guessed number."""
    scope = principal.scope
    where: list[Any] = []
    kind: IdentifierKind | None = None
    if q:
        q = q.strip()
        kind = identifier_kind(q)
        if kind is not None and not may(principal, Action.search_by_identifier):
            await audit.record(actor, "search_denied", "student", after={"by": kind.value})
            raise refusal(Action.search_by_identifier, audited=True)
        if kind is not None:
            where.append(_identifier_clause(kind, q))
        else:
            where.append(Student.name.ilike(f"%{q.translate(LIKE_ESCAPE)}%"))
    if class_id is not None:
        where.append(Student.school_class == class_id)
    if school_id is not None:
        where.append(Student.school == school_id)
    if status is not None:
        where.append(Student.status == status)
    else:  # the roll: a record removed from it is read only when asked for by its status
        where.append(Student.status != StudentStatus.removed.value)
    if problem is not None:
        where.append(
            Student.id.is_in(
                ProblemFlag.select(ProblemFlag.student).where(ProblemFlag.kind == problem.value)
            )
        )
    query = scoped(Student.select(), scope, Student)
    query = query.order_by(Student.school_class).order_by(Student.name)
    count = scoped(Student.count(), scope, Student)
    for clause in where:
        query, count = query.where(clause), count.where(clause)
    w = window(page, page_size)
    rows, total = await w.fetch(query, count)
    if kind is not None:
        await audit.record(
            actor,
            "search",
            "student",
            after={"by": kind.value, "found": [r["id"] for r in rows], "total": total},
        )
    problems = await _problems_of([r["id"] for r in rows])
    items = [_summary(r, problems.get(r["id"], [])) for r in rows]
    return w.page(items, total)


_STUDENT_SQL = """
SELECT s.id, s.registry_number, s.school, s.school_class, s.status, s.fields, s.updated_at,
       s.region_code, s.open_change,
       p.id AS problem_id, p.kind AS problem_kind, p.detail AS problem_detail,
       EXISTS (SELECT 1 FROM change_request r WHERE r.student = s.id
               AND r.state IN ('in_review', 'returned')) AS has_pending
FROM student s LEFT JOIN problem_flag p ON p.student = s.id
WHERE s.id = {{}} AND {scope}
"""
STUDENT_ORDER = ("problem_id",)


def student_sql(scope: Scope) -> tuple[str, tuple[Any, ...]]:
    """The query of one record in `scope` and, after the student id, its arguments: a row
    per problem flag (in `STUDENT_ORDER`), or one."""
    scope_sql, scope_args = in_scope_sql(scope, "s", student="id")
    return _STUDENT_SQL.format(scope=scope_sql), scope_args


async def get_student(principal: Principal, actor: Actor, student_id: int) -> StudentDetail:
    """One record in scope, masked, with its problems: one query (a parent's read is the
    bulk of the traffic). Staff reads are audited."""
    sql, scope_args = student_sql(principal.scope)
    rows = await fetch_rows(f"{sql} ORDER BY {', '.join(STUDENT_ORDER)}", student_id, *scope_args)
    return await student_detail(principal, actor, student_id, rows)


async def student_detail(
    principal: Principal, actor: Actor, student_id: int, rows: Sequence[Mapping[str, Any]]
) -> StudentDetail:
    """`get_student` from the rows of `student_sql(principal.scope)`."""
    if not rows:
        # 404 either way; `get_scoped` audits the attempt when the record exists elsewhere.
        await get_scoped(
            actor, principal.scope, Student, Student.id == student_id, "student", student_id
        )
        raise NotFound()
    row = rows[0]
    if principal.role in STAFF_ROLES:
        await audit.record(actor, "read", "student", student_id)
    values = load_fields(row["fields"])
    pending = await pending_changes(student_id) if row["has_pending"] else {}
    # key as the record's province controls it (a province may make more fields key)
    controlled = await controls.controls_of(controls.province_of(row["region_code"]))
    fields = [
        FieldValue(
            field=f.code,
            field_label=f.label,
            value=masking.mask(f, values.get(f.code)),
            display=masking.mask(f, f.label_of(values.get(f.code))) or None,
            key=controlled[f.code].key,
            masked=masking.is_masked(f, values.get(f.code)),
            pending=pending.get(f.code),
        )
        for f in FIELDS
    ]
    problems = [
        Problem(
            r["problem_kind"], PROBLEM_LABEL[ProblemKind(r["problem_kind"])], r["problem_detail"]
        )
        for r in rows
        if r["problem_kind"] is not None
    ]
    missing = await proofs.missing_for(student_id, values, row["registry_number"])
    return StudentDetail(
        id=row["id"],
        registry_number=mask_registry_number(row["registry_number"]),
        school_id=row["school"],
        class_id=row["school_class"],
        status=row["status"],
        fields=fields,
        problems=problems,
        updated_at=row["updated_at"],
        proof_missing=[MissingProof(kind, proofs.PROOF_LABEL[kind]) for kind in missing],
        status_label=STATUS_LABEL[StudentStatus(row["status"])],
        change_open=row["open_change"] is not None,
    )


PENDING = (RequestState.in_review, RequestState.returned)
PENDING_LABEL = {RequestState.in_review: "审核中", RequestState.returned: "已退回，待确认或补充"}


async def pending_changes(student_id: int) -> dict[str, PendingChange]:
    """The change asked for each field and not yet decided (the latest, were there two)."""
    rows = (
        await ChangeRequest.select(
            ChangeRequest.id, ChangeRequest.field_code, ChangeRequest.new_value, ChangeRequest.state
        )
        .where(
            (ChangeRequest.student == student_id)
            & ChangeRequest.state.is_in([s.value for s in PENDING])
        )
        .order_by(ChangeRequest.id)
    )
    found = {}
    for r in rows:
        field = BY_CODE.get(r["field_code"])
        state = RequestState(r["state"])
        found[r["field_code"]] = PendingChange(
            request_id=r["id"],
            value=masking.mask(field, r["new_value"]),
            display=masking.mask(field, field.label_of(r["new_value"]) if field else None) or None,
            state=state,
            state_label=PENDING_LABEL[state],
        )
    return found


async def reveal(principal: Principal, actor: Actor, student_id: int, code: str) -> str | None:
    """A registrar or above sees one sensitive value in full; the request is audited."""
    require(principal, Action.reveal_student)
    field = BY_CODE.get(code)
    if field is None or not field.sensitive:
        raise BadRequest(
            "该字段无需或不能揭示",
            code="not_revealable",
            field_errors={"field": "不是需要脱敏的字段"},
        )
    row = await get_scoped(
        actor, principal.scope, Student, Student.id == student_id, "student", student_id
    )
    await audit.record(actor, "reveal", "student", student_id, after={"field": code})
    value: str | None = load_fields(row["fields"]).get(code)
    return value

"""Scoped reads of student records, masked; an audited reveal of one sensitive value."""

from __future__ import annotations

from typing import Any

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.org import MAX_PAGE_SIZE, paginate
from backend.accounts.principal import Principal
from backend.accounts.roles import RANK, STAFF_ROLES, Role
from backend.accounts.schemas import Page
from backend.accounts.scope import Scope, get_scoped, scoped
from backend.errors import BadRequest, Forbidden
from backend.records.catalog import BY_CODE, FIELDS, Field, FieldType
from backend.records.ids import (
    PROBLEM_LABEL,
    ProblemKind,
    mask_id_number,
    mask_phone,
    mask_registry_number,
)
from backend.records.schemas import FieldValue, Problem, StudentDetail, StudentSummary
from backend.records.service import load_fields
from backend.records.tables import ProblemFlag, Student

LIKE_ESCAPE = str.maketrans({"%": r"\%", "_": r"\_", "\\": r"\\"})


def mask(field: Field, value: str | None) -> str | None:
    if not field.sensitive or value is None:
        return value
    return mask_id_number(value) if field.type is FieldType.id_number else mask_phone(value)


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
    )


async def list_students(
    scope: Scope,
    *,
    q: str | None = None,
    class_id: int | None = None,
    school_id: int | None = None,
    status: str | None = None,
    problem: ProblemKind | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page[StudentSummary]:
    where: list[Any] = []
    if q:
        q = q.strip()
        if q[:1] in "GJ" and q[1:].isalnum() and len(q) > 6:
            where.append(Student.registry_number == q.upper())
        else:
            where.append(Student.name.ilike(f"%{q.translate(LIKE_ESCAPE)}%"))
    if class_id is not None:
        where.append(Student.school_class == class_id)
    if school_id is not None:
        where.append(Student.school == school_id)
    if status is not None:
        where.append(Student.status == status)
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
    rows, total = await paginate(query, count, page, page_size)
    problems = await _problems_of([r["id"] for r in rows])
    items = [_summary(r, problems.get(r["id"], [])) for r in rows]
    return Page(items, max(page, 1), min(page_size, MAX_PAGE_SIZE), total)


async def get_student(principal: Principal, actor: Actor, student_id: int) -> StudentDetail:
    row = await get_scoped(
        actor, principal.scope, Student, Student.id == student_id, "student", student_id
    )
    if principal.role in STAFF_ROLES:
        await audit.record(actor, "read", "student", student_id)
    values = load_fields(row["fields"])
    fields = [
        FieldValue(
            code=f.code,
            label=f.label,
            value=mask(f, values.get(f.code)),
            display=mask(f, f.label_of(values.get(f.code))) or None,
            key=f.key,
            masked=f.sensitive and values.get(f.code) is not None,
        )
        for f in FIELDS
    ]
    problems = [
        Problem(p["kind"], PROBLEM_LABEL[ProblemKind(p["kind"])], p["detail"])
        for p in (await _problems_of([student_id])).get(student_id, [])
    ]
    return StudentDetail(
        id=row["id"],
        registry_number=mask_registry_number(row["registry_number"]),
        school_id=row["school"],
        class_id=row["school_class"],
        status=row["status"],
        fields=fields,
        problems=problems,
        updated_at=row["updated_at"],
    )


async def reveal(principal: Principal, actor: Actor, student_id: int, code: str) -> str | None:
    """A registrar or above sees one sensitive value in full; the request is audited."""
    if principal.role not in STAFF_ROLES or RANK[principal.role] < RANK[Role.registrar]:
        raise Forbidden("只有学籍管理员及以上角色可以查看完整信息", code="reveal_forbidden")
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

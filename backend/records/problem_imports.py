"""Importing the national system's list of problem records (`national_list` reads the
file): a case for each row naming a student on the roll of a school in the caller's region,
the rest reported with a Chinese message; importing the same list again changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.scope import scoped
from backend.accounts.tables import School
from backend.db import transaction
from backend.records.importer import RowError
from backend.records.national_list import ListRow, NationalList
from backend.records.problem_tables import CaseSource, CaseState, ProblemCase
from backend.records.problems import KIND_LABEL, reopen
from backend.records.tables import Student, StudentStatus
from backend.workdays import due_date


@dataclass
class ListReport:
    total_rows: int = 0
    matched: int = 0
    created: int = 0
    reopened: int = 0
    unchanged: int = 0  # already known: importing the same list again changes nothing
    not_matched: int = 0
    errors: list[RowError] = field(default_factory=list)


def require_importer(principal: Principal) -> None:
    require(principal, Action.import_problem_list)


async def import_national_list(
    principal: Principal, actor: Actor, parsed: NationalList
) -> ListReport:
    """Open a case for each row of the national list that names a student on the roll of a
    school in the caller's region; rows that match nothing are reported, with a Chinese
    message. Importing the same list again changes nothing."""
    require(principal, Action.import_problem_list)
    report = ListReport(total_rows=parsed.total_rows, errors=list(parsed.errors))
    report.not_matched = 0
    codes = sorted({r.school_code for r in parsed.rows})
    schools = {
        s["code"]: s["id"]
        for s in await scoped(
            School.select(School.id, School.code).where(School.code.is_in(codes or [""])),
            principal.scope,
            School,
        )
    }
    now = datetime.now(UTC)
    async with transaction():
        for row in parsed.rows:
            school_id = schools.get(row.school_code)
            if school_id is None:
                report.not_matched += 1
                report.errors.append(
                    RowError(row.row, "学校标识码", "学校标识码不存在或不在您的管辖范围内")
                )
                continue
            student = await _match(school_id, row)
            if student is None:
                report.not_matched += 1
                report.errors.append(
                    RowError(
                        row.row,
                        "学籍号" if row.registry_number else "身份证件号",
                        "该校没有这名学生（按学籍号或身份证件号未找到在籍学生）",
                    )
                )
                continue
            report.matched += 1
            outcome = await _upsert_national(student, row, now)
            setattr(report, outcome, getattr(report, outcome) + 1)
        await audit.record(
            actor,
            "import",
            "problem_list",
            after={
                "rows": report.total_rows,
                "matched": report.matched,
                "created": report.created,
                "reopened": report.reopened,
                "not_matched": report.not_matched,
            },
        )
    return report


async def _match(school_id: int, row: ListRow) -> dict[str, Any] | None:
    query = Student.select(
        Student.id, Student.school, Student.school_class, Student.region_code, Student.id_number
    ).where((Student.school == school_id) & (Student.status != StudentStatus.removed.value))
    if row.registry_number:
        found = await query.where(Student.registry_number == row.registry_number).first()
        if found is not None:
            return dict(found)
    if row.id_number:
        found = await query.where(Student.id_number == row.id_number).first()
        if found is not None:
            return dict(found)
    return None


async def _upsert_national(student: dict[str, Any], row: ListRow, now: datetime) -> str:
    case = (
        await ProblemCase.select(ProblemCase.id, ProblemCase.state)
        .where((ProblemCase.student == student["id"]) & (ProblemCase.kind == row.kind.value))
        .first()
    )
    detail = row.detail or f"全国学籍系统下发：{KIND_LABEL[row.kind]}"
    if case is None:
        inserted = (
            await ProblemCase.insert(
                ProblemCase(
                    student=student["id"],
                    school=student["school"],
                    school_class=student["school_class"],
                    region_code=student["region_code"],
                    kind=row.kind.value,
                    source=CaseSource.national.value,
                    detail=detail,
                    id_number=student["id_number"],
                    due_on=due_date(now),
                    created_at=now,
                    updated_at=now,
                )
            )
            .on_conflict(target=(ProblemCase.student, ProblemCase.kind), action="DO NOTHING")
            .returning(ProblemCase.id)
        )
        if not inserted:
            return "unchanged"  # the same list, imported at the same moment
        return "created"
    if case["state"] == CaseState.resolved.value:
        await reopen([case["id"]], now, detail)
        return "reopened"
    return "unchanged"

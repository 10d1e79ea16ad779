"""A student's move to another class, of the same school or another (and so perhaps another
region), with everything that follows the student.

Region, school and class are copied into the rows a record brings about; each table says in
its `tables.py` whether its rows follow the student (`OnMove.follows`) or are history that
stays with the old school (`OnMove.stays`). The move reads those declarations, so a new
table that follows its student is moved without touching this module. Transfers between
schools (with their approvals) will call `move_student`; it decides nothing about who may.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from piccolo.table import Table

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.scope_rules import SCOPED, OnMove, ScopedColumns
from backend.accounts.tables import SchoolClass
from backend.db import is_postgres, transaction
from backend.errors import Conflict, NotFound
from backend.piccolo_app import APP_CONFIG
from backend.records import reviews
from backend.records.holds import RecordChangeOpen
from backend.records.service import recompute_flags
from backend.records.tables import IssuedForm, Student


@dataclass(frozen=True, slots=True)
class Moved:
    """What a move changed: the rows that followed the student, by table (the student's own
    row included), and the live forms it superseded."""

    student_id: int
    followed: dict[str, int] = field(default_factory=dict)
    forms_superseded: int = 0


def following_tables() -> list[tuple[type[Table], ScopedColumns]]:
    """Every table of the app whose rows follow their student, as its `tables.py` declares
    (the app's table list imports every domain's tables, so none is missed)."""
    found = []
    for table in APP_CONFIG.table_classes:
        columns = SCOPED.get(table)
        if columns is not None and columns.on_move is OnMove.follows:
            found.append((table, columns))
    return found


async def _target_class(class_id: int) -> dict[str, Any]:
    row = await SchoolClass.select().where(SchoolClass.id == class_id).first()
    if row is None:
        raise NotFound("未找到要转入的班级")
    return row


async def _lock_student(student_id: int, for_change: int | None) -> dict[str, Any]:
    query = Student.select(
        Student.id,
        Student.registry_number,
        Student.school,
        Student.school_class,
        Student.region_code,
        Student.id_number,
        Student.open_change,
    ).where(Student.id == student_id)
    row = await (query.lock_rows() if is_postgres() else query).first()
    if row is None:
        raise NotFound()
    if row["open_change"] is not None and row["open_change"] != for_change:
        raise RecordChangeOpen(student_ids=[student_id])
    return row


async def move_student(
    actor: Actor, student_id: int, class_id: int, *, for_change: int | None = None
) -> Moved:
    """Move the student's record, and every row that follows it, into class `class_id` (its
    school and region with it), in one transaction with one audit row. The child's live
    forms are superseded: they name the old school and class, and the new school prints its
    own; rows that are history keep the old school. ID-number flags are recomputed when the
    school changes (a duplicate is counted per school). Moving into the class the student is
    already in changes nothing.

    While a status change is open on the record (`records.holds`) only that change may move
    it: `for_change` names it (the transfer's own move); any other move is refused.

    Errors: `not_found` (404) when the student or the class does not exist;
    `record_change_open` (409) when a status change other than `for_change` is open on it;
    `registry_number_taken` (409) when the new school already holds a record with the
    student's registry number.
    """
    target = await _target_class(class_id)
    new = {"region_code": target["region_code"], "school": target["school"], "class": class_id}
    async with transaction():
        student = await _lock_student(student_id, for_change)
        if student["school_class"] == class_id:
            return Moved(student_id)
        if student["school"] != target["school"] and await Student.exists().where(
            (Student.school == target["school"])
            & (Student.registry_number == student["registry_number"])
        ):
            raise Conflict(
                "转入学校已有相同学籍号的学生，请先核对两条学籍", code="registry_number_taken"
            )
        followed: dict[str, int] = {}
        for table, columns in following_tables():
            assert columns.student is not None  # declare_scoped holds a follower to it
            values = {columns.region: new["region_code"]}
            if columns.school is not None:
                values[columns.school] = new["school"]
            if columns.school_class is not None:
                values[columns.school_class] = new["class"]
            rows = await (
                table.update(values)  # type: ignore[arg-type]
                .where(columns.student == student_id)
                .returning(table._meta.primary_key)
            )
            followed[table._meta.tablename] = len(rows)
        await reviews.reseat(student_id)
        superseded = await (
            IssuedForm.update({IssuedForm.superseded_at: datetime.now(UTC)})
            .where((IssuedForm.student == student_id) & IssuedForm.superseded_at.is_null())
            .returning(IssuedForm.id)
        )
        if student["school"] != target["school"] and student["id_number"]:
            await recompute_flags([student_id], [str(student["id_number"])])
        await audit.record(
            actor,
            "move",
            "student",
            student_id,
            before={
                "region_code": student["region_code"],
                "school": student["school"],
                "school_class": student["school_class"],
            },
            after={
                "region_code": new["region_code"],
                "school": new["school"],
                "school_class": class_id,
                "followed": followed,
                "forms_superseded": [row["id"] for row in superseded],
            },
        )
    return Moved(student_id, followed, len(superseded))

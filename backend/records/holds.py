"""The hold on a record while a status change (异动: a transfer, a suspension …) is open on it.

`Student.open_change` names the open change. While it is set the record accepts no other
change: every path that writes the record, or starts something that will (a change request, a
problem-record action, a class move, an import's update), refuses with 409
`record_change_open`. The refusal is decided under the same lock or conditional UPDATE as the
write, so a hold set at the same instant cannot be slipped past: on PostgreSQL the record's
row is locked (`lock_unheld`) or the UPDATE's WHERE names `open_change IS NULL` (`unheld`),
which PostgreSQL evaluates again on the row as the hold's commit left it; SQLite runs one
writer at a time.

The change itself writes through these paths too (the transfer moves the class with
`moves.move_student(..., for_change=…)`): `for_change` lets exactly that change through.

A check campaign lists a held student apart (not printed, not counted as missing): see
`ON_ROLL_SQL` and docs/progress.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from piccolo.custom_types import Combinable

from backend.db import is_postgres
from backend.errors import Conflict, NotFound
from backend.records.tables import Student, StudentStatus

CHANGE_OPEN_LABEL = "异动办理中"

# The records a check campaign checks (prints, counts, lists on the roll): enrolled and not
# in the middle of a status change. `{a}` is the student table's alias.
ON_ROLL_SQL = "{a}.status = 'enrolled' AND {a}.open_change IS NULL"


class RecordChangeOpen(Conflict):
    code = "record_change_open"
    message = "该学生有正在办理的学籍异动（如转学），办结前不能修改学籍信息"

    def __init__(self, message: str | None = None, *, student_ids: Iterable[int] = ()) -> None:
        super().__init__(message)
        self.student_ids = tuple(sorted(set(student_ids)))


def unheld(for_change: int | None = None) -> Combinable:
    """The condition a write of the record adds to its WHERE: no change open, or only
    `for_change`."""
    free: Combinable = Student.open_change.is_null()
    if for_change is None:
        return free
    return free | (Student.open_change == for_change)


def on_roll() -> Combinable:
    """The records a check campaign checks (see `ON_ROLL_SQL`)."""
    return (Student.status == StudentStatus.enrolled.value) & Student.open_change.is_null()


async def lock_unheld(
    student_id: int, *, for_change: int | None = None, message: str | None = None
) -> dict[str, Any]:
    """Inside the caller's transaction: lock the record's row (PostgreSQL; SQLite's one writer
    is the lock there) and refuse (409 `record_change_open`) when a change other than
    `for_change` is open on it. The row (id, fields, open_change); 404 when there is none.
    A hold set a moment ago is seen: the lock waits for its transaction to end."""
    query = Student.select(Student.id, Student.fields, Student.open_change).where(
        Student.id == student_id
    )
    row = await (query.lock_rows() if is_postgres() else query).first()
    if row is None:
        raise NotFound("学生不存在", code="student_not_found")
    if row["open_change"] is not None and row["open_change"] != for_change:
        raise RecordChangeOpen(message, student_ids=[student_id])
    return dict(row)


async def refuse_if_held(student_id: int, message: str | None = None) -> None:
    """The early answer before any work (photos stored, reviews opened): 409 when a change is
    open now. Not the guard against a race: the write's own lock or condition is."""
    row = await Student.select(Student.open_change).where(Student.id == student_id).first()
    if row is not None and row["open_change"] is not None:
        raise RecordChangeOpen(message, student_ids=[student_id])


async def held_among(student_ids: Iterable[int]) -> set[int]:
    """Of these records, those with a change open."""
    ids = sorted(set(student_ids))
    found: set[int] = set()
    for start in range(0, len(ids), 500):
        rows = await Student.select(Student.id).where(
            Student.id.is_in(ids[start : start + 500]) & Student.open_change.is_not_null()
        )
        found |= {row["id"] for row in rows}
    return found

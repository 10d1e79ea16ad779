"""The registry number follows the ID number (`ids.registry_number_for`): a record registered
without a resident ID number holds a J number; once an approved change gives it a resident ID
card and its number, the record takes G + the ID number, and the J number it gave up is kept
(`RegistryNumberChange`, the record's registry-number history, and the audit log)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.errors import Conflict
from backend.records.catalog import RESIDENT_ID
from backend.records.ids import registry_number_for
from backend.records.roll_tables import RegistryNumberChange
from backend.records.service import load_fields
from backend.records.tables import Student


class RegistryNumberTaken(Conflict):
    code = "registry_number_taken"
    message = "本校已有相同学籍号的学生，请先核对是否重复登记"


async def follow_id_number(
    actor: Actor, student_id: int, change_request: int | None = None
) -> str | None:
    """After a change to the record's ID fields (inside its transaction): when the record now
    holds a resident ID card with its number and a J registry number, give it G + the number
    and keep the old one. The new registry number, or None when nothing changed."""
    row = (
        await Student.select(Student.id, Student.school, Student.registry_number, Student.fields)
        .where(Student.id == student_id)
        .first()
    )
    if row is None:
        return None
    fields = load_fields(row["fields"])
    old = row["registry_number"]
    if fields.get("id_type") != RESIDENT_ID or not fields.get("id_number"):
        return None
    if not old.startswith("J"):
        return None
    new = registry_number_for(RESIDENT_ID, fields["id_number"], "", "", None)
    if await Student.exists().where(
        (Student.school == row["school"]) & (Student.registry_number == new)
    ):
        raise RegistryNumberTaken()
    now = datetime.now(UTC)
    await Student.update({Student.registry_number: new, Student.updated_at: now}).where(
        Student.id == student_id
    )
    await RegistryNumberChange.insert(
        RegistryNumberChange(
            student=student_id,
            old_number=old,
            new_number=new,
            change_request=change_request,
            changed_at=now,
        )
    )
    await audit.record(
        actor,
        "registry_number",
        "student",
        student_id,
        before={"registry_number": old},
        after={"registry_number": new, "change_request": change_request},
    )
    return new


async def history(student_id: int) -> list[dict[str, Any]]:
    """The registry numbers the record gave up, oldest first."""
    rows: list[dict[str, Any]] = (
        await RegistryNumberChange.select()
        .where(RegistryNumberChange.student == student_id)
        .order_by(RegistryNumberChange.id)
    )
    return rows

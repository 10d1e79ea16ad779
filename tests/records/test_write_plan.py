"""A record write is planned, then applied: the plan says what each record would do (create,
update with each field's before and after, or nothing) and writes nothing; applying one
planned change writes exactly that change, recomputes its flags and audits it, through the
same path an import takes (approvals will apply changes this way)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from backend.accounts.audit_seal import Sealer
from backend.accounts.tables import AuditLog
from backend.config import Settings
from backend.db import json_value, transaction
from backend.records.ids import ProblemKind
from backend.records.service import (
    ChangeKind,
    RecordIn,
    apply_changes,
    load_fields,
    plan_changes,
    write_records,
)
from backend.records.tables import ProblemFlag, Student
from tests.factories import SYSTEM, World, build_world, make_students


@pytest.fixture
async def world(settings: Settings) -> World:
    world = await build_world(settings)
    world.students = await make_students(world, "A1", 2)
    return world


async def _as_record(student_id: int) -> RecordIn:
    row = await Student.select().where(Student.id == student_id).first()
    assert row is not None
    return RecordIn(
        row["registry_number"],
        row["school"],
        row["school_class"],
        row["region_code"],
        load_fields(row["fields"]),
    )


async def _written() -> tuple[int, int, list[dict[str, Any]]]:
    students = await Student.select(Student.id, Student.fields, Student.school_class)
    return await Student.count(), await AuditLog.count(), students


async def test_the_plan_says_what_each_record_would_do_and_writes_nothing(world: World) -> None:
    stored, same = await _as_record(world.students[0]), await _as_record(world.students[1])
    old_address = stored.fields["current_address"]
    moved = replace(
        stored,
        class_id=world.classes["A2"],
        fields={"current_address": "浙江省杭州市西湖区文二路2号"},  # only what the file carries
    )
    new = replace(same, registry_number="G330106201801019999", fields={"name": "新同学"})
    before = await _written()

    plan = await plan_changes([moved, same, new])

    assert await _written() == before
    assert [c.kind for c in plan] == [ChangeKind.update, ChangeKind.unchanged, ChangeKind.create]
    update = plan[0]
    assert update.student_id == world.students[0]
    assert dict(update.before) == {
        "current_address": old_address,
        "class_id": str(world.classes["A1"]),
    }
    assert dict(update.after) == {
        "current_address": "浙江省杭州市西湖区文二路2号",
        "class_id": str(world.classes["A2"]),
    }
    # The record as it will be: the file's fields over the stored ones.
    assert update.record.fields == {**stored.fields, **moved.fields}
    assert plan[1].student_id == world.students[1]
    assert plan[1].before == plan[1].after == {}
    assert plan[2].student_id is None


def opened(text: str) -> Any:
    return Sealer.of().reveal(json_value(text))


async def test_one_planned_change_is_applied_flagged_and_audited_alone(world: World) -> None:
    target, other = await _as_record(world.students[0]), await _as_record(world.students[1])
    wrong_id = target.fields["id_number"][:-1] + (
        "0" if target.fields["id_number"][-1] != "0" else "1"
    )
    change, untouched = await plan_changes(
        [
            replace(target, fields={"id_number": wrong_id}),
            replace(other, fields={"name": "不该写入"}),
        ]
    )
    audit_before = await AuditLog.count()

    async with transaction():
        summary = await apply_changes(SYSTEM, [change])

    assert (summary.created, summary.updated, summary.unchanged) == (0, 1, 0)
    assert summary.student_ids == [world.students[0]]
    stored = await Student.select().where(Student.id == world.students[0]).first()
    assert stored is not None
    assert load_fields(stored["fields"])["id_number"] == wrong_id
    assert stored["id_number"] == wrong_id
    flags = await ProblemFlag.select(ProblemFlag.kind).where(
        ProblemFlag.student == world.students[0]
    )
    assert {f["kind"] for f in flags} == {ProblemKind.id_invalid.value}
    assert summary.flagged == 1
    # The other planned change was not applied.
    assert untouched.kind is ChangeKind.update
    other_row = await Student.select().where(Student.id == world.students[1]).first()
    assert other_row is not None
    assert load_fields(other_row["fields"])["name"] == other.fields["name"]
    # Audited once, with the plan's before and after.
    rows = await AuditLog.select().where(AuditLog.id > 0).order_by(AuditLog.id)
    assert len(rows) == audit_before + 1
    row = rows[-1]
    assert (row["action"], row["entity"], row["entity_id"]) == (
        "update",
        "student",
        str(world.students[0]),
    )
    assert wrong_id not in row["after"]  # sealed (backend/accounts/audit_seal.py)
    assert opened(row["before"]) == {"id_number": target.fields["id_number"]}
    assert opened(row["after"]) == {"id_number": wrong_id}


async def test_an_import_and_an_applied_plan_write_and_audit_the_same(world: World) -> None:
    record = await _as_record(world.students[0])
    changed = replace(record, fields={"current_address": "浙江省杭州市西湖区文二路2号"})

    async with transaction():
        by_plan = await apply_changes(SYSTEM, await plan_changes([changed]))
    by_plan_audit = (await AuditLog.select().order_by(AuditLog.id, ascending=False).first()) or {}
    async with transaction():  # the same file again: nothing left to change
        again = await write_records(SYSTEM, [changed])

    assert (by_plan.updated, again.updated, again.unchanged) == (1, 0, 1)
    back = replace(record, fields={"current_address": record.fields["current_address"]})
    async with transaction():
        by_import = await write_records(SYSTEM, [back])
    by_import_audit = (await AuditLog.select().order_by(AuditLog.id, ascending=False).first()) or {}
    assert by_import.updated == 1
    assert opened(by_import_audit["before"]) == opened(by_plan_audit["after"])
    assert opened(by_import_audit["after"]) == opened(by_plan_audit["before"])


async def test_held_fields_of_stored_records_are_listed_not_written(world: World) -> None:
    first, second = await _as_record(world.students[0]), await _as_record(world.students[1])
    renamed_and_moved = replace(
        first, fields={"name": "王小明", "current_address": "浙江省杭州市西湖区文二路2号"}
    )
    renamed_only = replace(second, fields={"name": "李小红", "ethnicity": "03"})
    new = replace(first, registry_number="J2133010620180101", fields={"name": "新同学"})
    held_back = frozenset({"name", "ethnicity"})

    async with transaction():
        summary = await write_records(
            SYSTEM, [renamed_and_moved, renamed_only, new], hold=held_back
        )

    assert (summary.created, summary.updated, summary.unchanged) == (1, 1, 1)
    assert [(h.index, h.student_id, h.field_code, h.new_value) for h in summary.held] == [
        (0, world.students[0], "name", "王小明"),
        (1, world.students[1], "name", "李小红"),
        (1, world.students[1], "ethnicity", "03"),
    ]
    assert summary.held[0].old_value == first.fields["name"]
    one, two = [await _as_record(s) for s in world.students[:2]]
    assert one.fields["name"] == first.fields["name"]
    assert one.fields["current_address"] == "浙江省杭州市西湖区文二路2号"
    assert two.fields == second.fields
    created = await Student.select().where(Student.registry_number == new.registry_number).first()
    assert created is not None
    assert created["name"] == "新同学"

"""Writing student records (create or update by registry number, flags recomputed, audited in
the same transaction) and finding duplicate ID numbers."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.db import is_postgres, json_value
from backend.records.catalog import FIELDS
from backend.records.ids import ProblemKind, id_problems
from backend.records.tables import ProblemFlag, Student

CHUNK = 500
FIELD_ORDER = {f.code: i for i, f in enumerate(FIELDS)}


def load_fields(raw: Any) -> dict[str, str]:
    """A record's field values from their JSON column."""
    return dict(json_value(raw) or {})


@dataclass(frozen=True, slots=True)
class RecordIn:
    """One student as it should be after the write."""

    registry_number: str
    school_id: int
    class_id: int
    region_code: str
    fields: Mapping[str, str]


@dataclass
class WriteSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    flagged: int = 0  # written records that now have a problem flag
    student_ids: list[int] = field(default_factory=list)


def _columns(record: RecordIn) -> dict[str, Any]:
    return {
        "name": record.fields.get("name", ""),
        "id_number": record.fields.get("id_number") or None,
        "school": record.school_id,
        "school_class": record.class_id,
        "region_code": record.region_code,
    }


def _diff(
    before: Mapping[str, str], after: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    keys = sorted(set(before) | set(after), key=lambda k: FIELD_ORDER.get(k, 999))
    changed = [k for k in keys if before.get(k) != after.get(k)]
    return ({k: before.get(k, "") for k in changed}, {k: after.get(k, "") for k in changed})


async def write_records(
    actor: Actor,
    records: Sequence[RecordIn],
    progress: Callable[[int], Awaitable[None]] | None = None,
    *,
    flag_duplicates: bool = True,
) -> WriteSummary:
    """Create or update each record (matched by school and registry number). Must run inside
    the caller's transaction; unchanged records are not touched and not audited. Without
    `flag_duplicates` (a dry run), ID numbers are not compared with other schools' records,
    only with those of the records' own schools."""
    summary = WriteSummary()
    now = datetime.now(UTC)
    entries: list[audit.Entry] = []
    touched_ids: set[str] = set()
    for start in range(0, len(records), CHUNK):
        chunk = records[start : start + CHUNK]
        existing = {
            (row["school"], row["registry_number"]): row
            for row in await Student.select(
                Student.id,
                Student.school,
                Student.school_class,
                Student.registry_number,
                Student.fields,
                Student.id_number,
            ).where(Student.registry_number.is_in([r.registry_number for r in chunk]))
        }
        new_rows: list[dict[str, Any]] = []
        new_records: list[RecordIn] = []
        for record in chunk:
            old = existing.get((record.school_id, record.registry_number))
            if old is None:
                new_rows.append(
                    {
                        "registry_number": record.registry_number,
                        "fields": dict(record.fields),
                        "created_at": now,
                        "updated_at": now,
                        **_columns(record),
                    }
                )
                new_records.append(record)
                if record.fields.get("id_number"):
                    touched_ids.add(record.fields["id_number"])
                continue
            old_fields = load_fields(old["fields"])
            merged = {**old_fields, **record.fields}
            if merged == old_fields and old["school_class"] == record.class_id:
                summary.unchanged += 1
                summary.student_ids.append(old["id"])
                continue
            merged_record = RecordIn(
                record.registry_number,
                record.school_id,
                record.class_id,
                record.region_code,
                merged,
            )
            await Student.update(
                {
                    Student.fields: merged,
                    Student.updated_at: now,
                    **{getattr(Student, k): v for k, v in _columns(merged_record).items()},
                }
            ).where(Student.id == old["id"])
            before, after = _diff(old_fields, merged)
            if old["school_class"] != record.class_id:
                before["class_id"], after["class_id"] = (
                    str(old["school_class"]),
                    str(record.class_id),
                )
            entries.append(audit.Entry("update", "student", old["id"], before, after))
            summary.updated += 1
            summary.student_ids.append(old["id"])
            for number in (old["id_number"], merged.get("id_number")):
                if number:
                    touched_ids.add(number)
        if new_rows:
            inserted = await _insert_students(new_rows)
            for student_id, new in zip(inserted, new_records, strict=True):
                entries.append(
                    audit.Entry(
                        "create",
                        "student",
                        student_id,
                        None,
                        {"registry_number": new.registry_number, **new.fields},
                    )
                )
                summary.student_ids.append(student_id)
            summary.created += len(new_rows)
        if progress is not None:
            await progress(start + len(chunk))
    changed = [int(str(e.entity_id)) for e in entries]
    own_schools = None if flag_duplicates else {r.school_id for r in records}
    summary.flagged = len(await recompute_flags(changed, touched_ids, schools=own_schools))
    await audit.record_many(actor, entries)
    return summary


# The same rows as `Student.insert(*rows)` as one statement with one array parameter per
# column: Piccolo builds SQL for every value of a multi-row insert, which made this insert
# about a quarter of a large import's time (bench/records.py).
_UNNEST_INSERT = (
    "INSERT INTO student (registry_number, school, school_class, region_code, status, name, "
    "id_number, fields, created_at, updated_at) "
    "SELECT t.registry_number, t.school, t.school_class, t.region_code, {}::varchar, t.name, "
    "t.id_number, t.fields::jsonb, t.created_at, t.updated_at "
    "FROM unnest({}::varchar[], {}::integer[], {}::integer[], {}::varchar[], {}::varchar[], "
    "{}::varchar[], {}::text[], {}::timestamptz[], {}::timestamptz[]) "
    "WITH ORDINALITY AS t(registry_number, school, school_class, region_code, name, "
    "id_number, fields, created_at, updated_at, n) "
    "ORDER BY t.n RETURNING id, school, registry_number"
)
_UNNEST_COLUMNS = (
    "registry_number",
    "school",
    "school_class",
    "region_code",
    "name",
    "id_number",
    "fields",
    "created_at",
    "updated_at",
)


async def _insert_students(rows: list[dict[str, Any]]) -> list[int]:
    """Insert the rows (column values by name); returns their ids in the order of `rows`."""
    if not is_postgres():
        inserted = await Student.insert(*(Student(**row) for row in rows)).returning(Student.id)
        return [row["id"] for row in inserted]
    status = Student.status.default
    arrays = [[row[column] for row in rows] for column in _UNNEST_COLUMNS]
    arrays[6] = [json.dumps(value) for value in arrays[6]]  # fields, as JSON text
    ids = {
        (row["school"], row["registry_number"]): row["id"]
        for row in await Student.raw(_UNNEST_INSERT, status, *arrays)
    }
    return [ids[(row["school"], row["registry_number"])] for row in rows]


async def recompute_flags(
    student_ids: Iterable[int],
    id_numbers: Iterable[str],
    *,
    schools: Collection[int] | None = None,
) -> set[int]:
    """Each record's own ID problems, and for every holder of the given ID numbers
    `duplicate_id` (held at two schools or more) and `duplicate_id_in_school` (held by two
    records or more of one school); records elsewhere gain or lose the flags with them.
    With `schools`, only holders at those schools are looked at, and only for
    `duplicate_id_in_school` (a dry run must not learn about other schools). Returns the
    flagged ids."""
    now = datetime.now(UTC)
    ids = list(student_ids)
    flagged: set[int] = set()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        await ProblemFlag.delete().where(
            ProblemFlag.student.is_in(chunk) & (ProblemFlag.kind != ProblemKind.duplicate_id)
        )
        rows = await Student.select(Student.id, Student.fields).where(Student.id.is_in(chunk))
        # ≈ 100 µs of python-stdnum per ID: off the event loop, which may be the API's.
        found = await asyncio.to_thread(_own_problems, rows)
        flags = [
            ProblemFlag(student=student_id, kind=kind.value, detail=detail, created_at=now)
            for student_id, kind, detail in found
        ]
        flagged.update(student_id for student_id, _, _ in found)
        if flags:
            await ProblemFlag.insert(*flags)
    numbers = sorted(set(id_numbers))
    for start in range(0, len(numbers), CHUNK):
        flagged |= await _flag_duplicates(numbers[start : start + CHUNK], now, schools)
    return flagged


def _own_problems(rows: list[dict[str, Any]]) -> list[tuple[int, ProblemKind, str]]:
    found: list[tuple[int, ProblemKind, str]] = []
    for row in rows:
        values = load_fields(row["fields"])
        problems = id_problems(
            values.get("id_type"),
            values.get("id_number"),
            values.get("birth_date"),
            values.get("sex"),
        )
        found.extend((row["id"], kind, detail) for kind, detail in problems)
    return found


async def _flag_duplicates(
    numbers: list[str], now: datetime, schools: Collection[int] | None
) -> set[int]:
    query = Student.select(Student.id, Student.school, Student.id_number).where(
        Student.id_number.is_in(numbers)
    )
    kinds = [ProblemKind.duplicate_id_in_school.value]
    if schools is None:
        kinds.append(ProblemKind.duplicate_id.value)
    else:
        query = query.where(Student.school.is_in(list(schools)))
    holders = await query
    schools_of: dict[str, set[int]] = {}
    in_school = Counter((row["id_number"], row["school"]) for row in holders)
    for row in holders:
        schools_of.setdefault(row["id_number"], set()).add(row["school"])
    holder_ids = [row["id"] for row in holders]
    if holder_ids:
        await ProblemFlag.delete().where(
            ProblemFlag.student.is_in(holder_ids) & ProblemFlag.kind.is_in(kinds)
        )
    flags = [
        ProblemFlag(
            student=row["id"],
            kind=ProblemKind.duplicate_id.value,
            detail=f"同一身份证件号在 {len(schools_of[row['id_number']])} 所学校",
            created_at=now,
        )
        for row in holders
        if schools is None and len(schools_of[row["id_number"]]) > 1
    ]
    flags += [
        ProblemFlag(
            student=row["id"],
            kind=ProblemKind.duplicate_id_in_school.value,
            detail=f"本校有 {count} 条学籍使用同一身份证件号",
            created_at=now,
        )
        for row in holders
        if (count := in_school[(row["id_number"], row["school"])]) > 1
    ]
    if flags:
        await ProblemFlag.insert(*flags)
    return {int(str(flag.student)) for flag in flags}


async def same_school_duplicates(student_ids: Iterable[int]) -> dict[int, int]:
    """Of these records, those flagged `duplicate_id_in_school`, each with how many records
    of its school hold its ID number."""
    ids = list(student_ids)
    found: dict[int, int] = {}
    for start in range(0, len(ids), CHUNK):
        flags = await ProblemFlag.select(ProblemFlag.student).where(
            ProblemFlag.student.is_in(ids[start : start + CHUNK])
            & (ProblemFlag.kind == ProblemKind.duplicate_id_in_school)
        )
        flagged = [f["student"] for f in flags]
        if not flagged:
            continue
        holders = await Student.select(Student.id, Student.school, Student.id_number).where(
            Student.id.is_in(flagged)
        )
        numbers = sorted({h["id_number"] for h in holders})
        counts = Counter(
            (row["school"], row["id_number"])
            for row in await Student.select(Student.school, Student.id_number).where(
                Student.id_number.is_in(numbers)
                & Student.school.is_in(sorted({h["school"] for h in holders}))
            )
        )
        for h in holders:
            found[h["id"]] = counts[(h["school"], h["id_number"])]
    return found


async def find_duplicate_id_numbers(limit: int | None = None) -> list[str]:
    """Every ID number held at more than one school: one grouped pass over the ID index."""
    query = (
        "SELECT id_number FROM student WHERE id_number IS NOT NULL "
        "GROUP BY id_number HAVING COUNT(DISTINCT school) > 1 ORDER BY id_number"
    )
    if limit is not None:
        query += f" LIMIT {int(limit)}"
    rows = await Student.raw(query)
    return [row["id_number"] for row in rows]

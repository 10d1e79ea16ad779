"""Writing student records and finding duplicate ID numbers.

A write is planned, then applied: `plan_changes` reads what each record would do (create,
update with each field's before and after, or nothing), `apply_changes` writes planned
changes, recomputes their problem flags and audits them, in the caller's transaction. An
import does both a chunk at a time (`write_records`); an approval can apply one change it
planned earlier through the same path. A write may hold back changes to some fields of stored
records (`write_records(hold=...)`: an import holds back the key fields, which go to review as
change requests instead); the summary lists what it held back."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import (
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Mapping,
    Sequence,
    Set,
)
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.db import is_postgres, json_value
from backend.records.catalog import FIELDS
from backend.records.holds import RecordChangeOpen, held_among, unheld
from backend.records.ids import ProblemKind, id_problems
from backend.records.tables import ProblemFlag, Student, StudentStatus

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


@dataclass(frozen=True, slots=True)
class HeldChange:
    """A change to a stored record's field that a write held back (`write_records(hold=...)`):
    the record keeps `old_value`; whoever asked for the hold decides what becomes of it."""

    index: int  # the record's position in the records written
    student_id: int
    field_code: str
    old_value: str  # "" when the record had no value
    new_value: str


@dataclass
class WriteSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0  # stored records not written (a row whose changes were all held too)
    flagged: int = 0  # written records that now have a problem flag
    student_ids: list[int] = field(default_factory=list)
    held: list[HeldChange] = field(default_factory=list)


class ChangeKind(StrEnum):
    create = "create"
    update = "update"
    unchanged = "unchanged"


@dataclass(frozen=True, slots=True)
class RecordChange:
    """What writing one record would do, worked out before anything is written: the record as
    it will be (an update's fields laid over the stored ones) and, for an update, the value
    before and after of each field that changes (`class_id` too when the class does)."""

    kind: ChangeKind
    record: RecordIn
    student_id: int | None = None  # the stored record (None: a create)
    before: Mapping[str, str] = field(default_factory=dict)
    after: Mapping[str, str] = field(default_factory=dict)
    stored_id_number: str | None = None  # its duplicates are looked at again once it changes


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


async def plan_changes(records: Sequence[RecordIn]) -> list[RecordChange]:
    """For each record (matched by school and registry number), whether writing it would
    create, update or leave a stored record, and what would change. Reads only."""
    changes: list[RecordChange] = []
    for start in range(0, len(records), CHUNK):
        chunk = records[start : start + CHUNK]
        stored = {
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
        changes += [_change(r, stored.get((r.school_id, r.registry_number))) for r in chunk]
    return changes


def _change(record: RecordIn, old: dict[str, Any] | None) -> RecordChange:
    if old is None:
        return RecordChange(ChangeKind.create, record)
    old_fields = load_fields(old["fields"])
    merged = {**old_fields, **record.fields}
    merged_record = replace(record, fields=merged)
    if merged == old_fields and old["school_class"] == record.class_id:
        return RecordChange(ChangeKind.unchanged, merged_record, old["id"])
    before, after = _diff(old_fields, merged)
    if old["school_class"] != record.class_id:
        before["class_id"], after["class_id"] = str(old["school_class"]), str(record.class_id)
    return RecordChange(
        ChangeKind.update, merged_record, old["id"], before, after, old["id_number"]
    )


def hold_back(
    change: RecordChange, fields: Set[str], index: int, held: list[HeldChange]
) -> RecordChange:
    """`change` without its changes to `fields` (appended to `held`): the record keeps their
    stored values, and an update left with nothing to write becomes unchanged. Only an
    update's own before and after are looked at: no query, nothing for a create (a new
    record's fields are all part of it) or an unchanged record."""
    if change.kind is not ChangeKind.update or fields.isdisjoint(change.after):
        return change
    assert change.student_id is not None
    kept = dict(change.record.fields)
    before, after = dict(change.before), dict(change.after)
    for code in [c for c in change.after if c in fields]:
        old, new = before.pop(code), after.pop(code)
        held.append(HeldChange(index, change.student_id, code, old, new))
        if old:
            kept[code] = old
        else:
            kept.pop(code, None)
    record = replace(change.record, fields=kept)
    if not after:
        return RecordChange(ChangeKind.unchanged, record, change.student_id)
    return replace(change, record=record, before=before, after=after)


@dataclass
class _Applied:
    """What applying changes has written so far, for the flags and the audit at the end."""

    summary: WriteSummary = field(default_factory=WriteSummary)
    entries: list[audit.Entry] = field(default_factory=list)
    touched_ids: set[str] = field(default_factory=set)


async def apply_changes(
    actor: Actor, changes: Sequence[RecordChange], *, schools: Collection[int] | None = None
) -> WriteSummary:
    """Write planned changes (`plan_changes`), recompute the problem flags of what changed
    and audit each change with its before and after: the one path every record write takes,
    an import's rows and a single approved change alike. Must run inside the caller's
    transaction. With `schools`, ID numbers are compared only with those schools' records.
    A record with a status change open on it is not written: 409 `record_change_open`
    (`records.holds`), decided by the UPDATE itself."""
    applied = _Applied()
    for start in range(0, len(changes), CHUNK):
        await _write(changes[start : start + CHUNK], applied)
    return await _flag_and_audit(actor, applied, schools)


async def write_records(
    actor: Actor,
    records: Sequence[RecordIn],
    progress: Callable[[int], Awaitable[None]] | None = None,
    *,
    flag_duplicates: bool = True,
    hold: Set[str] = frozenset(),
) -> WriteSummary:
    """Create or update each record (matched by school and registry number): planned and
    applied a chunk at a time, through `apply_changes`'s path. Must run inside the caller's
    transaction; unchanged records are not touched and not audited. Without
    `flag_duplicates` (a dry run), ID numbers are not compared with other schools' records,
    only with those of the records' own schools. Changes to the `hold` fields of stored
    records are not written but listed in the summary's `held` (`hold_back`).

    A stored record the write would change (or hold a change of) while a status change is
    open on it (`records.holds`) fails the whole write: 409 `record_change_open` naming every
    such record (`student_ids`); records it leaves unchanged are no reason to fail."""
    applied = _Applied()
    held = applied.summary.held
    on_hold: set[int] = set()
    for start in range(0, len(records), CHUNK):
        chunk = records[start : start + CHUNK]
        planned = await plan_changes(chunk)
        if hold:
            planned = [hold_back(c, hold, start + i, held) for i, c in enumerate(planned)]
        touched = {c.student_id for c in planned if c.kind is ChangeKind.update}
        touched |= {h.student_id for h in held if h.index >= start}
        on_hold |= await held_among(i for i in touched if i is not None)
        if on_hold:
            continue  # the write fails below: only the rest of the held records are wanted
        await _write(planned, applied)
        if progress is not None:
            await progress(start + len(chunk))
    if on_hold:
        raise RecordChangeOpen(student_ids=on_hold)
    own_schools = None if flag_duplicates else {r.school_id for r in records}
    return await _flag_and_audit(actor, applied, own_schools)


async def _write(changes: Sequence[RecordChange], applied: _Applied) -> None:
    """The rows of these changes (updates one by one, creates in one insert)."""
    now = datetime.now(UTC)
    summary = applied.summary
    creates: list[RecordChange] = []
    on_hold: list[int] = []
    for change in changes:
        record = change.record
        if change.kind is ChangeKind.create:
            creates.append(change)
            if record.fields.get("id_number"):
                applied.touched_ids.add(record.fields["id_number"])
            continue
        assert change.student_id is not None
        summary.student_ids.append(change.student_id)
        if change.kind is ChangeKind.unchanged:
            summary.unchanged += 1
            continue
        written = await (
            Student.update(
                {
                    Student.fields: dict(record.fields),
                    Student.updated_at: now,
                    **{getattr(Student, k): v for k, v in _columns(record).items()},
                }
            )
            .where((Student.id == change.student_id) & unheld())
            .returning(Student.id)
        )
        if not written:  # a status change is open on it (set a moment ago, perhaps)
            on_hold.append(change.student_id)
            continue
        applied.entries.append(
            audit.Entry(
                "update", "student", change.student_id, dict(change.before), dict(change.after)
            )
        )
        summary.updated += 1
        for number in (change.stored_id_number, record.fields.get("id_number")):
            if number:
                applied.touched_ids.add(number)
    if on_hold:
        raise RecordChangeOpen(student_ids=on_hold)
    if not creates:
        return
    rows = [
        {
            "registry_number": c.record.registry_number,
            "fields": dict(c.record.fields),
            "created_at": now,
            "updated_at": now,
            **_columns(c.record),
        }
        for c in creates
    ]
    for student_id, change in zip(await _insert_students(rows), creates, strict=True):
        after = {"registry_number": change.record.registry_number, **change.record.fields}
        applied.entries.append(audit.Entry("create", "student", student_id, None, after))
        summary.student_ids.append(student_id)
    summary.created += len(creates)


async def _flag_and_audit(
    actor: Actor, applied: _Applied, schools: Collection[int] | None
) -> WriteSummary:
    changed = [int(str(e.entity_id)) for e in applied.entries]
    flagged = await recompute_flags(changed, applied.touched_ids, schools=schools)
    applied.summary.flagged = len(flagged)
    await audit.record_many(actor, applied.entries)
    return applied.summary


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
    # A record removed from the roll (问题学籍 "delete", arbitration) holds no ID any more.
    query = Student.select(Student.id, Student.school, Student.id_number).where(
        Student.id_number.is_in(numbers) & (Student.status != StudentStatus.removed.value)
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
        "SELECT id_number FROM student WHERE id_number IS NOT NULL AND status <> 'removed' "
        "GROUP BY id_number HAVING COUNT(DISTINCT school) > 1 ORDER BY id_number"
    )
    if limit is not None:
        query += f" LIMIT {int(limit)}"
    rows = await Student.raw(query)
    return [row["id_number"] for row in rows]

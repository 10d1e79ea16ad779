"""The class roll (人籍一致, notice 001 appendix 2, school item 2): in each campaign the
homeroom teacher goes through the class, marking every record *here* or *not here* (with a
reason) and adding the children sitting in the room without a record (*unregistered*). The
class counts as checked when every record of it on the roll is marked.

Every mismatch waits on the school's registrar (`waiting`), in the roll's own queue
(`GET /roll-entries?state=waiting`): an unregistered child has no record yet, so no review
step (which belongs to a student) can carry it, and the registrar's answer is a decision
rather than an approval.

- *not here*: the registrar decides what the school does (`RollOutcome`). `delete` starts
  the problem-record deletion, the same one a registrar starts from the problem list: a
  case of kind `roll_not_here` for the record and its `delete` action, reviewed by the
  authority administering the school (`records.problems`); the entry links to the case and
  shows its state. `transfer` and `suspend` are recorded (the service has no transfer or
  suspension procedure yet); `keep`: the child studies here after all.
- *unregistered*: the registrar registers the child, creating the record through the one
  write path (`service.write_records`), or rejects with a reason.

The registrar acts for the school: they may mark any class of it too. Each mismatch is due
10 working days after it began waiting (`RollEntry.due_on`); it is listed in the registrar's
review queue and badge, and reminded, beside the review steps (`records.roll_waiting`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from piccolo.columns import Column

from backend.accounts import audit
from backend.accounts.audit import Actor
from backend.accounts.permissions import Action, require
from backend.accounts.principal import Principal
from backend.accounts.roles import Role, ScopeKind
from backend.accounts.scope import get_scoped, in_scope_sql, scoped
from backend.accounts.scope_rules import ancestors, region_prefix
from backend.accounts.tables import School, SchoolClass
from backend.db import fetch_rows, transaction
from backend.errors import BadRequest, Conflict, NotFound
from backend.notify.categories import Category
from backend.notify.inbox import Note, notify
from backend.outbox import Outbox
from backend.pages import Page, window
from backend.records import problems, queue_totals
from backend.records.campaigns import active_campaign
from backend.records.catalog import BY_CODE, FIELDS
from backend.records.holds import ON_ROLL_SQL, RecordChangeOpen
from backend.records.ids import registry_number_for
from backend.records.problem_tables import (
    CASE_STATE,
    ActionKind,
    CaseKind,
    CaseSource,
    CaseState,
    ProblemCase,
)
from backend.records.registry_numbers import RegistryNumberTaken
from backend.records.reminders import SeatOf, seat_holders
from backend.records.reviews import place_of
from backend.records.roll_schemas import REASON_LABEL
from backend.records.roll_tables import (
    ROLL_STATE,
    AbsenceReason,
    RollEntry,
    RollMark,
    RollOutcome,
    RollState,
)
from backend.records.service import RecordIn, load_fields, write_records
from backend.records.tables import Campaign, Student, StudentStatus
from backend.records.validate import InvalidValue, clean
from backend.workdays import due_date

# What the registrar may decide on each kind of mismatch (registering is its own call).
OUTCOMES_FOR: dict[RollMark, frozenset[RollOutcome]] = {
    RollMark.not_here: frozenset(
        {RollOutcome.delete, RollOutcome.transfer, RollOutcome.suspend, RollOutcome.keep}
    ),
    RollMark.unregistered: frozenset({RollOutcome.reject}),
}
UNREGISTERED_FIELDS = ("name", "sex", "birth_date")


MARK_HELD = "该学生有正在办理的学籍异动（如转学），异动办结后再核对"


class CampaignNotOpen(Conflict):
    code = "campaign_not_open"
    message = "该核查工作当前未在进行中，不能核对班级名册"


class RollEntryDecided(Conflict):
    code = "roll_entry_decided"
    message = "学籍管理员已处理这条核对结果，不能再修改"


class RollEntryNotWaiting(Conflict):
    code = "roll_entry_not_waiting"
    message = "这条核对结果不在待处理中（已处理或无需处理），请刷新后查看"


class OutcomeNotAllowed(BadRequest):
    code = "outcome_not_allowed"
    message = "这类核对结果不能这样处理"


def _now() -> datetime:
    return datetime.now(UTC)


async def _campaign_of_class(
    principal: Principal, actor: Actor, campaign_id: int, class_id: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The class (in the caller's scope: 404 otherwise, audited) and the campaign, which must
    cover the class's region (404 otherwise)."""
    klass = await get_scoped(
        actor, principal.scope, SchoolClass, SchoolClass.id == class_id, "school_class", class_id
    )
    campaign = await Campaign.select().where(Campaign.id == campaign_id).first()
    if campaign is None or campaign["region_code"] not in ancestors(klass["region_code"]):
        raise NotFound("核查工作不存在", code="campaign_not_found")
    return klass, campaign


async def _require_running(campaign_id: int, region_code: str) -> None:
    running = await active_campaign(region_code)
    if running is None or running["id"] != campaign_id:
        raise CampaignNotOpen()


@dataclass(frozen=True, slots=True)
class ClassRoll:
    klass: dict[str, Any]
    campaign_id: int
    records: list[dict[str, Any]]  # each enrolled student with its entry (or None)
    unregistered: list[dict[str, Any]]
    # records in the middle of a status change (`records.holds`): not checked until it is done
    changing: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def marked(self) -> int:
        return sum(1 for r in self.records if r["entry"] is not None)

    @property
    def checked(self) -> bool:
        return bool(self.records) and self.marked == len(self.records)


async def class_roll(
    principal: Principal, actor: Actor, campaign_id: int, class_id: int
) -> ClassRoll:
    """The class's records on the roll, each with its mark in the campaign, the
    unregistered children added, and apart (`changing`) the records in the middle of a status
    change: notice 001 checks them once it is done, so they are neither marked nor missing."""
    klass, _ = await _campaign_of_class(principal, actor, campaign_id, class_id)
    in_class = await (
        Student.select(Student.id, Student.name, Student.fields, Student.open_change)
        .where(
            (Student.school_class == class_id)
            & ((Student.status == StudentStatus.enrolled.value) | Student.open_change.is_not_null())
            & Student.status.not_in([StudentStatus.removed.value, StudentStatus.cancelled.value])
        )
        .order_by(Student.id)
    )
    students = [s for s in in_class if s["open_change"] is None]
    changing = [
        {
            "student_id": s["id"],
            "name": s["name"],
            "sex": load_fields(s["fields"]).get("sex", ""),
            "birth_date": load_fields(s["fields"]).get("birth_date", ""),
        }
        for s in in_class
        if s["open_change"] is not None
    ]
    entries = (
        await RollEntry.select(*_ENTRY_COLUMNS)
        .where((RollEntry.campaign == campaign_id) & (RollEntry.school_class == class_id))
        .order_by(RollEntry.id)
    )
    by_student = {e["student"]: e for e in entries if e["student"] is not None}
    records = []
    for s in students:
        fields = load_fields(s["fields"])
        records.append(
            {
                "student_id": s["id"],
                "name": s["name"],
                "sex": fields.get("sex", ""),
                "birth_date": fields.get("birth_date", ""),
                "entry": by_student.get(s["id"]),
            }
        )
    unregistered = [e for e in entries if e["mark"] == RollMark.unregistered.value]
    return ClassRoll(klass, campaign_id, records, unregistered, changing)


async def _tell_registrars(outbox: Outbox, school_id: int, entry_id: int) -> None:
    """A mismatch waits on the school's registrars: each is told once per entry (a teacher
    marking it again tells nobody twice). No name: the app opens the entry."""
    holders = await seat_holders([SeatOf(Role.registrar.value, ScopeKind.school, school_id)])
    registrars = [account for accounts in holders.values() for account in accounts]
    await notify(
        outbox,
        registrars,
        Note(
            Category.roll_mismatch,
            "班级名册核对有 1 条待处理",
            "班主任核对名册时发现学生与学籍不符，请处理",
            subject=("roll_entry", entry_id),
            once=f"roll_mismatch:{entry_id}",
        ),
    )


async def mark(
    principal: Principal,
    actor: Actor,
    outbox: Outbox,
    campaign_id: int,
    class_id: int,
    student_id: int,
    found: RollMark,
    reason: AbsenceReason | None,
    note: str,
) -> dict[str, Any]:
    """Mark one record of the class *here* or *not here* (with a reason); marking again
    replaces the mark until the registrar decided. The entry."""
    require(principal, Action.mark_class_roll)
    if found is RollMark.unregistered:
        raise BadRequest(
            "未建学籍的学生请用“添加未建学籍学生”登记",
            code="invalid_mark",
            field_errors={"mark": "只能标记为在班（here）或不在班（not_here）"},
        )
    if found is RollMark.not_here and reason is None:
        raise BadRequest(
            "请选择学生不在班的原因",
            code="reason_required",
            field_errors={"reason": "不在班须选择原因（离校、转学、休学、从未到校、其他）"},
        )
    klass, _ = await _campaign_of_class(principal, actor, campaign_id, class_id)
    student = await get_scoped(
        actor, principal.scope, Student, Student.id == student_id, "student", student_id
    )
    if student["school_class"] != class_id or student["status"] != StudentStatus.enrolled.value:
        raise NotFound("该学生不在这个班级的名册上", code="not_found")
    if student["open_change"] is not None:
        raise RecordChangeOpen(MARK_HELD, student_ids=[student_id])
    await _require_running(campaign_id, klass["region_code"])
    now = _now()
    state = RollState.waiting if found is RollMark.not_here else RollState.settled
    values: dict[Column | str, Any] = {
        RollEntry.mark: found.value,
        RollEntry.reason: reason.value if found is RollMark.not_here and reason else "",
        RollEntry.note: note.strip(),
        RollEntry.marked_by: principal.account_id,
        RollEntry.marked_at: now,
        RollEntry.updated_at: now,
    }
    async with transaction():
        # the first mark inserts; a mark arriving at the same moment (the teacher and the
        # registrar) finds the row and replaces it below instead of breaking on the unique index
        rows = (
            await RollEntry.insert(
                RollEntry(
                    campaign=campaign_id,
                    school=student["school"],
                    school_class=class_id,
                    region_code=student["region_code"],
                    student=student_id,
                    state=state.value,
                    due_on=due_date(now) if state is RollState.waiting else None,
                    **{_name(column): value for column, value in values.items()},
                )
            )
            .on_conflict(target=(RollEntry.campaign, RollEntry.student), action="DO NOTHING")
            .returning(RollEntry.id)
        )
        existing = None
        if rows:
            entry_id: int = rows[0]["id"]
        else:
            existing = (
                await RollEntry.select()
                .where((RollEntry.campaign == campaign_id) & (RollEntry.student == student_id))
                .first()
            )
            assert existing is not None
            entry_id = existing["id"]
            sources = {RollState.settled, RollState.waiting}
            if state is RollState.waiting and existing["state"] != RollState.waiting.value:
                values[RollEntry.due_on] = due_date(now)  # begins waiting now
            moved = await ROLL_STATE.move(entry_id, state, sources=sources, values=values)
            if not moved:
                raise RollEntryDecided()
        await audit.record(
            actor,
            "roll_mark",
            "roll_entry",
            entry_id,
            before=None if existing is None else {"mark": existing["mark"]},
            after={"student": student_id, "mark": found.value, "reason": values[RollEntry.reason]},
        )
        if state is RollState.waiting:
            await _tell_registrars(outbox, student["school"], entry_id)
    queue_totals.forget()  # the registrar's queue changed
    return await _entry(entry_id)


def _name(column: Column | str) -> str:
    return column if isinstance(column, str) else column._meta.name


def clean_child(raw: Mapping[str, object]) -> dict[str, str]:
    """An unregistered child's name, sex and birth date, checked by the field catalog."""
    cleaned: dict[str, str] = {}
    errors: dict[str, str] = {}
    for code in UNREGISTERED_FIELDS:
        try:
            cleaned[code] = clean(BY_CODE[code], raw.get(code)) or ""
        except InvalidValue as exc:
            errors[code] = str(exc)
    if errors:
        raise BadRequest(next(iter(errors.values())), code="invalid_value", field_errors=errors)
    return cleaned


async def add_unregistered(
    principal: Principal,
    actor: Actor,
    outbox: Outbox,
    campaign_id: int,
    class_id: int,
    child: Mapping[str, object],
    note: str,
) -> dict[str, Any]:
    """Add a child sitting in the room who has no record: it waits on the registrar."""
    require(principal, Action.mark_class_roll)
    values = clean_child(child)
    klass, _ = await _campaign_of_class(principal, actor, campaign_id, class_id)
    await _require_running(campaign_id, klass["region_code"])
    now = _now()
    async with transaction():
        rows = await RollEntry.insert(
            RollEntry(
                campaign=campaign_id,
                school=klass["school"],
                school_class=class_id,
                region_code=klass["region_code"],
                mark=RollMark.unregistered.value,
                note=note.strip(),
                name=values["name"],
                sex=values["sex"],
                birth_date=values["birth_date"],
                state=RollState.waiting.value,
                due_on=due_date(now),
                marked_by=principal.account_id,
                marked_at=now,
                updated_at=now,
            )
        ).returning(RollEntry.id)
        entry_id: int = rows[0]["id"]
        # the child's name and birth date are not personal data the masks cover; the audit
        # keeps that a child was added, not who
        await audit.record(actor, "roll_add_unregistered", "roll_entry", entry_id)
        await _tell_registrars(outbox, klass["school"], entry_id)
    queue_totals.forget()
    return await _entry(entry_id)


_ENTRY_COLUMNS: tuple[Any, ...] = (
    *RollEntry.all_columns(),
    RollEntry.student.name.as_alias("student_name"),
    RollEntry.school.name.as_alias("school_name"),
    RollEntry.school_class.name.as_alias("class_name"),
    RollEntry.problem_case.state.as_alias("problem_case_state"),
    RollEntry.problem_case.reason.as_alias("problem_case_reason"),
)


async def _entry(entry_id: int) -> dict[str, Any]:
    row = await RollEntry.select(*_ENTRY_COLUMNS).where(RollEntry.id == entry_id).first()
    if row is None:
        raise NotFound()
    return dict(row)


async def get_entry(principal: Principal, actor: Actor, entry_id: int) -> dict[str, Any]:
    await get_scoped(
        actor, principal.scope, RollEntry, RollEntry.id == entry_id, "roll_entry", entry_id
    )
    return await _entry(entry_id)


@dataclass(frozen=True, slots=True)
class EntryFilter:
    campaign_id: int | None = None
    state: RollState | None = None
    mark: RollMark | None = None
    school_id: int | None = None
    class_id: int | None = None


async def list_entries(
    principal: Principal, found: EntryFilter, page: int, page_size: int
) -> Page[dict[str, Any]]:
    """Roll entries in the caller's scope; `state=waiting` is the registrar's queue."""
    w = window(page, page_size)
    where: Any = RollEntry.id > 0
    if found.campaign_id is not None:
        where &= RollEntry.campaign == found.campaign_id
    if found.state is not None:
        where &= RollEntry.state == found.state.value
    if found.mark is not None:
        where &= RollEntry.mark == found.mark.value
    if found.school_id is not None:
        where &= RollEntry.school == found.school_id
    if found.class_id is not None:
        where &= RollEntry.school_class == found.class_id
    query = scoped(RollEntry.select(*_ENTRY_COLUMNS).where(where), principal.scope, RollEntry)
    rows = await query.order_by(RollEntry.id).limit(w.size).offset(w.offset)
    total = await scoped(RollEntry.count().where(where), principal.scope, RollEntry)
    return w.page([dict(r) for r in rows], int(total))


async def _waiting_entry(principal: Principal, actor: Actor, entry_id: int) -> dict[str, Any]:
    require(principal, Action.decide_roll_entry)
    entry = await get_scoped(
        actor, principal.scope, RollEntry, RollEntry.id == entry_id, "roll_entry", entry_id
    )
    if entry["state"] != RollState.waiting.value:
        raise RollEntryNotWaiting()
    return entry


async def decide(
    principal: Principal, actor: Actor, entry_id: int, outcome: RollOutcome, reason: str
) -> dict[str, Any]:
    """The registrar's decision on a mismatch: on a record not here, what the school does
    (`delete` starts the problem-record deletion, in the same transaction; the others are
    recorded); on an unregistered child, `reject` with a reason."""
    entry = await _waiting_entry(principal, actor, entry_id)
    if outcome not in OUTCOMES_FOR[RollMark(entry["mark"])]:
        raise OutcomeNotAllowed(field_errors={"outcome": OutcomeNotAllowed.message})
    reason = reason.strip()
    if outcome is RollOutcome.reject and not reason:
        raise BadRequest(
            "请填写理由", code="reason_required", field_errors={"reason": "不予登记须说明理由"}
        )
    now = _now()
    to = RollState.rejected if outcome is RollOutcome.reject else RollState.handled
    async with transaction():
        if not await ROLL_STATE.move(
            entry_id,
            to,
            sources={RollState.waiting},
            values={
                RollEntry.outcome: outcome.value,
                RollEntry.decided_reason: reason,
                RollEntry.decided_by: principal.account_id,
                RollEntry.decided_at: now,
                RollEntry.updated_at: now,
            },
        ):
            raise RollEntryNotWaiting()
        after: dict[str, Any] = {"outcome": outcome.value}
        if outcome is RollOutcome.delete:
            after["problem_case"] = await _start_deletion(principal, actor, entry, reason, now)
        await audit.record(actor, "roll_decide", "roll_entry", entry_id, after=after)
    queue_totals.forget()
    return await _entry(entry_id)


async def _start_deletion(
    principal: Principal, actor: Actor, entry: Mapping[str, Any], reason: str, now: datetime
) -> int:
    """The problem-record deletion of a record not here, as the registrar would start it from
    the problem list: the record's `roll_not_here` case (opened, or opened again if an earlier
    one was resolved or corroborated) and its `delete` action, whose review by the authority
    decides. The case's id; inside the decision's transaction (409 `case_not_open` if the
    case is under review already)."""
    student_id = entry["student"]
    why = REASON_LABEL[AbsenceReason(entry["reason"])] if entry["reason"] else "原因未填"
    detail = f"班级名册核对：不在班（{why}）"
    place = await place_of(student_id)
    kind = CaseKind.roll_not_here.value
    await ProblemCase.insert(
        ProblemCase(
            student=student_id,
            school=place.school_id,
            school_class=place.class_id,
            region_code=place.region_code,
            kind=kind,
            source=CaseSource.roll.value,
            detail=detail,
            due_on=due_date(now),
            created_at=now,
            updated_at=now,
        )
    ).on_conflict(target=(ProblemCase.student, ProblemCase.kind), action="DO NOTHING")
    case = (
        await ProblemCase.select(ProblemCase.id, ProblemCase.state)
        .where((ProblemCase.student == student_id) & (ProblemCase.kind == kind))
        .first()
    )
    assert case is not None
    case_id: int = case["id"]
    if case["state"] in (CaseState.resolved.value, CaseState.corroborated.value):
        await CASE_STATE.move(
            case_id,
            CaseState.open,
            values={
                ProblemCase.detail: detail,
                ProblemCase.reason: "",
                ProblemCase.due_on: due_date(now),
                ProblemCase.resolved_at: None,
                ProblemCase.updated_at: now,
            },
        )
    teacher_note = f"班主任备注：{entry['note']}" if entry["note"] else ""
    note = "；".join(part for part in (detail, teacher_note, reason) if part)
    await problems.act(principal, actor, case_id, problems.ActionIn(ActionKind.delete, note))
    await RollEntry.update({RollEntry.problem_case: case_id}).where(RollEntry.id == entry["id"])
    return case_id


async def register(
    principal: Principal, actor: Actor, entry_id: int, more: Mapping[str, object]
) -> dict[str, Any]:
    """Register an unregistered child: a new record of the entry's class with the entry's
    name, sex and birth date and `more` catalog fields (the required ones among them),
    written through the one write path (created, flagged, audited). The entry."""
    entry = await _waiting_entry(principal, actor, entry_id)
    if entry["mark"] != RollMark.unregistered.value:
        raise OutcomeNotAllowed()
    fields = _record_fields(entry, more)
    school = await School.select(School.code).where(School.id == entry["school"]).first()
    assert school is not None
    number = registry_number_for(
        fields.get("id_type"),
        fields.get("id_number"),
        school["code"],
        fields["name"],
        fields["birth_date"],
    )
    now = _now()
    async with transaction():
        # claim the entry first: a second registrar at the same moment waits on its row and
        # is answered 409 here, before writing a second record
        if not await ROLL_STATE.move(
            entry_id,
            RollState.registered,
            sources={RollState.waiting},
            values={
                RollEntry.decided_by: principal.account_id,
                RollEntry.decided_at: now,
                RollEntry.updated_at: now,
            },
        ):
            raise RollEntryNotWaiting()
        if await Student.exists().where(
            (Student.school == entry["school"]) & (Student.registry_number == number)
        ):
            raise RegistryNumberTaken()
        record = RecordIn(
            number, entry["school"], entry["school_class"], entry["region_code"], fields
        )
        summary = await write_records(actor, [record])
        student_id = summary.student_ids[0]
        await RollEntry.update({RollEntry.registered_student: student_id}).where(
            RollEntry.id == entry_id
        )
        # the child sits in the room: the new record is marked here, so the class stays checked
        await RollEntry.insert(
            RollEntry(
                campaign=entry["campaign"],
                school=entry["school"],
                school_class=entry["school_class"],
                region_code=entry["region_code"],
                student=student_id,
                mark=RollMark.here.value,
                state=RollState.settled.value,
                marked_by=principal.account_id,
                marked_at=now,
                updated_at=now,
            )
        )
        await audit.record(
            actor, "roll_register", "roll_entry", entry_id, after={"student": student_id}
        )
    queue_totals.forget()
    return await _entry(entry_id)


def _record_fields(entry: Mapping[str, Any], more: Mapping[str, object]) -> dict[str, str]:
    raw: dict[str, object] = {**more, **{code: entry[code] for code in UNREGISTERED_FIELDS}}
    unknown = sorted(code for code in raw if code not in BY_CODE)
    if unknown:
        raise BadRequest(
            "没有这个学籍字段",
            code="unknown_field",
            field_errors={f"fields.{code}": "没有这个学籍字段" for code in unknown},
        )
    fields: dict[str, str] = {}
    errors: dict[str, str] = {}
    for field in FIELDS:
        if field.code not in raw and not field.required:
            continue
        try:
            value = clean(field, raw.get(field.code))
        except InvalidValue as exc:
            errors[f"fields.{field.code}"] = str(exc)
            continue
        if value:
            fields[field.code] = value
    if errors:
        raise BadRequest(next(iter(errors.values())), code="invalid_value", field_errors=errors)
    return fields


# -- progress -------------------------------------------------------------------------------


@dataclass
class Progress:
    """How far the roll check is in some schools: classes with records on the roll, those
    whose every record is marked, and the mismatches found (and still waiting)."""

    classes: int = 0
    classes_checked: int = 0
    records: int = 0
    marked: int = 0
    not_here: int = 0
    unregistered: int = 0
    waiting: int = 0

    def add(self, other: Progress) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


async def progress_by_school(
    principal: Principal, campaign_id: int, region_code: str | None = None
) -> dict[int, Progress]:
    """The campaign's roll progress per school in the caller's scope (narrowed to a region
    inside it with `region_code`): two grouped statements."""
    inside, inside_args = in_scope_sql(principal.scope, "s", student="id")
    region, region_args = _region_sql("s", region_code)
    classes = await fetch_rows(
        f"""
SELECT s.school, s.school_class, COUNT(*) AS records, COUNT(r.id) AS marked
FROM student s
LEFT JOIN roll_entry r ON r.student = s.id AND r.campaign = {{}}
WHERE {ON_ROLL_SQL.format(a="s")} AND {inside}{region}
GROUP BY s.school, s.school_class""",
        campaign_id,
        *inside_args,
        *region_args,
    )
    found: dict[int, Progress] = {}
    for row in classes:
        records, marked = int(row["records"]), int(row["marked"])
        p = found.setdefault(row["school"], Progress())
        p.classes += 1
        p.classes_checked += 1 if marked == records else 0
        p.records += records
        p.marked += marked
    inside, inside_args = in_scope_sql(principal.scope, "r")
    region, region_args = _region_sql("r", region_code)
    mismatches = await fetch_rows(
        f"""
SELECT r.school, r.mark, r.state, COUNT(*) AS n
FROM roll_entry r
WHERE r.campaign = {{}} AND r.mark <> 'here' AND {inside}{region}
GROUP BY r.school, r.mark, r.state""",
        campaign_id,
        *inside_args,
        *region_args,
    )
    for row in mismatches:
        p = found.setdefault(row["school"], Progress())
        n = int(row["n"])
        if row["mark"] == RollMark.not_here.value:
            p.not_here += n
        else:
            p.unregistered += n
        if row["state"] == RollState.waiting.value:
            p.waiting += n
    return found


def _region_sql(alias: str, region_code: str | None) -> tuple[str, tuple[Any, ...]]:
    if region_code is None:
        return "", ()
    prefix = region_prefix(region_code)  # whole levels: 33, 3301, 330106
    return (
        f" AND {alias}.region_code >= {{}} AND {alias}.region_code <= {{}}",
        (prefix.ljust(6, "0"), prefix.ljust(6, "9")),
    )


async def campaign_for_progress(
    principal: Principal, actor: Actor, campaign_id: int
) -> dict[str, Any]:
    """The campaign, if the caller's scope overlaps its region (404 otherwise, audited)."""
    return await get_scoped(
        actor, principal.scope, Campaign, Campaign.id == campaign_id, "campaign", campaign_id
    )

"""HTTP for the class roll (人籍一致): a class's roll in a campaign, its teacher's marks and the
children without a record, the registrar's queue of mismatches and their decisions, and the
progress per school and region."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from backend.accounts.permissions import Action
from backend.accounts.tables import School
from backend.deps import ActorDep, IdFilter, OutboxDep, PrincipalDep
from backend.http import allowed
from backend.openapi import BY_ID, JSON_BODY, QUERY, SIGNED_IN, STAFF, errors
from backend.pages import DEFAULT_PAGE_SIZE, Page, PageNumber, PageSize, window
from backend.records import roll
from backend.records import roll_waiting as _lists_mismatches_in_the_queue  # noqa: F401
from backend.records.holds import CHANGE_OPEN_LABEL
from backend.records.roll_schemas import (
    ClassRollRead,
    MarkWrite,
    RegistrationWrite,
    RollChangingRead,
    RollDecisionWrite,
    RollEntryRead,
    RollProgressRead,
    RollRecordRead,
    SchoolRollProgressRead,
    UnregisteredWrite,
    entry_read,
)
from backend.records.roll_tables import RollMark, RollState

RegionFilter = Annotated[str | None, QueryParameter(pattern=r"^\d{6}$")]


def _class_roll(found: roll.ClassRoll) -> ClassRollRead:
    records = [
        RollRecordRead(
            student_id=r["student_id"],
            name=r["name"],
            sex=r["sex"],
            birth_date=r["birth_date"],
            mark=RollMark(r["entry"]["mark"]) if r["entry"] else None,
            entry=entry_read(r["entry"]) if r["entry"] else None,
        )
        for r in found.records
    ]
    return ClassRollRead(
        campaign_id=found.campaign_id,
        class_id=found.klass["id"],
        class_name=found.klass["name"],
        school_id=found.klass["school"],
        records=len(found.records),
        marked=found.marked,
        checked=found.checked,
        roll=records,
        unregistered=[entry_read(e) for e in found.unregistered],
        changing=[RollChangingRead(**r, label=CHANGE_OPEN_LABEL) for r in found.changing],
        changing_label=CHANGE_OPEN_LABEL,
    )


def _progress(p: roll.Progress) -> dict[str, int]:
    return {name: getattr(p, name) for name in roll.Progress.__dataclass_fields__}


class ClassRollController(Controller):
    path = "/campaigns/{campaign_id:int}/classes/{class_id:int}/roll"
    tags = ["class roll"]
    guards = [allowed(Action.use_staff_api)]

    @get(
        "/",
        summary="Read a class's roll",
        operation_id="getClassRoll",
        responses=errors(SIGNED_IN, STAFF, BY_ID),
    )
    async def read(
        self,
        campaign_id: FromPath[int],
        class_id: FromPath[int],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> ClassRollRead:
        """The class's records on the roll, each with its mark in the campaign (none yet:
        `mark` null), and the children without a record its teacher added; `checked` once
        every record is marked. Records in the middle of a status change (a transfer …) are
        listed apart in `changing` (heading `changing_label`, 异动办理中): checked once the
        change is done, neither marked nor missing.

        **Who may call**: staff whose scope holds the class (its teacher, the school's staff,
        the authorities above).

        **Errors**: `not_found` (404) for a class outside the caller's scope (audited) or a
        campaign that does not cover it."""
        return _class_roll(await roll.class_roll(principal, actor, campaign_id, class_id))

    @put(
        "/records/{student_id:int}",
        status_code=HTTP_200_OK,
        summary="Mark a record here or not here",
        operation_id="markRollRecord",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            BY_ID,
            {
                400: "reason_required invalid_mark",
                403: "roll_markers_only",
                409: "campaign_not_open roll_entry_decided record_change_open",
            },
        ),
    )
    async def mark(
        self,
        campaign_id: FromPath[int],
        class_id: FromPath[int],
        student_id: FromPath[int],
        data: JSONBody[MarkWrite],
        principal: PrincipalDep,
        actor: ActorDep,
        outbox: OutboxDep,
    ) -> RollEntryRead:
        """Mark one record of the class: `here` (the child sits in the room) or `not_here`
        with a `reason` (left, transferred, suspended, never came, other), which goes to the
        school registrar's queue (its registrars are told: `roll_mismatch`). Marking again
        replaces the mark until the registrar decided. Only while the campaign runs. Audited.

        **Who may call**: the class's teacher; the school's registrar.

        **Errors**: `reason_required` (400) for `not_here` without a reason; `invalid_mark`
        (400) for `unregistered` (added with `POST .../unregistered`); `roll_markers_only`
        (403); `not_found` (404) for a class or record outside the caller's scope (audited),
        or a record not of this class; `campaign_not_open` (409) outside the campaign's
        window; `roll_entry_decided` (409) once the registrar decided; `record_change_open`
        (409) for a record in the middle of a status change (listed apart, checked once it
        is done)."""
        entry = await roll.mark(
            principal,
            actor,
            outbox,
            campaign_id,
            class_id,
            student_id,
            data.mark,
            data.reason,
            data.note,
        )
        return entry_read(entry)

    @post(
        "/unregistered",
        status_code=HTTP_201_CREATED,
        summary="Add a child without a record",
        operation_id="addUnregisteredChild",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            BY_ID,
            {400: "invalid_value", 403: "roll_markers_only", 409: "campaign_not_open"},
        ),
    )
    async def add_unregistered(
        self,
        campaign_id: FromPath[int],
        class_id: FromPath[int],
        data: JSONBody[UnregisteredWrite],
        principal: PrincipalDep,
        actor: ActorDep,
        outbox: OutboxDep,
    ) -> RollEntryRead:
        """A child sitting in the room who has no record (在班未建学籍), with name, sex and
        birth date as the field catalog checks them: it goes to the school registrar's queue
        to be registered. Only while the campaign runs. Audited.

        **Who may call**: the class's teacher; the school's registrar.

        **Errors**: `invalid_value` (400) for a name, sex or birth date the catalog refuses
        (`field_errors` by field); `roll_markers_only` (403); `not_found` (404) for a class
        outside the caller's scope (audited); `campaign_not_open` (409)."""
        child = {"name": data.name, "sex": data.sex, "birth_date": data.birth_date}
        entry = await roll.add_unregistered(
            principal, actor, outbox, campaign_id, class_id, child, data.note
        )
        return entry_read(entry)


class RollProgressController(Controller):
    path = "/campaigns/{campaign_id:int}/roll-progress"
    tags = ["class roll"]
    guards = [allowed(Action.use_staff_api)]

    @get(
        "/",
        summary="Read the roll check's progress",
        operation_id="getRollProgress",
        responses=errors(SIGNED_IN, STAFF, QUERY, BY_ID),
    )
    async def total(
        self,
        campaign_id: FromPath[int],
        principal: PrincipalDep,
        actor: ActorDep,
        region_code: RegionFilter = None,
        school_id: IdFilter = None,
    ) -> RollProgressRead:
        """How far the campaign's roll check is in the caller's scope (or a region or school
        inside it): classes with records on the roll and those checked (every record
        marked), records marked, mismatches found (not here, unregistered) and those still
        waiting on a registrar.

        **Who may call**: staff; each counts its own scope.

        **Errors**: `not_found` (404) for a campaign the caller's scope does not overlap
        (audited); `validation_error` (400) for a malformed `region_code`."""
        await roll.campaign_for_progress(principal, actor, campaign_id)
        found = await roll.progress_by_school(principal, campaign_id, region_code)
        total = roll.Progress()
        for school, p in found.items():
            if school_id is None or school == school_id:
                total.add(p)
        return RollProgressRead(**_progress(total))

    @get(
        "/schools",
        summary="List the roll check's progress by school",
        operation_id="listRollProgressBySchool",
        responses=errors(SIGNED_IN, STAFF, QUERY, BY_ID),
    )
    async def by_school(
        self,
        campaign_id: FromPath[int],
        principal: PrincipalDep,
        actor: ActorDep,
        region_code: RegionFilter = None,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[SchoolRollProgressRead]:
        """The campaign's roll progress of each school in the caller's scope (or a region
        inside it) with records on the roll, schools with the most mismatches still waiting
        first.

        **Who may call**: staff; each sees its own scope.

        **Errors**: `not_found` (404) for a campaign the caller's scope does not overlap
        (audited); `validation_error` (400) for a malformed `region_code`."""
        await roll.campaign_for_progress(principal, actor, campaign_id)
        found = await roll.progress_by_school(principal, campaign_id, region_code)
        w = window(page, page_size)
        order = sorted(found, key=lambda school: (-found[school].waiting, school))
        chosen = order[w.offset : w.offset + w.size]
        schools = {
            row["id"]: row
            for row in await School.select(School.id, School.name, School.region_code).where(
                School.id.is_in(chosen or [0])
            )
        }
        items = [
            SchoolRollProgressRead(
                **_progress(found[school]),
                school_id=school,
                school_name=schools[school]["name"],
                region_code=schools[school]["region_code"],
            )
            for school in chosen
        ]
        return w.page(items, len(order))


class RollEntryController(Controller):
    path = "/roll-entries"
    tags = ["class roll"]
    guards = [allowed(Action.use_staff_api)]

    @get(
        "/",
        summary="List roll entries",
        operation_id="listRollEntries",
        responses=errors(SIGNED_IN, STAFF, QUERY),
    )
    async def list_entries(
        self,
        principal: PrincipalDep,
        campaign_id: IdFilter = None,
        entry_state: Annotated[RollState | None, QueryParameter(name="state")] = None,
        mark: FromQuery[RollMark | None] = None,
        school_id: IdFilter = None,
        class_id: IdFilter = None,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[RollEntryRead]:
        """Roll entries in the caller's scope, oldest first; `state=waiting` is the
        registrar's queue of mismatches (records not here, children without a record).

        **Who may call**: staff; each sees its own scope (a teacher their class).

        **Errors**: `validation_error` (400) for a `state` or `mark` outside the listed
        values."""
        found = await roll.list_entries(
            principal,
            roll.EntryFilter(campaign_id, entry_state, mark, school_id, class_id),
            page,
            page_size,
        )
        return Page([entry_read(r) for r in found.items], found.page, found.page_size, found.total)

    @get(
        "/{entry_id:int}",
        summary="Read a roll entry",
        operation_id="getRollEntry",
        responses=errors(SIGNED_IN, STAFF, BY_ID),
    )
    async def read(
        self, entry_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> RollEntryRead:
        """One roll entry with its decision, its due date while it waits, and for a deletion
        the problem-record case it started and where that stands.

        **Who may call**: staff whose scope holds it.

        **Errors**: `not_found` (404) outside the caller's scope (audited)."""
        return entry_read(await roll.get_entry(principal, actor, entry_id))

    @post(
        "/{entry_id:int}/decision",
        status_code=HTTP_200_OK,
        summary="Decide a roll mismatch",
        operation_id="decideRollEntry",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            BY_ID,
            {
                400: "outcome_not_allowed reason_required",
                403: "roll_registrar_only",
                409: "roll_entry_not_waiting case_not_open record_change_open",
            },
        ),
    )
    async def decide(
        self,
        entry_id: FromPath[int],
        data: JSONBody[RollDecisionWrite],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> RollEntryRead:
        """The registrar's decision on a mismatch waiting in the queue. A record not here:
        `delete` starts the problem-record deletion in the same transaction (a case of kind
        `roll_not_here` and its `delete` action, reviewed by the authority administering the
        school; the entry answers `problem_case_id` and the case's state, which it follows);
        `transfer` and `suspend` are recorded only (no such procedure in the service yet);
        `keep`: the child studies here after all. A child without a record: `reject`, with a
        `reason` (registering is `POST /roll-entries/{entry_id}/registration`). Audited.

        **Who may call**: the school's registrar.

        **Errors**: `outcome_not_allowed` (400) for an outcome the kind of mismatch does not
        take; `reason_required` (400) to reject without a reason; `roll_registrar_only`
        (403); `not_found` (404) outside the caller's scope (audited);
        `roll_entry_not_waiting` (409) for an entry already decided or needing nothing (or
        decided a moment ago by another registrar); `case_not_open` (409) for a record whose
        roll deletion is already under review; `record_change_open` (409) to delete a record
        while a status change (a transfer …) is open on it."""
        return entry_read(await roll.decide(principal, actor, entry_id, data.outcome, data.reason))

    @post(
        "/{entry_id:int}/registration",
        status_code=HTTP_201_CREATED,
        summary="Register a child without a record",
        operation_id="registerRollEntry",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            BY_ID,
            {
                400: "invalid_value unknown_field outcome_not_allowed",
                403: "roll_registrar_only",
                409: "roll_entry_not_waiting registry_number_taken",
            },
        ),
    )
    async def register(
        self,
        entry_id: FromPath[int],
        data: JSONBody[RegistrationWrite],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> RollEntryRead:
        """The registrar registers a child the teacher found without a record: a new record
        of the entry's class with its name, sex and birth date and the other `fields` given
        (by catalog code; `ethnicity`, `nationality` and `id_type` required), written like
        every record (checked for ID problems, audited). Its registry number is G + the ID
        number for a resident ID card, otherwise a J number; a child without a resident ID
        number then needs the proof (`POST /students/{student_id}/id-proof`). Audited.

        **Who may call**: the school's registrar.

        **Errors**: `invalid_value` (400) for a value the catalog refuses, a required field
        missing (`field_errors` by `fields.<code>`); `unknown_field` (400);
        `outcome_not_allowed` (400) for a record marked not here; `roll_registrar_only`
        (403); `not_found` (404) outside the caller's scope (audited);
        `roll_entry_not_waiting` (409); `registry_number_taken` (409) when the school
        already holds a record with the same registry number."""
        return entry_read(await roll.register(principal, actor, entry_id, data.fields))


ROUTES: list[Any] = [ClassRollController, RollProgressController, RollEntryController]

"""HTTP for problem records (问题学籍): cases, the school's actions with evidence, national
arbitration, counts, and the national system's list. Decisions on actions go through
`POST /review-steps/{step_id}/decision` like every review step."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from backend.accounts.permissions import Action
from backend.deps import ActorDep, IdFilter, PrincipalDep, StorageDep
from backend.errors import BadRequest, PayloadTooLarge
from backend.http import allowed
from backend.masking import mask_text
from backend.openapi import BY_ID, JSON_BODY, QUERY, SIGNED_IN, STAFF, UPLOAD, errors
from backend.pages import DEFAULT_PAGE_SIZE, Page, PageNumber, PageSize
from backend.records import national_list, problem_imports, problem_reads, problems
from backend.records.evidence import EvidencePhoto, store_photos
from backend.records.importer import MAX_BYTES, ImportFileError
from backend.records.problem_schemas import (
    ACTION_LABEL,
    CASE_STATE_LABEL,
    ActionCreate,
    ActionRead,
    ArbitrationWrite,
    CaseDetail,
    CaseRead,
    CountGroupRead,
    CountsRead,
    EvidenceRead,
    GroupKind,
    KindCount,
    ListReport,
    ListUpload,
    RowErrorRead,
)
from backend.records.problem_tables import ActionKind, CaseKind, CaseState
from backend.records.review_schemas import step_read
from backend.records.review_tables import EvidenceKind

MAX_LIST_BYTES = MAX_BYTES


def _case_fields(row: dict[str, Any]) -> dict[str, Any]:
    kind = CaseKind(row["kind"])
    state = CaseState(row["state"])
    return {
        "id": row["id"],
        "student_id": row["student"],
        "student_name": row["student_name"],
        "registry_number": row["registry_number"],
        "id_number": row["id_number"],
        "school_id": row["school"],
        "school_name": row["school_name"],
        "class_id": row["school_class"],
        "region_code": row["region_code"],
        "kind": kind,
        "kind_label": row["kind_label"],
        "source": row["source"],
        "state": state,
        "state_label": CASE_STATE_LABEL[state],
        "detail": mask_text(row["detail"]) if row["detail"] else row["detail"],
        "reason": row["reason"],
        "due_on": row["due_on"],
        "allowed_actions": (
            sorted(problems.ACTIONS_FOR[kind])
            if state in (CaseState.open, CaseState.sent_back)
            else []
        ),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def _action(row: dict[str, Any]) -> ActionRead:
    kind = ActionKind(row["action"])
    return ActionRead(
        id=row["id"],
        action=kind,
        action_label=ACTION_LABEL[kind],
        state=row["state"],
        note=row["note"],
        change_request_id=row["change_request"],
        keep_school_id=row["keep_school"],
        reason=row["decided_reason"],
        evidence=[EvidenceRead(e["id"], e["kind"]) for e in row["evidence"]],
        steps=[step_read(s) for s in row["steps"]],
        created_at=row["created_at"],
    )


def _counts(kinds: dict[CaseKind, int]) -> list[KindCount]:
    return [
        KindCount(kind, problems.KIND_LABEL[kind], kinds[kind])
        for kind in CaseKind
        if kind in kinds
    ]


class ProblemCaseController(Controller):
    path = "/problem-cases"
    tags = ["problem records"]
    guards = [allowed(Action.use_staff_api)]

    @get(
        "/",
        summary="List problem records",
        operation_id="listProblemCases",
        responses=errors(SIGNED_IN, STAFF, QUERY),
    )
    async def list_cases(
        self,
        principal: PrincipalDep,
        kind: FromQuery[CaseKind | None] = None,
        case_state: Annotated[CaseState | None, QueryParameter(name="state")] = None,
        open_only: FromQuery[bool] = False,
        school_id: IdFilter = None,
        student_id: IdFilter = None,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[CaseRead]:
        """Problem records (问题学籍) in the caller's scope, by kind, state, school or student;
        `open_only` keeps those still to handle (open, in review, sent back, in arbitration).
        Sorted by the school's due date. ID and registry numbers masked.

        **Who may call**: staff; each sees its own scope (a teacher their class).

        **Errors**: `validation_error` (400) for a `kind` or `state` outside the listed
        values."""
        found = await problem_reads.list_cases(
            principal,
            problem_reads.CaseFilter(kind, case_state, open_only, school_id, student_id),
            page,
            page_size,
        )
        return Page(
            [CaseRead(**_case_fields(r)) for r in found.items],
            found.page,
            found.page_size,
            found.total,
        )

    @get(
        "/counts",
        summary="Count open problem records",
        operation_id="countProblemCases",
        responses=errors(SIGNED_IN, STAFF, QUERY, BY_ID),
    )
    async def counts(
        self,
        principal: PrincipalDep,
        actor: ActorDep,
        region_code: FromQuery[str | None] = None,
        school_id: IdFilter = None,
    ) -> CountsRead:
        """Open problem records (open, in review, sent back, in arbitration) by kind, for the
        caller's scope, or for a region (`region_code`, e.g. `330106`) or school inside it. A
        region's counts are grouped by its child regions (a province's by city, a city's by
        county), a county's by school.

        **Who may call**: staff; each counts its own scope.

        **Errors**: `not_found` (404) for a region or school outside the caller's scope
        (audited)."""
        if region_code is not None and not (len(region_code) == 6 and region_code.isdigit()):
            raise BadRequest(
                "地区代码应为6位数字",
                code="validation_error",
                field_errors={"region_code": "地区代码应为6位数字"},
            )
        found = await problem_reads.counts(
            principal, actor, region_code=region_code, school_id=school_id
        )
        return CountsRead(
            region_code=found.region_code,
            school_id=found.school_id,
            total=sum(found.by_kind.values()),
            kinds=_counts(found.by_kind),
            groups_are=GroupKind(found.groups_are),
            groups=[
                CountGroupRead(g.key, g.name, sum(g.by_kind.values()), _counts(g.by_kind))
                for g in found.groups
            ],
        )

    @get(
        "/{case_id:int}",
        summary="Read a problem record",
        operation_id="getProblemCase",
        responses=errors(SIGNED_IN, STAFF, BY_ID),
    )
    async def get_case(
        self, case_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> CaseDetail:
        """One problem record with every action taken on it, its evidence (photos: `GET` the
        evidence by id) and its review steps with their reasons. Audited.

        **Who may call**: staff whose scope holds the student.

        **Errors**: `not_found` (404) outside the caller's scope (audited)."""
        found = await problem_reads.get_case(principal, actor, case_id)
        return CaseDetail(**_case_fields(found), actions=[_action(a) for a in found["actions"]])

    @post(
        "/{case_id:int}/actions",
        status_code=HTTP_201_CREATED,
        summary="Act on a problem record",
        operation_id="actOnProblemCase",
        opt={"upload_noun": "佐证材料照片"},
        responses=errors(
            SIGNED_IN,
            STAFF,
            UPLOAD,
            BY_ID,
            {
                400: "evidence_incomplete evidence_required action_not_allowed note_required "
                "change_required invalid_value unknown_field no_change too_many_photos "
                "photo_empty photo_unsupported photo_damaged photo_truncated "
                "photo_too_many_pixels",
                403: "problem_registrar_only",
                409: "case_not_open record_change_open",
                413: "photo_too_large",
            },
        ),
    )
    async def act(
        self,
        case_id: FromPath[int],
        data: MultipartBody[ActionCreate],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
    ) -> CaseDetail:
        """The school's registrar handles a problem record: `delete` (the student is not at
        this school: once approved the record leaves the roll, kept for history; a `note` is
        required), `corroborate` (佐证: the record is right) or `change` (变更: a key-data
        change request of `field_code` to `new_value`). Corroborate and change need evidence:
        the school-stamped proof of enrolment (`enrolment_proof`) with the household register
        (`household_register`), or both sides of the ID card (`id_scan`), or the household
        registration office's receipt (`registration_receipt`). The authority administering
        the school reviews the action (`POST /review-steps/{step_id}/decision`); a change is
        reviewed as its change request. Works outside the corrections window: problem
        records keep their own deadline (10 working days per step). A case sent back or
        rejected is acted on again here. Audited.

        **Who may call**: the school's registrar.

        **Errors**: `evidence_incomplete` (400) without one of the evidence combinations;
        `evidence_required` (400) for a key-data change without `id_scan`;
        `action_not_allowed` (400) for an action the kind does not take (two records of one
        school cannot both be corroborated); `note_required`, `change_required` (400);
        `invalid_value`, `unknown_field`, `no_change` (400) for a change's value;
        `case_not_open` (409) for a case in review, corroborated, in arbitration or resolved;
        `record_change_open` (409) while a status change (a transfer …) is open on the record
        (the school it ends at acts); `problem_registrar_only` (403); `not_found` (404)
        outside the caller's scope; photo errors as for form photos (400, 413 `photo_too_large`)."""
        photos = [
            EvidencePhoto(kind, await upload.read())
            for kind in EvidenceKind
            for upload in getattr(data, kind.value) or []
        ]
        student_id = await problems.case_student(principal, actor, case_id)
        evidence = await store_photos(storage, student_id, photos)
        await problems.act(
            principal,
            actor,
            case_id,
            problems.ActionIn(data.action, data.note, evidence, data.field_code, data.new_value),
        )
        found = await problem_reads.get_case(principal, actor, case_id)
        return CaseDetail(**_case_fields(found), actions=[_action(a) for a in found["actions"]])

    @post(
        "/{case_id:int}/arbitration",
        status_code=HTTP_200_OK,
        summary="Arbitrate a duplicate problem record",
        operation_id="arbitrateProblemCase",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            BY_ID,
            {
                400: "invalid_keep_school",
                403: "national_only",
                409: "case_not_in_arbitration step_already_decided record_change_open",
            },
        ),
    )
    async def arbitrate(
        self,
        case_id: FromPath[int],
        data: JSONBody[ArbitrationWrite],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> CaseDetail:
        """National arbitration (教育部仲裁) of a duplicate both schools corroborated: names
        the school that keeps the record (`keep_school_id`); the other schools' records leave
        the roll (kept for history) and every case of the duplicate is resolved, with the
        reason. To refuse to arbitrate (the schools must act again), reject the arbitration
        step through `POST /review-steps/{step_id}/decision`. Audited.

        **Who may call**: a national-level account (a sysadmin with national scope).

        **Errors**: `national_only` (403); `case_not_in_arbitration` (409);
        `invalid_keep_school` (400) for a school that holds none of the duplicate's records;
        `step_already_decided` (409) when decided a moment ago; `record_change_open` (409)
        when a record to remove is in the middle of a status change; `not_found` (404)."""
        await problems.arbitrate(principal, actor, case_id, data.keep_school_id, data.reason)
        found = await problem_reads.get_case(principal, actor, case_id)
        return CaseDetail(**_case_fields(found), actions=[_action(a) for a in found["actions"]])


class ProblemListController(Controller):
    path = "/problem-lists"
    tags = ["problem records"]
    guards = [allowed(Action.use_staff_api)]

    @post(
        "/",
        status_code=HTTP_200_OK,
        summary="Import the national system's problem list",
        operation_id="importProblemList",
        request_max_body_size=MAX_LIST_BYTES + 64 * 1024,
        opt={"upload_noun": "文件"},
        responses=errors(
            SIGNED_IN,
            STAFF,
            UPLOAD,
            {
                400: "empty_file missing_columns legacy_xls unreadable_file undecodable_file "
                "too_many_rows",
                403: "authorities_only",
                413: "file_too_large",
            },
        ),
    )
    async def import_list(
        self, data: MultipartBody[ListUpload], principal: PrincipalDep, actor: ActorDep
    ) -> ListReport:
        """The national system's list of problem records (全国学籍系统下发的问题学籍名单), a
        CSV or XLSX as `multipart/form-data` with the file in the `file` part. Columns
        (header row, any order): 学校标识码, 学籍号 and/or 身份证件号, 姓名 (optional),
        问题类型 (身份证号不存在 / 姓名与身份证号不匹配 / 重复), 问题描述 (optional). Each row
        naming a student on the roll of a school in the caller's region opens a case for the
        school; rows that match nothing, or are incomplete, are reported with their row
        number and a Chinese message. Importing the same list again changes nothing. Audited.

        **Who may call**: a county reviewer, city or province admin, or a sysadmin, for the
        schools of their region.

        **Errors**: `missing_columns`, `empty_file`, `legacy_xls`, `unreadable_file`,
        `undecodable_file`, `too_many_rows` (400) for a file that cannot be read;
        `file_too_large` (413); `authorities_only` (403) for other roles."""
        problem_imports.require_importer(principal)
        content = await data.file.read()
        try:
            parsed = national_list.parse(content)
        except ImportFileError as exc:
            if exc.code == "file_too_large":
                raise PayloadTooLarge(exc.message, code=exc.code) from None
            raise BadRequest(exc.message, code=exc.code) from None
        report = await problem_imports.import_national_list(principal, actor, parsed)
        return ListReport(
            total_rows=report.total_rows,
            matched=report.matched,
            created=report.created,
            reopened=report.reopened,
            unchanged=report.unchanged,
            not_matched=report.not_matched,
            errors=[
                RowErrorRead(e.row, e.column, e.message)
                for e in sorted(report.errors, key=lambda e: e.row)
            ],
        )


ROUTES: list[Any] = [ProblemCaseController, ProblemListController]

"""HTTP for records: staff search and read students, reveal, import; parents read their
children."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Response, delete, get, patch, post, put
from litestar.datastructures import UploadFile
from litestar.openapi.spec import Example
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from backend.accounts.permissions import Action
from backend.deps import (
    ActorDep,
    IdFilter,
    OutboxDep,
    PrincipalDep,
    RedisDep,
    SettingsDep,
    StorageDep,
)
from backend.http import NO_STORE, allowed
from backend.openapi import BY_ID, JSON_BODY, QUERY, REDIS, SIGNED_IN, STAFF, UPLOAD, errors
from backend.pages import DEFAULT_PAGE_SIZE, Page, PageNumber, PageSize
from backend.records import (
    campaign_admin,
    campaign_reads,
    campaign_regions,
    forms,
    imports,
    read_rate,
    reads,
)
from backend.records.ids import ProblemKind
from backend.records.importer import MAX_BYTES as MAX_IMPORT_BYTES
from backend.records.schemas import (
    CampaignCreate,
    CampaignRead,
    CampaignUpdate,
    FormBatchCreate,
    FormBatchRead,
    FormBatchSummary,
    ImportRead,
    ImportStarted,
    RegionSettingRead,
    RegionSettingWrite,
    Revealed,
    RevealRequest,
    StudentDetail,
    StudentSummary,
)
from backend.records.tables import ImportStatus, StudentStatus


class StudentController(Controller):
    path = "/students"
    tags = ["records"]
    guards = [allowed(Action.use_staff_api)]

    @get(
        "/",
        summary="Search students",
        operation_id="listStudents",
        responses=errors(
            SIGNED_IN,
            STAFF,
            QUERY,
            {403: "identifier_search_forbidden", 429: "student_reads_throttled"},
        ),
    )
    async def list_students(
        self,
        principal: PrincipalDep,
        actor: ActorDep,
        redis: RedisDep,
        settings: SettingsDep,
        outbox: OutboxDep,
        q: FromQuery[str | None] = None,
        class_id: IdFilter = None,
        school_id: IdFilter = None,
        status: FromQuery[StudentStatus | None] = None,
        problem: FromQuery[ProblemKind | None] = None,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[StudentSummary]:
        """Students in the caller's scope, by name (`q`), class, school, status or problem;
        `q` may be a full registry number, ID number or phone only for a registrar and up
        (audited).

        **Who may call**: staff; each sees its own scope.

        **Errors**: `validation_error` (400) for a `status` or `problem` outside the listed
        values (the message names them); `identifier_search_forbidden` (403) for an
        identifier search below registrar; `student_reads_throttled` (429, `Retry-After`)
        the account read far more students this hour than its work explains."""
        found = await reads.list_students(
            principal,
            actor,
            q=q,
            class_id=class_id,
            school_id=school_id,
            status=status,
            problem=problem,
            page=page,
            page_size=page_size,
        )
        ids = [student.id for student in found.items]
        await read_rate.admit(redis, settings, outbox, principal, actor, ids)
        return found

    @get(
        "/{student_id:int}",
        summary="Read a student's record",
        operation_id="getStudent",
        responses=errors(SIGNED_IN, STAFF, BY_ID, {429: "student_reads_throttled"}),
    )
    async def get_student(
        self,
        student_id: FromPath[int],
        principal: PrincipalDep,
        actor: ActorDep,
        redis: RedisDep,
        settings: SettingsDep,
        outbox: OutboxDep,
    ) -> StudentDetail:
        """**Who may call**: staff whose scope holds the student.

        One student's full record, sensitive values masked (this read is audited).

        **Errors**: `not_found` (404) no such student in scope (audited); `forbidden` (403)
        a parent; `student_reads_throttled` (429, `Retry-After`) the account read far more
        students this hour than its work explains."""
        await read_rate.admit(redis, settings, outbox, principal, actor, [student_id])
        return await reads.get_student(principal, actor, student_id)

    @post(
        "/{student_id:int}/reveal",
        status_code=HTTP_200_OK,
        summary="Reveal one sensitive value in full",
        operation_id="revealStudentField",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            BY_ID,
            {400: "not_revealable", 403: "reveal_forbidden", 429: "student_reads_throttled"},
        ),
    )
    async def reveal(
        self,
        student_id: FromPath[int],
        data: JSONBody[RevealRequest],
        principal: PrincipalDep,
        actor: ActorDep,
        redis: RedisDep,
        settings: SettingsDep,
        outbox: OutboxDep,
    ) -> Revealed:
        """**Who may call**: a registrar or above, inside its scope.

        One sensitive value (ID number, phone, address; `field` is its code, e.g.
        `id_number`) in full; audited.

        **Errors**: `reveal_forbidden` (403) a teacher; `not_revealable` (400) not a masked
        field; `not_found` (404) no such student in scope; `validation_error` (400);
        `student_reads_throttled` (429, `Retry-After`) the account read far more students
        this hour than its work explains."""
        await read_rate.admit(redis, settings, outbox, principal, actor, [student_id])
        value = await reads.reveal(principal, actor, student_id, data.field)
        return Revealed(data.field, value)


@dataclass
class ImportUpload:
    file: UploadFile
    dry_run: bool = False


class ImportController(Controller):
    path = "/imports"
    tags = ["records"]
    guards = [allowed(Action.use_staff_api)]

    @post(
        "/",
        status_code=HTTP_202_ACCEPTED,
        summary="Import students from a spreadsheet",
        operation_id="createImport",
        request_max_body_size=MAX_IMPORT_BYTES + 64 * 1024,
        opt={
            "upload_noun": "文件",
            "too_large": imports.FileTooLarge,
        },
        responses=errors(
            SIGNED_IN,
            STAFF,
            UPLOAD,
            REDIS,
            {
                400: "invalid_characters empty_file",
                413: "file_too_large",
                429: "too_many_dry_runs",
            },
        ),
    )
    async def start(
        self,
        data: MultipartBody[ImportUpload],
        principal: PrincipalDep,
        actor: ActorDep,
        outbox: OutboxDep,
        redis: RedisDep,
        settings: SettingsDep,
    ) -> ImportStarted:
        """A CSV or XLSX of students, as `multipart/form-data` with the file in the `file`
        part; a background job reads it (poll `GET /imports/{job_id}`). A dry run
        (`dry_run=true`) checks the file and changes nothing (limited per hour, audited).
        New students are created; students already on the roll get their ordinary fields
        updated, while each changed key field (姓名, 性别, 出生日期, 民族, 身份证件号, …)
        becomes a key-data change request instead of a write (listed in the report).

        **Who may call**: a registrar (for its school), a county, city or province admin, or a
        sysadmin (not a school leader).

        **Errors**: `multipart_expected` (415) for any other kind of body; `file_too_large`
        (413); `empty_file` (400); `too_many_dry_runs` (429); `forbidden` (403) for other roles."""
        content = await data.file.read()
        job_id = await imports.start_import(
            principal,
            actor,
            redis,
            settings,
            data.file.filename or "import",
            content,
            data.dry_run,
            outbox,
        )
        return ImportStarted(job_id, ImportStatus.queued)

    @get(
        "/{job_id:int}",
        summary="Read an import's progress and report",
        operation_id="getImport",
        responses=errors(SIGNED_IN, STAFF, BY_ID, REDIS),
    )
    async def get(
        self, job_id: FromPath[int], principal: PrincipalDep, actor: ActorDep, redis: RedisDep
    ) -> ImportRead:
        """**Who may call**: staff whose scope holds the import.

        The import's state, progress and, once done, its report: rows with errors, or the
        `summary` — counts (`created`, `updated`, `unchanged`, `flagged`,
        `same_school_duplicates`, `key_changes`, `key_change_requests_created`), the rows
        repeating an ID number within their school (`same_school_duplicate_rows`) and the
        rows whose key fields wait for review as change requests (`key_change_rows`: per
        field its old and new value, masked, `request` created / already_waiting /
        would_create, and `request_id`).

        **Errors**: `not_found` (404) no such import in scope; `forbidden` (403);
        `service_unavailable` (503)."""
        return await imports.get_import(principal.scope, actor, redis, job_id)


RegionPath = Annotated[
    str,
    Parameter(
        pattern=r"^\d{6}$",
        description="the sub-region's 6-digit GB/T 2260 code",
        examples=[Example(value="330106")],
    ),
]


CAMPAIGN_REGION_ERRORS = {
    400: "bad_window",
    403: "campaign_county_cannot_set campaign_setting_not_below",
    409: "region_outside_campaign campaign_closed campaign_setting_wider",
}


class CampaignController(Controller):
    path = "/campaigns"
    tags = ["campaigns"]
    guards = [allowed(Action.use_staff_api)]

    @get(
        "/",
        summary="List the campaigns covering the caller's scope",
        operation_id="listCampaigns",
        responses=errors(SIGNED_IN, STAFF),
    )
    async def list_campaigns(self, principal: PrincipalDep) -> list[CampaignRead]:
        """Campaigns covering any part of the caller's scope (those of its region and the
        regions above it, and for region staff those below it), newest first, each with the
        region settings the caller may see and, in `effective`, what applies to the caller's
        own region.

        **Who may call**: any staff account.

        **Errors**: none beyond authentication."""
        return await campaign_reads.list_campaigns(principal.reach)

    @post(
        "/",
        summary="Open a campaign for a province",
        operation_id="createCampaign",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            BY_ID,
            {400: "bad_window", 403: "campaign_province_only", 409: "campaign_overlaps"},
        ),
    )
    async def create(
        self, data: JSONBody[CampaignCreate], principal: PrincipalDep, actor: ActorDep
    ) -> CampaignRead:
        """Open the data-quality check for the province (or one region of it) with its time
        window and its two switches, which hold in every sub-region the province or a city
        does not narrow. Audited.

        **Who may call**: a province admin for its province; a national sysadmin.

        **Errors**: `campaign_province_only` (403) for any other role; `not_found` (404) for
        a region outside the caller's scope; `bad_window` (400) when the end is not after
        the start; `campaign_overlaps` (409) when a campaign of the same region, or of a
        region containing or inside it, overlaps the window (the message names it and its
        dates)."""
        return await campaign_admin.create_campaign(principal, actor, data)

    @get(
        "/{campaign_id:int}",
        summary="Read a campaign",
        operation_id="getCampaign",
        responses=errors(SIGNED_IN, STAFF, BY_ID),
    )
    async def get_campaign(
        self, campaign_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> CampaignRead:
        """One campaign, its state, the region settings the caller may see and what applies
        to the caller's own region (`effective`).

        **Who may call**: any staff account whose scope the campaign covers.

        **Errors**: `not_found` (404) when it does not exist or covers nothing of the
        caller's scope (audited)."""
        return await campaign_reads.get_campaign(principal, actor, campaign_id)

    @patch(
        "/{campaign_id:int}",
        summary="Change a campaign",
        operation_id="updateCampaign",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            BY_ID,
            {
                400: "bad_window",
                403: "campaign_province_only campaign_above_scope",
                409: "campaign_closed campaign_overlaps",
            },
        ),
    )
    async def update(
        self,
        campaign_id: FromPath[int],
        data: JSONBody[CampaignUpdate],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> CampaignRead:
        """Rename it, move its window or flip its two switches (for the whole campaign;
        per sub-region see `setCampaignRegion`). Audited.

        **Who may call**: a province admin for its province's campaigns; a national sysadmin.

        **Errors**: `campaign_province_only` (403) for any other role;
        `campaign_above_scope` (403) for a campaign of a region above the caller's;
        `not_found` (404); `bad_window` (400); `campaign_closed` (409) once closed;
        `campaign_overlaps` (409) when the new window overlaps another campaign of a related
        region."""
        return await campaign_admin.update_campaign(principal, actor, campaign_id, data)

    @post(
        "/{campaign_id:int}/close",
        status_code=HTTP_200_OK,
        summary="Close a campaign now",
        operation_id="closeCampaign",
        responses=errors(
            SIGNED_IN,
            STAFF,
            BY_ID,
            {
                403: "campaign_province_only campaign_above_scope",
                409: "campaign_closed campaign_not_started campaign_ended",
            },
        ),
    )
    async def close(
        self, campaign_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> CampaignRead:
        """End the campaign now, for good: its window ends at this moment, nothing more is
        issued or uploaded for it, and families see no open check. Its forms and photos stay
        as the record's archive; the region is free for a new campaign from now. Audited.

        **Who may call**: a province admin for its province's campaigns; a national sysadmin.

        **Errors**: `campaign_province_only` (403) for any other role;
        `campaign_above_scope` (403) for a campaign of a region above the caller's;
        `not_found` (404); `campaign_closed` (409) when already closed;
        `campaign_not_started` (409) before its window (delete it instead); `campaign_ended`
        (409) after its window."""
        return await campaign_admin.close_campaign(principal, actor, campaign_id)

    @delete(
        "/{campaign_id:int}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a mistaken campaign",
        operation_id="deleteCampaign",
        responses=errors(
            SIGNED_IN,
            STAFF,
            BY_ID,
            {403: "campaign_province_only campaign_above_scope", 409: "campaign_has_forms"},
        ),
    )
    async def delete_campaign(
        self, campaign_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> None:
        """Delete a campaign opened by mistake, with its region settings, while no form of
        it has been printed. Audited.

        **Who may call**: a province admin for its province's campaigns; a national sysadmin.

        **Errors**: `campaign_province_only` (403) for any other role;
        `campaign_above_scope` (403) for a campaign of a region above the caller's;
        `not_found` (404); `campaign_has_forms` (409) once a class's forms were issued:
        close it instead."""
        await campaign_admin.delete_campaign(principal, actor, campaign_id)

    @put(
        "/{campaign_id:int}/regions/{region_code:str}",
        status_code=HTTP_200_OK,
        summary="Set a sub-region's window and switches",
        operation_id="setCampaignRegion",
        responses=errors(SIGNED_IN, STAFF, JSON_BODY, BY_ID, CAMPAIGN_REGION_ERRORS),
    )
    async def set_region(
        self,
        campaign_id: FromPath[int],
        region_code: RegionPath,
        data: JSONBody[RegionSettingWrite],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> RegionSettingRead:
        """Write the caller's level's word on one sub-region (notice 001, appendix 2: the
        province sets the window and the two switches per sub-region): a window inside the
        campaign's and switches that may turn off what is on above. A value left out leaves
        the level above's. It replaces this level's earlier word on the region; the other
        level's stays. What applies to a county is the campaign narrowed by every word on
        its chain (`effective`). Audited.

        **Who may call**: a province admin for any city or county of its province; a city
        admin for its counties, inside what the province allows; a national sysadmin (as
        the province). Never a county.

        **Errors**: `campaign_county_cannot_set` (403) for a county reviewer or school staff;
        `campaign_setting_not_below` (403) for the caller's own region or a province;
        `not_found` (404) for a campaign or region outside the caller's scope;
        `region_outside_campaign` (409); `campaign_closed` (409); `bad_window` (400);
        `campaign_setting_wider` (409) when a value would widen what the levels above allow
        (`field_errors` name each)."""
        return await campaign_regions.set_region(principal, actor, campaign_id, region_code, data)

    @delete(
        "/{campaign_id:int}/regions/{region_code:str}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Clear the caller's setting for a sub-region",
        operation_id="clearCampaignRegion",
        responses=errors(
            SIGNED_IN, STAFF, BY_ID, CAMPAIGN_REGION_ERRORS, {404: "no_region_setting"}
        ),
    )
    async def clear_region(
        self,
        campaign_id: FromPath[int],
        region_code: RegionPath,
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> None:
        """Take back the caller's level's word on a sub-region: the level above's applies
        again (another level's word on it stays). Audited.

        **Who may call**: as `setCampaignRegion`.

        **Errors**: as `setCampaignRegion`, and `no_region_setting` (404) when the caller's
        level set nothing for the region."""
        await campaign_regions.clear_region(principal, actor, campaign_id, region_code)


class FormController(Controller):
    tags = ["forms"]
    guards = [allowed(Action.use_staff_api)]

    @post(
        "/form-batches",
        status_code=HTTP_202_ACCEPTED,
        summary="Issue a class's forms",
        operation_id="createFormBatch",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            BY_ID,
            REDIS,
            {403: "registrar_only", 409: "outside_window class_empty"},
        ),
    )
    async def issue(
        self,
        data: JSONBody[FormBatchCreate],
        settings: SettingsDep,
        principal: PrincipalDep,
        actor: ActorDep,
        outbox: OutboxDep,
        redis: RedisDep,
    ) -> FormBatchRead:
        """Issue this campaign's confirmation forms for every enrolled student of a class; a
        job renders the printable PDF (poll `GET /form-batches/{batch_id}` until `pdf_ready`).
        Forms issued earlier in the campaign are superseded: their codes stop working.

        **Who may call**: the class's school registrar.

        **Errors**: `registrar_only` (403); `not_found` (404) for a class outside the caller's
        scope; `outside_window` (409) when the campaign is closed or forbids issuing forms;
        `class_empty` (409) for a class with no enrolled student."""
        batch_id = await forms.issue_class_forms(settings, principal, actor, outbox, data.class_id)
        return await forms.get_batch(principal.scope, actor, redis, batch_id)

    @get(
        "/form-batches",
        summary="List a class's form batches",
        operation_id="listFormBatches",
        responses=errors(SIGNED_IN, STAFF, QUERY, BY_ID),
    )
    async def list_batches(
        self,
        principal: PrincipalDep,
        actor: ActorDep,
        class_id: IdFilter = None,
        page: PageNumber = 1,
        page_size: PageSize = 50,
    ) -> Page[FormBatchSummary]:
        """The form batches issued in the caller's scope, newest first; `class_id` for one
        class's batches.

        **Who may call**: staff; each sees its own scope.

        **Errors**: `not_found` (404) for a `class_id` outside the caller's scope."""
        return await forms.list_batches(principal, actor, class_id, page, page_size)

    @get(
        "/form-batches/{batch_id:int}",
        summary="Read a form batch and its rendering progress",
        operation_id="getFormBatch",
        responses=errors(SIGNED_IN, STAFF, BY_ID, REDIS),
    )
    async def batch(
        self, batch_id: FromPath[int], principal: PrincipalDep, actor: ActorDep, redis: RedisDep
    ) -> FormBatchRead:
        """**Who may call**: staff whose scope holds the batch's class.

        The batch's forms and the PDF's rendering progress. `status`: `queued` (waiting, or
        between two tries after a storage fault), `running`, `done` (`pdf_ready`), or
        `failed` for good (after the last try; `message` says what to do: print the class
        again).

        **Errors**: `not_found` (404) no such batch in scope; `forbidden` (403);
        `service_unavailable` (503)."""
        return await forms.get_batch(principal.scope, actor, redis, batch_id)

    @get(
        "/form-batches/{batch_id:int}/pdf",
        media_type="application/pdf",
        summary="Download a form batch's printable PDF",
        operation_id="getFormBatchPdf",
        responses=errors(SIGNED_IN, STAFF, BY_ID, {403: "reveal_forbidden", 409: "pdf_not_ready"}),
        guards=[allowed(Action.read_printed_form)],
    )
    async def batch_pdf(
        self,
        batch_id: FromPath[int],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
    ) -> Response[bytes]:
        """**Who may call**: a registrar or above, inside its scope.

        A class's forms, every value in full, never cached; audited.

        **Errors**: `reveal_forbidden` (403) a teacher; `not_found` (404) no such batch in
        scope; `pdf_not_ready` (409) still rendering."""
        pdf = await forms.batch_pdf(principal.scope, actor, storage, batch_id)
        await reads.printed_in_full(actor, "form_batch", batch_id)
        return Response(pdf, media_type="application/pdf", headers=NO_STORE)

    @get(
        "/forms/{form_id:str}/png",
        media_type="image/png",
        summary="Download one printed form as an image",
        operation_id="getFormPng",
        responses=errors(SIGNED_IN, STAFF, BY_ID, {403: "reveal_forbidden"}),
        guards=[allowed(Action.read_printed_form)],
    )
    async def form_png(
        self,
        form_id: FromPath[str],
        settings: SettingsDep,
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> Response[bytes]:
        """**Who may call**: a registrar or above, inside its scope.

        One printed form (PNG), every value in full, never cached; audited.

        **Errors**: `reveal_forbidden` (403) a teacher; `not_found` (404) no such form in
        scope."""
        png = await forms.form_png(settings, principal.scope, actor, form_id)
        await reads.printed_in_full(actor, "issued_form", form_id)
        return Response(png, media_type="image/png", headers=NO_STORE)


ROUTES: list[Any] = [StudentController, ImportController, CampaignController, FormController]

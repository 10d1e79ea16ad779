"""HTTP for records: staff search and read students, reveal, import; parents read their
children."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Response, get, patch, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from backend.accounts.schemas import Page
from backend.deps import (
    ActorDep,
    ArqDep,
    IdFilter,
    PageNumber,
    PageSize,
    PrincipalDep,
    RedisDep,
    SettingsDep,
    StorageDep,
)
from backend.http import NO_STORE, requires_staff
from backend.openapi import BY_ID, JSON_BODY, QUERY, REDIS, SIGNED_IN, STAFF, UPLOAD, errors
from backend.records import campaigns, forms, imports, reads
from backend.records.ids import ProblemKind
from backend.records.schemas import (
    CampaignCreate,
    CampaignRead,
    CampaignUpdate,
    FormBatchRead,
    ImportRead,
    ImportStarted,
    JobStatus,
    Revealed,
    RevealRequest,
    StudentDetail,
    StudentStatus,
    StudentSummary,
)


class StudentController(Controller):
    path = "/students"
    tags = ["records"]
    guards = [requires_staff]

    @get(
        "/",
        summary="Search students in my scope",
        operation_id="listStudents",
        responses=errors(SIGNED_IN, STAFF, QUERY, {403: "identifier_search_forbidden"}),
    )
    async def list_students(
        self,
        principal: PrincipalDep,
        actor: ActorDep,
        q: FromQuery[str | None] = None,
        class_id: IdFilter = None,
        school_id: IdFilter = None,
        status: FromQuery[StudentStatus | None] = None,
        problem: FromQuery[ProblemKind | None] = None,
        page: PageNumber = 1,
        page_size: PageSize = 50,
    ) -> Page[StudentSummary]:
        """**Who may call**: staff; each sees the students of its scope.

        Search students by name, class, school, status or problem, a page at a time, ID
        numbers masked; `q` may be a full registry number, ID number or phone only for a
        registrar and up (audited).

        **Errors**: `identifier_search_forbidden` (403) an identifier search by a teacher;
        `forbidden` (403) a parent; `validation_error` (400)."""
        return await reads.list_students(
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

    @get(
        "/{student_id:int}",
        summary="Read a student's record",
        operation_id="getStudent",
        responses=errors(SIGNED_IN, STAFF, BY_ID),
    )
    async def get_student(
        self, student_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> StudentDetail:
        """**Who may call**: staff whose scope holds the student.

        One student's full record, sensitive values masked (this read is audited).

        **Errors**: `not_found` (404) no such student in scope (audited); `forbidden` (403)
        a parent."""
        return await reads.get_student(principal, actor, student_id)

    @post(
        "/{student_id:int}/reveal",
        status_code=HTTP_200_OK,
        summary="Reveal one sensitive value in full",
        operation_id="revealStudentField",
        responses=errors(
            SIGNED_IN, STAFF, JSON_BODY, BY_ID, {400: "not_revealable", 403: "reveal_forbidden"}
        ),
    )
    async def reveal(
        self,
        student_id: FromPath[int],
        data: JSONBody[RevealRequest],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> Revealed:
        """**Who may call**: a registrar or above, inside its scope.

        One sensitive value (ID number, phone, address; `field` is its code, e.g.
        `id_number`) in full; audited.

        **Errors**: `reveal_forbidden` (403) a teacher; `not_revealable` (400) not a masked
        field; `not_found` (404) no such student in scope; `validation_error` (400)."""
        value = await reads.reveal(principal, actor, student_id, data.field)
        return Revealed(data.field, value)


@dataclass
class ImportUpload:
    file: UploadFile
    dry_run: bool = False


class ImportController(Controller):
    path = "/imports"
    tags = ["records"]
    guards = [requires_staff]

    @post(
        "/",
        status_code=HTTP_202_ACCEPTED,
        summary="Import students from a CSV or XLSX file",
        operation_id="startImport",
        responses=errors(
            SIGNED_IN,
            STAFF,
            UPLOAD,
            REDIS,
            {
                400: "invalid_characters file_too_large empty_file",
                429: "too_many_dry_runs",
            },
        ),
    )
    async def start(
        self,
        data: MultipartBody[ImportUpload],
        principal: PrincipalDep,
        actor: ActorDep,
        arq: ArqDep,
        redis: RedisDep,
        settings: SettingsDep,
    ) -> ImportStarted:
        """**Who may call**: a registrar or above.

        Upload a CSV or XLSX of students (multipart `file`, `dry_run`); a background job reads
        it: poll `GET /imports/{id}`. A dry run checks the file and changes nothing (limited
        per hour, audited).

        **Errors**: `file_too_large`, `empty_file`, `invalid_characters` (400);
        `too_many_dry_runs` (429); `forbidden` (403); `payload_too_large` (413);
        `validation_error` (400); `service_unavailable` (503)."""
        content = await data.file.read()
        job_id = await imports.start_import(
            principal,
            actor,
            redis,
            settings,
            data.file.filename or "import",
            content,
            data.dry_run,
        )
        await arq.enqueue_job("run_import_job", job_id, _job_id=f"import:{job_id}")
        return ImportStarted(job_id, JobStatus.queued)

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

        The import's state, progress and, once done, its report (rows with errors).

        **Errors**: `not_found` (404) no such import in scope; `forbidden` (403);
        `service_unavailable` (503)."""
        return await imports.get_import(principal.scope, actor, redis, job_id)


class CampaignController(Controller):
    path = "/campaigns"
    tags = ["campaigns"]
    guards = [requires_staff]

    @get(
        "/",
        summary="List campaigns covering my scope",
        operation_id="listCampaigns",
        responses=errors(SIGNED_IN, STAFF),
    )
    async def list_campaigns(self, principal: PrincipalDep) -> list[CampaignRead]:
        """**Who may call**: staff.

        Campaigns (the check's time windows and switches) covering any part of the caller's
        scope.

        **Errors**: `forbidden` (403) a parent."""
        return await campaigns.list_campaigns(principal.scope)

    @post(
        "/",
        summary="Open a campaign for a region",
        operation_id="createCampaign",
        responses=errors(
            SIGNED_IN, STAFF, JSON_BODY, BY_ID, {400: "bad_window", 403: "campaign_admin_only"}
        ),
    )
    async def create(
        self, data: JSONBody[CampaignCreate], principal: PrincipalDep, actor: ActorDep
    ) -> CampaignRead:
        """**Who may call**: a county reviewer, city or province admin, for a region in scope.

        Opens a check for the region: its window (`starts_at` before `ends_at`, with time
        zone) and its two switches.

        **Errors**: `campaign_admin_only` (403) another role; `bad_window` (400) the window
        ends before it starts; `not_found` (404) the region is missing or outside the
        caller's scope; `validation_error` (400)."""
        return await campaigns.create_campaign(principal, actor, data)

    @get(
        "/{campaign_id:int}",
        summary="Read a campaign",
        operation_id="getCampaign",
        responses=errors(SIGNED_IN, STAFF, BY_ID),
    )
    async def get_campaign(
        self, campaign_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> CampaignRead:
        """**Who may call**: staff whose scope the campaign covers.

        **Errors**: `not_found` (404) no such campaign in scope; `forbidden` (403)."""
        return await campaigns.get_campaign(principal, actor, campaign_id)

    @patch(
        "/{campaign_id:int}",
        summary="Change a campaign's window or switches",
        operation_id="updateCampaign",
        responses=errors(
            SIGNED_IN,
            STAFF,
            JSON_BODY,
            BY_ID,
            {400: "bad_window", 403: "campaign_admin_only campaign_above_scope"},
        ),
    )
    async def update(
        self,
        campaign_id: FromPath[int],
        data: JSONBody[CampaignUpdate],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> CampaignRead:
        """**Who may call**: a campaign administrator at the campaign's level or above.

        Move the window or flip the two switches; fields left out keep their value.

        **Errors**: `campaign_admin_only`, `campaign_above_scope` (403); `bad_window` (400);
        `not_found` (404) no such campaign in scope; `validation_error` (400)."""
        return await campaigns.update_campaign(principal, actor, campaign_id, data)


class FormController(Controller):
    tags = ["forms"]
    guards = [requires_staff]

    @post(
        "/classes/{class_id:int}/forms",
        status_code=HTTP_202_ACCEPTED,
        summary="Issue a class's confirmation forms",
        operation_id="issueClassForms",
        responses=errors(
            SIGNED_IN,
            STAFF,
            BY_ID,
            REDIS,
            {403: "registrar_only", 409: "outside_window class_empty"},
        ),
    )
    async def issue(
        self,
        class_id: FromPath[int],
        settings: SettingsDep,
        principal: PrincipalDep,
        actor: ActorDep,
        arq: ArqDep,
        redis: RedisDep,
    ) -> FormBatchRead:
        """**Who may call**: a registrar of the class's school.

        Issues this campaign's forms for every enrolled student of the class (earlier forms
        of the campaign are superseded); a job renders the printable PDF: poll
        `GET /form-batches/{id}` until `pdf_ready`.

        **Errors**: `registrar_only` (403); `not_found` (404) no such class in scope;
        `outside_window` (409) no campaign open or forms switched off; `class_empty` (409);
        `service_unavailable` (503)."""
        batch_id = await forms.issue_class_forms(settings, principal, actor, class_id)
        await arq.enqueue_job("render_form_batch_job", batch_id, _job_id=f"forms:{batch_id}")
        return await forms.get_batch(principal.scope, actor, redis, batch_id)

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

        The batch's forms and the PDF's rendering progress.

        **Errors**: `not_found` (404) no such batch in scope; `forbidden` (403);
        `service_unavailable` (503)."""
        return await forms.get_batch(principal.scope, actor, redis, batch_id)

    @get(
        "/form-batches/{batch_id:int}/pdf",
        media_type="application/pdf",
        summary="Download a form batch's printable PDF",
        operation_id="getFormBatchPdf",
        responses=errors(SIGNED_IN, STAFF, BY_ID, {403: "reveal_forbidden", 409: "pdf_not_ready"}),
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
        reads.require_reveal(principal)
        pdf = await forms.batch_pdf(principal.scope, actor, storage, batch_id)
        await reads.printed_in_full(actor, "form_batch", batch_id)
        return Response(pdf, media_type="application/pdf", headers=NO_STORE)

    @get(
        "/forms/{form_id:str}/png",
        media_type="image/png",
        summary="Download one printed form as an image",
        operation_id="getFormPng",
        responses=errors(SIGNED_IN, STAFF, BY_ID, {403: "reveal_forbidden"}),
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
        reads.require_reveal(principal)
        png = await forms.form_png(settings, principal.scope, actor, form_id)
        await reads.printed_in_full(actor, "issued_form", form_id)
        return Response(png, media_type="image/png", headers=NO_STORE)


ROUTES: list[Any] = [StudentController, ImportController, CampaignController, FormController]

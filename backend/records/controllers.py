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
from backend.records import campaigns, forms, imports, reads
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
    Revealed,
    RevealRequest,
    StudentDetail,
    StudentSummary,
)
from backend.records.tables import StudentStatus


class StudentController(Controller):
    path = "/students"
    tags = ["records"]
    guards = [requires_staff]

    @get("/", summary="Search students", operation_id="listStudents")
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
        """Students in the caller's scope, by name (`q`), class, school, status or problem;
        `q` may be a full registry number, ID number or phone only for a registrar and up
        (audited).

        **Who may call**: staff; each sees its own scope.

        **Errors**: `validation_error` (400) for a `status` or `problem` outside the listed
        values (the message names them); `identifier_search_forbidden` (403) for an
        identifier search below registrar."""
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

    @get("/{student_id:int}")
    async def get_student(
        self, student_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> StudentDetail:
        """One student's full record, sensitive values masked (this read is audited)."""
        return await reads.get_student(principal, actor, student_id)

    @post("/{student_id:int}/reveal", status_code=HTTP_200_OK)
    async def reveal(
        self,
        student_id: FromPath[int],
        data: JSONBody[RevealRequest],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> Revealed:
        """One sensitive value in full, for a registrar or above; audited."""
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
        summary="Import students from a spreadsheet",
        operation_id="createImport",
        request_max_body_size=MAX_IMPORT_BYTES + 64 * 1024,
        opt={
            "upload_noun": "文件",
            "too_large": imports.FileTooLarge,
        },
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
        """A CSV or XLSX of students, as `multipart/form-data` with the file in the `file`
        part; a background job reads it (poll `GET /imports/{job_id}`). A dry run
        (`dry_run=true`) checks the file and changes nothing (limited per hour, audited).

        **Who may call**: a school registrar (for its school) and the levels above.

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
        )
        await arq.enqueue_job("run_import_job", job_id, _job_id=f"import:{job_id}")
        return ImportStarted(job_id, "queued")

    @get("/{job_id:int}")
    async def get(
        self, job_id: FromPath[int], principal: PrincipalDep, actor: ActorDep, redis: RedisDep
    ) -> ImportRead:
        return await imports.get_import(principal.scope, actor, redis, job_id)


class CampaignController(Controller):
    path = "/campaigns"
    tags = ["campaigns"]
    guards = [requires_staff]

    @get("/")
    async def list_campaigns(self, principal: PrincipalDep) -> list[CampaignRead]:
        """Campaigns covering any part of the caller's scope."""
        return await campaigns.list_campaigns(principal.scope)

    @post("/")
    async def create(
        self, data: JSONBody[CampaignCreate], principal: PrincipalDep, actor: ActorDep
    ) -> CampaignRead:
        """Open a check for a region in scope (county reviewer, city or province admin)."""
        return await campaigns.create_campaign(principal, actor, data)

    @get("/{campaign_id:int}")
    async def get_campaign(
        self, campaign_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> CampaignRead:
        return await campaigns.get_campaign(principal, actor, campaign_id)

    @patch("/{campaign_id:int}")
    async def update(
        self,
        campaign_id: FromPath[int],
        data: JSONBody[CampaignUpdate],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> CampaignRead:
        """Move the window or flip the two switches."""
        return await campaigns.update_campaign(principal, actor, campaign_id, data)


class FormController(Controller):
    tags = ["forms"]
    guards = [requires_staff]

    @post(
        "/form-batches",
        status_code=HTTP_202_ACCEPTED,
        summary="Issue a class's forms",
        operation_id="createFormBatch",
    )
    async def issue(
        self,
        data: JSONBody[FormBatchCreate],
        settings: SettingsDep,
        principal: PrincipalDep,
        actor: ActorDep,
        arq: ArqDep,
        redis: RedisDep,
    ) -> FormBatchRead:
        """Issue this campaign's confirmation forms for every enrolled student of a class; a
        job renders the printable PDF (poll `GET /form-batches/{batch_id}` until `pdf_ready`).
        Forms issued earlier in the campaign are superseded: their codes stop working.

        **Who may call**: the class's school registrar.

        **Errors**: `registrar_only` (403); `not_found` (404) for a class outside the caller's
        scope; `outside_window` (409) when the campaign is closed or forbids issuing forms;
        `class_empty` (409) for a class with no enrolled student."""
        batch_id = await forms.issue_class_forms(settings, principal, actor, data.class_id)
        await arq.enqueue_job("render_form_batch_job", batch_id, _job_id=f"forms:{batch_id}")
        return await forms.get_batch(principal.scope, actor, redis, batch_id)

    @get("/form-batches", summary="List a class's form batches", operation_id="listFormBatches")
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

    @get("/form-batches/{batch_id:int}")
    async def batch(
        self, batch_id: FromPath[int], principal: PrincipalDep, actor: ActorDep, redis: RedisDep
    ) -> FormBatchRead:
        return await forms.get_batch(principal.scope, actor, redis, batch_id)

    @get("/form-batches/{batch_id:int}/pdf", media_type="application/pdf")
    async def batch_pdf(
        self,
        batch_id: FromPath[int],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
    ) -> Response[bytes]:
        """A class's forms, every value in full: registrars and up, audited."""
        reads.require_reveal(principal)
        pdf = await forms.batch_pdf(principal.scope, actor, storage, batch_id)
        await reads.printed_in_full(actor, "form_batch", batch_id)
        return Response(pdf, media_type="application/pdf", headers=NO_STORE)

    @get("/forms/{form_id:str}/png", media_type="image/png")
    async def form_png(
        self,
        form_id: FromPath[str],
        settings: SettingsDep,
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> Response[bytes]:
        """One printed form, every value in full: registrars and up, audited."""
        reads.require_reveal(principal)
        png = await forms.form_png(settings, principal.scope, actor, form_id)
        await reads.printed_in_full(actor, "issued_form", form_id)
        return Response(png, media_type="image/png", headers=NO_STORE)


ROUTES: list[Any] = [StudentController, ImportController, CampaignController, FormController]

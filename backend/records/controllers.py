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
from backend.records.schemas import (
    CampaignCreate,
    CampaignRead,
    CampaignUpdate,
    FormBatchRead,
    ImportRead,
    ImportStarted,
    Revealed,
    RevealRequest,
    StudentDetail,
    StudentSummary,
)


class StudentController(Controller):
    path = "/students"
    tags = ["records"]
    guards = [requires_staff]

    @get("/")
    async def list_students(
        self,
        principal: PrincipalDep,
        actor: ActorDep,
        q: FromQuery[str | None] = None,
        class_id: IdFilter = None,
        school_id: IdFilter = None,
        status: FromQuery[str | None] = None,
        problem: FromQuery[ProblemKind | None] = None,
        page: PageNumber = 1,
        page_size: PageSize = 50,
    ) -> Page[StudentSummary]:
        """Search students in scope by name, class, status, problem; by a full registry
        number, ID number or phone only for a registrar and up (audited)."""
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

    @post("/", status_code=HTTP_202_ACCEPTED)
    async def start(
        self,
        data: MultipartBody[ImportUpload],
        principal: PrincipalDep,
        actor: ActorDep,
        arq: ArqDep,
        redis: RedisDep,
        settings: SettingsDep,
    ) -> ImportStarted:
        """Upload a CSV or XLSX of students; a background job reads it. Poll its progress.
        A dry run checks the file and changes nothing (limited per hour, audited)."""
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

    @post("/classes/{class_id:int}/forms", status_code=HTTP_202_ACCEPTED)
    async def issue(
        self,
        class_id: FromPath[int],
        settings: SettingsDep,
        principal: PrincipalDep,
        actor: ActorDep,
        arq: ArqDep,
        redis: RedisDep,
    ) -> FormBatchRead:
        """Issue this campaign's forms for a class; a job renders the printable PDF."""
        batch_id = await forms.issue_class_forms(settings, principal, actor, class_id)
        await arq.enqueue_job("render_form_batch_job", batch_id, _job_id=f"forms:{batch_id}")
        return await forms.get_batch(principal.scope, actor, redis, batch_id)

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

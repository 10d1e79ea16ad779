"""HTTP for records: staff search and read students, reveal, import; parents read their
children."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from backend.accounts.org import MAX_PAGE_SIZE
from backend.accounts.roles import Role
from backend.accounts.schemas import Page
from backend.deps import ActorDep, ArqDep, PrincipalDep, RedisDep
from backend.errors import Forbidden
from backend.http import requires_staff
from backend.records import imports, reads
from backend.records.ids import ProblemKind
from backend.records.schemas import (
    ImportRead,
    ImportStarted,
    Revealed,
    RevealRequest,
    StudentDetail,
    StudentSummary,
)

PageNumber = Annotated[int, QueryParameter(ge=1)]
PageSize = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE_SIZE)]


class StudentController(Controller):
    path = "/students"
    tags = ["records"]
    guards = [requires_staff]

    @get("/")
    async def list_students(
        self,
        principal: PrincipalDep,
        q: FromQuery[str | None] = None,
        class_id: FromQuery[int | None] = None,
        school_id: FromQuery[int | None] = None,
        status: FromQuery[str | None] = None,
        problem: FromQuery[ProblemKind | None] = None,
        page: PageNumber = 1,
        page_size: PageSize = 50,
    ) -> Page[StudentSummary]:
        """Search students in scope by name or registry number, class, status, problem."""
        return await reads.list_students(
            principal.scope,
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
    ) -> ImportStarted:
        """Upload a CSV or XLSX of students; a background job reads it. Poll its progress."""
        content = await data.file.read()
        job_id = await imports.start_import(
            principal, actor, data.file.filename or "import", content, data.dry_run
        )
        await arq.enqueue_job("run_import_job", job_id, _job_id=f"import:{job_id}")
        return ImportStarted(job_id, "queued")

    @get("/{job_id:int}")
    async def get(
        self, job_id: FromPath[int], principal: PrincipalDep, actor: ActorDep, redis: RedisDep
    ) -> ImportRead:
        return await imports.get_import(principal.scope, actor, redis, job_id)


class MyChildrenController(Controller):
    path = "/my/children"
    tags = ["parents"]

    @get("/")
    async def list_children(self, principal: PrincipalDep) -> Page[StudentSummary]:
        if principal.role is not Role.parent:
            raise Forbidden("仅家长账号可用", code="parents_only")
        return await reads.list_students(principal.scope, page_size=MAX_PAGE_SIZE)

    @get("/{student_id:int}")
    async def get_child(
        self, student_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> StudentDetail:
        if principal.role is not Role.parent:
            raise Forbidden("仅家长账号可用", code="parents_only")
        return await reads.get_student(principal, actor, student_id)


ROUTES: list[Any] = [StudentController, ImportController, MyChildrenController]

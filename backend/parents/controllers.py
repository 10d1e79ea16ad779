"""HTTP for the phone: sign-up, my children, a class's families, photo uploads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from backend.accounts.roles import Role
from backend.accounts.schemas import Page, TokenPair
from backend.deps import (
    ActorDep,
    ArqDep,
    IdFilter,
    PageNumber,
    PageSize,
    PrincipalDep,
    RedisDep,
    SettingsDep,
    SmsDep,
    StorageDep,
)
from backend.errors import Forbidden
from backend.http import NO_STORE, requires_staff
from backend.parents import signup, uploads, views
from backend.parents.schemas import (
    ChildStatus,
    CorrectionRead,
    FamilyStatus,
    SignupConfirm,
    SignupStart,
    SignupTicket,
    UploadDetail,
    UploadRead,
)
from backend.parents.tasks import enqueue_check
from backend.records import reads
from backend.records.schemas import StudentDetail


class SignupController(Controller):
    path = "/signup"
    tags = ["parents"]

    @post("/start", exclude_from_auth=True, status_code=HTTP_200_OK)
    async def start(
        self, data: JSONBody[SignupStart], redis: RedisDep, sms: SmsDep, actor: ActorDep
    ) -> SignupTicket:
        """Registration code + birth date (or the ID number's last 6) + phone: an SMS code
        is sent to the phone."""
        return await signup.start(redis, sms, actor, data.registration_code, data.fact, data.phone)

    @post("/confirm", exclude_from_auth=True, status_code=HTTP_200_OK)
    async def confirm(
        self,
        data: JSONBody[SignupConfirm],
        settings: SettingsDep,
        redis: RedisDep,
        actor: ActorDep,
    ) -> TokenPair:
        """The SMS code (and a password, the first time): the child is linked, logged in."""
        return await signup.confirm(settings, redis, actor, data.ticket, data.code, data.password)


def _parents_only(role: Role) -> None:
    if role is not Role.parent:
        raise Forbidden("仅家长账号可用", code="parents_only")


class MyChildrenController(Controller):
    path = "/my/children"
    tags = ["parents"]

    @get("/")
    async def list_children(self, principal: PrincipalDep) -> list[ChildStatus]:
        """My children, each with its form's state in the current campaign."""
        _parents_only(principal.role)
        return await views.my_children(principal)

    @get("/{student_id:int}")
    async def get_child(
        self, student_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> StudentDetail:
        _parents_only(principal.role)
        return await reads.get_student(principal, actor, student_id)


class FamiliesController(Controller):
    path = "/families"
    tags = ["teachers"]
    guards = [requires_staff]

    @get("/")
    async def families(
        self,
        principal: PrincipalDep,
        actor: ActorDep,
        class_id: IdFilter = None,
        status: FromQuery[str | None] = None,
        page: PageNumber = 1,
        page_size: PageSize = 50,
    ) -> Page[FamilyStatus]:
        """Each family of the caller's class or school with its form's state (filter by
        class, or by state: not_issued, not_uploaded, uploaded, …)."""
        return await views.families(principal, actor, class_id, status, page, page_size)


@dataclass
class PhotoUpload:
    file: UploadFile


class PhotoController(Controller):
    tags = ["parents"]

    @post("/students/{student_id:int}/photos", status_code=HTTP_201_CREATED)
    async def upload(
        self,
        student_id: FromPath[int],
        data: MultipartBody[PhotoUpload],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
        arq: ArqDep,
    ) -> UploadRead:
        """A photo of the signed form: by a parent, or a teacher on the family's behalf."""
        content = await data.file.read()
        upload = await uploads.upload_photo(principal, actor, storage, student_id, content)
        if not upload.duplicate:
            await enqueue_check(arq, upload.id)
        return upload

    @get("/photos/{upload_id:int}", media_type="image/jpeg")
    async def photo(
        self,
        upload_id: FromPath[int],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
    ) -> Response[bytes]:
        data = await uploads.photo_bytes(principal, actor, storage, upload_id)
        return Response(data, media_type="image/jpeg", headers=NO_STORE)


class UploadController(Controller):
    tags = ["parents"]

    @get("/uploads/{upload_id:int}")
    async def detail(
        self, upload_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> UploadDetail:
        """The upload and its check, for the parent to poll after uploading."""
        return await uploads.upload_detail(principal, actor, upload_id)

    @post("/uploads/{upload_id:int}/legible", status_code=HTTP_200_OK, guards=[requires_staff])
    async def legible(
        self, upload_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> UploadDetail:
        """The homeroom teacher confirms the handwritten corrections are legible."""
        return await uploads.confirm_legible(principal, actor, upload_id)

    @get("/correction-drafts", guards=[requires_staff])
    async def drafts(
        self, principal: PrincipalDep, class_id: IdFilter = None
    ) -> list[CorrectionRead]:
        """Corrections written on paper, waiting to be transcribed."""
        return await uploads.list_drafts(principal, class_id)

    @get("/correction-drafts/{draft_id:int}/crop", media_type="image/png", guards=[requires_staff])
    async def crop(
        self,
        draft_id: FromPath[int],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
    ) -> Response[bytes]:
        data = await uploads.draft_crop(principal, actor, storage, draft_id)
        return Response(data, media_type="image/png", headers=NO_STORE)


ROUTES: list[Any] = [
    UploadController,
    SignupController,
    MyChildrenController,
    FamiliesController,
    PhotoController,
]

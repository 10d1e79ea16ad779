"""HTTP for the phone: sign-up, my children, a class's families, photo uploads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from litestar import Controller, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody, QueryParameter
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
from backend.parents import drafts, links, signup, uploads, views
from backend.parents.schemas import (
    ChildLink,
    ChildLinked,
    ChildStatus,
    CorrectionDraftRead,
    DraftAction,
    FamilyStatus,
    LinkRead,
    SignupConfirm,
    SignupStart,
    SignupTicket,
    UploadDetail,
    UploadRead,
)
from backend.parents.tables import DraftState
from backend.parents.tasks import enqueue_check_later_if_down
from backend.records import reads
from backend.records.schemas import StudentDetail
from backend.records.tables import LinkStatus


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
        """The SMS code and a password: a new account, linked to the child, logged in. A phone
        that already has an account gets 409 `account_exists`: log in, then
        `POST /my/children/link`."""
        return await signup.confirm(settings, redis, actor, data.ticket, data.code, data.password)


def _parents_only(role: Role) -> None:
    if role is not Role.parent:
        raise Forbidden("仅家长账号可用", code="parents_only")


class MyChildrenController(Controller):
    path = "/my/children"
    tags = ["parents"]

    @get("/")
    async def list_children(self, principal: PrincipalDep) -> list[ChildStatus]:
        """My children, each with its form's state in the current campaign; a link the class
        has not confirmed shows only its state."""
        _parents_only(principal.role)
        return await links.my_children(principal)

    @post("/link", status_code=HTTP_201_CREATED)
    async def link(
        self, data: JSONBody[ChildLink], redis: RedisDep, principal: PrincipalDep, actor: ActorDep
    ) -> ChildLinked:
        """Add a child with its form's registration code and the second fact: linked at once
        when my phone is a guardian's phone on the record, else pending the class's check."""
        return await links.link_child(redis, principal, actor, data.registration_code, data.fact)

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


class GuardianLinkController(Controller):
    path = "/guardian-links"
    tags = ["teachers"]
    guards = [requires_staff]

    @get("/")
    async def list_links(
        self,
        principal: PrincipalDep,
        status: FromQuery[LinkStatus | None] = None,
        page: PageNumber = 1,
        page_size: PageSize = 50,
    ) -> Page[LinkRead]:
        """Parents' links to children of my class (teacher) or school (registrar); filter
        `status=pending` for those waiting on me."""
        return await links.list_links(principal, status, page, page_size)

    @post("/{link_id:int}/{action:str}", status_code=HTTP_200_OK)
    async def decide(
        self,
        link_id: FromPath[int],
        action: FromPath[Literal["confirm", "reject"]],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> LinkRead:
        """Confirm or reject a pending link (a rejected one gives the code's use back)."""
        return await links.decide(principal, actor, link_id, action)


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
        redis: RedisDep,
        settings: SettingsDep,
    ) -> UploadRead:
        """A photo of the signed form: by a parent, or a teacher on the family's behalf.

        Stored is accepted: if the queue (Redis) is down, the upload stays `uploaded` and the
        sweeper enqueues its check once Redis is back, so the parent need not upload again."""
        content = await data.file.read()
        upload = await uploads.upload_photo(
            principal, actor, storage, redis, settings, student_id, content
        )
        if not upload.duplicate:
            await enqueue_check_later_if_down(arq, upload.id)
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


class CorrectionDraftController(Controller):
    path = "/correction-drafts"
    tags = ["teachers"]
    guards = [requires_staff]

    @get(
        "/",
        summary="List corrections written on paper forms",
        operation_id="listCorrectionDrafts",
    )
    async def list_drafts(
        self,
        principal: PrincipalDep,
        class_id: IdFilter = None,
        # `state` is a name Litestar keeps for the app's state: the query key is mapped.
        draft_state: Annotated[DraftState | None, QueryParameter(name="state")] = None,
        page: PageNumber = 1,
        page_size: PageSize = 50,
    ) -> Page[CorrectionDraftRead]:
        """Corrections that parents wrote on the paper form, one per field of an upload,
        oldest first: each names its child (`student_id`), its upload, its field (catalog
        code and Chinese label), what the check read in the printed cell (masked where
        sensitive), the crop of the handwriting and its `state`.

        **Who may call**: staff; each sees the drafts of its scope (a teacher its class, a
        registrar its school, a reviewer its region).

        Filter by `class_id` and by `state` (`draft` for those waiting to be read).

        **Errors**: `bad_request` (400) for a `state` that is not one of the enum's values.
        """
        return await drafts.list_drafts(principal, class_id, draft_state, page, page_size)

    @post(
        "/{draft_id:int}/{action:str}",
        status_code=HTTP_200_OK,
        summary="Mark a handwritten correction legible or illegible",
        operation_id="decideCorrectionDraft",
    )
    async def decide(
        self,
        draft_id: FromPath[int],
        action: FromPath[DraftAction],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> CorrectionDraftRead:
        """The teacher has read the crop: `legible` (ready to be transcribed) or `illegible`
        (the family is asked to write it again and upload a new photo: the child's form
        status becomes `retake`, with a message saying which fields could not be read).
        Only a `draft` is decided; the same answer again returns the draft unchanged.
        Audited.

        **Who may call**: the homeroom teacher of the child's class, or a registrar of its
        school.

        **Errors**: `teachers_only` (403) for any other role; `not_found` (404) for a draft
        that does not exist or is outside the caller's scope; `draft_already_decided` (409)
        when the draft was already given the other answer; `bad_request` (400) for an
        action other than `legible` or `illegible`.
        """
        return await drafts.decide(principal, actor, draft_id, action)

    @get(
        "/{draft_id:int}/crop",
        media_type="image/png",
        summary="Get the crop of a handwritten correction",
        operation_id="getCorrectionDraftCrop",
    )
    async def crop(
        self,
        draft_id: FromPath[int],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
    ) -> Response[bytes]:
        """The PNG of the correction cell as photographed (the handwriting, in full; the
        read is audited).

        **Who may call**: staff with the draft in scope.

        **Errors**: `not_found` (404) for a draft that does not exist or is outside the
        caller's scope.
        """
        data = await drafts.draft_crop(principal, actor, storage, draft_id)
        return Response(data, media_type="image/png", headers=NO_STORE)


ROUTES: list[Any] = [
    UploadController,
    CorrectionDraftController,
    SignupController,
    MyChildrenController,
    FamiliesController,
    GuardianLinkController,
    PhotoController,
]

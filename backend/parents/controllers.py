"""HTTP for the phone: sign-up, my children, a class's families, photo uploads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

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
from backend.parents import links, signup, uploads, views
from backend.parents.pages import open_form_link
from backend.parents.schemas import (
    ChildLink,
    ChildLinked,
    ChildStatus,
    CorrectionRead,
    FamilyStatus,
    LinkRead,
    SignupConfirm,
    SignupStart,
    SignupTicket,
    UploadDetail,
    UploadRead,
)
from backend.parents.tasks import enqueue_check_later_if_down
from backend.records import reads
from backend.records.schemas import StudentDetail
from backend.records.tables import LinkStatus


class SignupController(Controller):
    path = "/signup"
    tags = ["parents"]

    @post(
        "/start",
        exclude_from_auth=True,
        status_code=HTTP_200_OK,
        summary="Start a parent's sign-up",
        operation_id="startSignup",
    )
    async def start(
        self,
        data: JSONBody[SignupStart],
        settings: SettingsDep,
        redis: RedisDep,
        sms: SmsDep,
        actor: ActorDep,
    ) -> SignupTicket:
        """The form's registration code, a second fact about the child (the birth date, or the
        ID number's last 6) and the parent's phone: an SMS code goes to the phone, and the
        ticket answered is confirmed with it at `POST /signup/confirm`. `registration_code`
        may also be what the form's QR code holds (the link
        `https://…/m/f/F1.…` or its bare token, from any address: the token is signed).

        **Who may call**: anyone, without logging in.

        **Errors**: `signup_refused` (400) when the code or the fact is wrong (alike, so the
        answer never tells which codes exist); `code_expired` (409) when the form's campaign
        has ended; `code_used_up` (409) when two guardians already used the code;
        `sms_failed` (409) when the SMS gateway failed; `too_many_attempts` (429, with
        `Retry-After`) past the hourly guesses per address, phone or code, or the SMS
        allowance; `validation_error` (400); `service_unavailable` (503) without Redis.
        """
        key = settings.form_token_key.encode()
        return await signup.start(
            redis, sms, actor, key, data.registration_code, data.fact, data.phone
        )

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

    @post(
        "/link",
        status_code=HTTP_201_CREATED,
        summary="Link another child to my account",
        operation_id="linkMyChild",
    )
    async def link(
        self,
        data: JSONBody[ChildLink],
        settings: SettingsDep,
        redis: RedisDep,
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> ChildLinked:
        """Add a child with its form's registration code (or what its QR code holds: the link
        or the bare token) and the second fact: linked at once when my phone is a guardian's
        phone on the record, else `pending` until the class teacher or the registrar decides.

        **Who may call**: a logged-in parent.

        **Errors**: `parents_only` (403) for any other role; `signup_refused` (400) when the
        code or the fact is wrong; `code_expired` (409) when the form's campaign has ended;
        `code_used_up` (409) when two guardians already used the code; `already_linked`
        (409) when the child is already mine; `link_rejected` (409) when the school rejected
        my earlier request; `too_many_attempts` (429, with `Retry-After`) past the hourly
        guesses; `validation_error` (400); `service_unavailable` (503) without Redis.
        """
        key = settings.form_token_key.encode()
        return await links.link_child(
            redis, principal, actor, key, data.registration_code, data.fact
        )

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
    open_form_link,
    UploadController,
    SignupController,
    MyChildrenController,
    FamiliesController,
    GuardianLinkController,
    PhotoController,
]

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
from backend.parents import links, signup, uploads, views
from backend.parents.photos import MAX_BYTES as MAX_PHOTO_BYTES
from backend.parents.schemas import (
    ChildLink,
    ChildLinked,
    ChildStatus,
    CorrectionRead,
    FamilyStatus,
    FormState,
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
        self, data: JSONBody[SignupStart], redis: RedisDep, sms: SmsDep, actor: ActorDep
    ) -> SignupTicket:
        """The code printed on the child's form, one second fact about the child (`birth_date`
        as a person types it, or `id_last6`, the ID number's last 6 characters) and the
        parent's phone: an SMS code is sent to the phone, and the ticket names this sign-up.

        **Who may call**: anyone (no token).

        **Errors**: `one_fact_required` (400) unless exactly one of `birth_date` and `id_last6`
        is given; `validation_error` (400) for a date that is not one; `signup_refused` (400)
        for a wrong code or fact (alike, so codes cannot be probed); `code_expired`,
        `code_used_up`, `sms_failed` (409); `too_many_attempts` (429)."""
        return await signup.start(redis, sms, actor, data, data.phone)

    @post(
        "/confirm",
        exclude_from_auth=True,
        status_code=HTTP_200_OK,
        summary="Finish a parent's sign-up",
        operation_id="confirmSignup",
    )
    async def confirm(
        self,
        data: JSONBody[SignupConfirm],
        settings: SettingsDep,
        redis: RedisDep,
        actor: ActorDep,
    ) -> TokenPair:
        """The ticket, the SMS code (`sms_code`) and the new account's password: a new parent
        account, linked to the child, logged in.

        **Who may call**: anyone holding a ticket from `POST /signup/start`.

        **Errors**: `password_required` (400) without a password; `weak_password` (400);
        `otp_mismatch` (400); `ticket_expired` (400); `too_many_attempts` (429) after 5 wrong
        codes; `account_exists` (409) for a phone that already has a parent account (log in,
        then `POST /my/children`); `phone_taken`, `account_inactive`, `code_used_up`,
        `already_linked`, `link_rejected` (409)."""
        return await signup.confirm(
            settings, redis, actor, data.ticket, data.sms_code, data.password
        )


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
        "/",
        status_code=HTTP_201_CREATED,
        summary="Add a child to my account",
        operation_id="linkChild",
    )
    async def link(
        self, data: JSONBody[ChildLink], redis: RedisDep, principal: PrincipalDep, actor: ActorDep
    ) -> ChildLinked:
        """Add a child with its form's registration code and one second fact (`birth_date`
        or `id_last6`, as at sign-up): linked at once when my phone is a guardian's phone on
        the record, else pending until the class teacher confirms.

        **Who may call**: a parent.

        **Errors**: `parents_only` (403); `one_fact_required` (400); `signup_refused` (400)
        for a wrong code or fact; `code_expired`, `code_used_up`, `already_linked`,
        `link_rejected` (409); `too_many_attempts` (429)."""
        return await links.link_child(redis, principal, actor, data)

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

    @get("/", summary="List families and their forms' state", operation_id="listFamilies")
    async def families(
        self,
        principal: PrincipalDep,
        actor: ActorDep,
        class_id: IdFilter = None,
        status: FromQuery[FormState | None] = None,
        page: PageNumber = 1,
        page_size: PageSize = 50,
    ) -> Page[FamilyStatus]:
        """Each enrolled child of the caller's class (teacher) or school (registrar, leader)
        with its confirmation form's state in the current campaign; filter by class, or by
        state (`status=not_uploaded` for the families still to chase).

        **Who may call**: staff; each sees its own scope.

        **Errors**: `validation_error` (400) for a `status` outside the listed values (the
        message names them); `not_found` (404) for a `class_id` outside the caller's scope."""
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

    @post(
        "/{link_id:int}/confirm",
        status_code=HTTP_200_OK,
        summary="Confirm a parent's link to a child",
        operation_id="confirmGuardianLink",
    )
    async def confirm(
        self, link_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> LinkRead:
        """A pending link becomes `confirmed`: the parent sees the child's record (audited).

        **Who may call**: the child's homeroom teacher or school registrar.

        **Errors**: `link_deciders_only` (403); `not_found` (404) for a link missing or outside
        the caller's scope; `invalid_status` (409) for a link that is not pending."""
        return await links.decide(principal, actor, link_id, "confirm")

    @post(
        "/{link_id:int}/reject",
        status_code=HTTP_200_OK,
        summary="Reject a parent's link to a child",
        operation_id="rejectGuardianLink",
    )
    async def reject(
        self, link_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> LinkRead:
        """A pending link becomes `rejected`: the parent sees only that, and the form's code
        gets this use back (audited).

        **Who may call**: the child's homeroom teacher or school registrar.

        **Errors**: `link_deciders_only` (403); `not_found` (404) for a link missing or outside
        the caller's scope; `invalid_status` (409) for a link that is not pending."""
        return await links.decide(principal, actor, link_id, "reject")


@dataclass
class PhotoUpload:
    file: UploadFile


# Past this a request is refused before it is read: the photo's own limit plus the multipart
# envelope. Its 413 says the limit, as the check of a smaller oversized photo does.
PHOTO_REQUEST_MAX_BYTES = MAX_PHOTO_BYTES + 64 * 1024


class PhotoController(Controller):
    tags = ["parents"]

    @post(
        "/students/{student_id:int}/uploads",
        status_code=HTTP_201_CREATED,
        summary="Upload a photo of a signed form",
        operation_id="createUpload",
        request_max_body_size=PHOTO_REQUEST_MAX_BYTES,
        opt={
            "upload_noun": "照片",
            "too_large": uploads.PhotoTooLarge,
        },
    )
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
        """A photo of the child's signed confirmation form, as `multipart/form-data` with the
        photo in the `file` part (JPEG, PNG, WebP or HEIC, at most 15 MB).

        **Who may call**: a parent linked to the child (link confirmed), or the child's homeroom
        teacher or school registrar on the family's behalf (recorded as such).

        Stored is accepted: the check runs in the background (poll `GET /uploads/{upload_id}`).
        The same photo sent again answers the earlier upload with `duplicate: true`. If the
        queue (Redis) is down, the upload stays `uploaded` and is checked once Redis is back.

        **Errors**: `multipart_expected` (415) for any other kind of body; `photo_too_large`
        (413); `photo_empty`, `photo_unsupported`, `photo_damaged`, `photo_truncated`,
        `photo_too_many_pixels` (400) for a
        file that is not a usable photo; `form_not_issued` (409) before the school printed
        this campaign's form; `outside_window` (409) outside the campaign; `too_many_uploads`
        (429) with `Retry-After`; `uploaders_only` (403); `not_found` (404) for a child outside
        the caller's scope."""
        content = await data.file.read()
        upload = await uploads.upload_photo(
            principal, actor, storage, redis, settings, student_id, content
        )
        if not upload.duplicate:
            await enqueue_check_later_if_down(arq, upload.id)
        return upload

    @get(
        "/uploads/{upload_id:int}/photo",
        media_type="image/jpeg",
        summary="Download an upload's photo",
        operation_id="getUploadPhoto",
    )
    async def photo(
        self,
        upload_id: FromPath[int],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
    ) -> Response[bytes]:
        """The stored photo (upright JPEG, no EXIF); never cached.

        **Who may call**: the parent linked to the child, and staff whose scope holds the
        child's class (staff reads are audited).

        **Errors**: `not_found` (404) for an upload missing or outside the caller's scope."""
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
    GuardianLinkController,
    PhotoController,
]

"""HTTP for the phone: sign-up, my children, a class's families, photo uploads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from backend.accounts.permissions import Action
from backend.accounts.schemas import TokenPair
from backend.deps import (
    ActorDep,
    IdFilter,
    OutboxDep,
    PrincipalDep,
    RedisDep,
    SettingsDep,
    SmsDep,
    StorageDep,
    provide_outbox,
    provide_redis,
    provide_settings,
)
from backend.http import NO_STORE, PRINCIPAL_IN_READ, actor_of, allowed
from backend.openapi import BY_ID, JSON_BODY, QUERY, REDIS, SIGNED_IN, STAFF, UPLOAD, errors
from backend.pages import DEFAULT_PAGE_SIZE, Page, PageNumber, PageSize
from backend.parents import drafts, hot_reads, links, signup, uploads
from backend.parents.pages import open_form_link, phone_app, phone_assets, phone_service_worker
from backend.parents.photos import MAX_BYTES as MAX_PHOTO_BYTES
from backend.parents.schemas import (
    ChildLink,
    ChildLinked,
    ChildStatus,
    CorrectionDraftRead,
    DraftAction,
    FamilyStatus,
    FormState,
    LinkRead,
    SignupConfirm,
    SignupStart,
    SignupTicket,
    UploadDetail,
    UploadRead,
)
from backend.parents.tables import DraftState
from backend.records import read_rate
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
        responses=errors(
            JSON_BODY,
            REDIS,
            {
                400: "signup_refused one_fact_required",
                409: "code_expired code_used_up sms_failed",
                429: "too_many_attempts",
            },
        ),
    )
    async def start(
        self,
        data: JSONBody[SignupStart],
        settings: SettingsDep,
        redis: RedisDep,
        sms: SmsDep,
        actor: ActorDep,
    ) -> SignupTicket:
        """The code printed on the child's form, one second fact about the child (`birth_date`
        as a person types it, or `id_last6`, the ID number's last 6 characters) and the
        parent's phone: an SMS code is sent to the phone, and the ticket names this sign-up.

        **Who may call**: anyone (no token).

        **Errors**: `one_fact_required` (400) unless exactly one of `birth_date` and `id_last6`
        is given; `validation_error` (400) for a date that is not one; `signup_refused` (400)
        for a wrong code or fact (alike, so codes cannot be probed); `code_expired`,
        `code_used_up`, `sms_failed` (409); `too_many_attempts` (429)."""
        key = settings.form_token_key.encode()
        return await signup.start(redis, sms, actor, key, data, data.phone)

    @post(
        "/confirm",
        exclude_from_auth=True,
        status_code=HTTP_200_OK,
        summary="Finish a parent's sign-up",
        operation_id="confirmSignup",
        responses=errors(
            JSON_BODY,
            REDIS,
            {
                400: "ticket_expired otp_mismatch password_required weak_password",
                409: "account_exists phone_taken account_inactive code_used_up already_linked "
                "link_rejected",
                429: "too_many_attempts",
            },
        ),
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


# The hot reads (`PRINCIPAL_IN_READ`) take no guard: their handler checks the caller after the
# read, and Litestar copies the route handler for every guard it runs (≈ 20 µs a request).


class MyChildrenController(Controller):
    path = "/my/children"
    tags = ["parents"]

    @get(
        "/",
        summary="List my children and their forms' state",
        operation_id="listMyChildren",
        responses=errors(SIGNED_IN, {403: "parents_only"}),
        opt={PRINCIPAL_IN_READ: True},
    )
    async def list_children(self, request: Request[Any, Any, Any]) -> list[ChildStatus]:
        """**Who may call**: a parent.

        My children, each with its form's state in the current campaign (`form.status`: not
        issued, not uploaded, being checked, or the check's verdict, with its Chinese
        `message`); a link the class has not confirmed shows only its `link_status`.

        **Errors**: `parents_only` (403) a staff account."""
        return await hot_reads.my_children(request)

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        guards=[allowed(Action.use_parent_api)],
        summary="Add a child to my account",
        operation_id="linkChild",
        responses=errors(
            SIGNED_IN,
            JSON_BODY,
            REDIS,
            {
                400: "signup_refused one_fact_required",
                403: "parents_only",
                409: "code_expired code_used_up already_linked link_rejected",
                429: "too_many_attempts",
            },
        ),
    )
    async def link(
        self,
        data: JSONBody[ChildLink],
        settings: SettingsDep,
        redis: RedisDep,
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> ChildLinked:
        """Add a child with its form's registration code and one second fact (`birth_date`
        or `id_last6`, as at sign-up): linked at once when my phone is a guardian's phone on
        the record, else pending until the class teacher confirms.

        **Who may call**: a parent.

        **Errors**: `parents_only` (403); `one_fact_required` (400); `signup_refused` (400)
        for a wrong code or fact; `code_expired`, `code_used_up`, `already_linked`,
        `link_rejected` (409); `too_many_attempts` (429)."""
        key = settings.form_token_key.encode()
        return await links.link_child(redis, principal, actor, key, data)

    @get(
        "/{student_id:int}",
        summary="Read my child's record",
        operation_id="getMyChild",
        responses=errors(SIGNED_IN, BY_ID, {403: "parents_only"}),
        opt={PRINCIPAL_IN_READ: True},
    )
    async def get_child(
        self, student_id: FromPath[int], request: Request[Any, Any, Any]
    ) -> StudentDetail:
        """**Who may call**: a parent whose link to the child is confirmed.

        The child's full record as the form prints it, sensitive values masked.

        **Errors**: `not_found` (404) not my child (or not yet confirmed); `parents_only`
        (403) a staff account."""
        return await hot_reads.my_child(request, student_id)


class FamiliesController(Controller):
    path = "/families"
    tags = ["teachers"]

    @get(
        "/",
        summary="List families and their forms' state",
        operation_id="listFamilies",
        responses=errors(SIGNED_IN, STAFF, QUERY, BY_ID, {429: "student_reads_throttled"}),
        opt={PRINCIPAL_IN_READ: True},  # staff only: checked in `hot_reads.families`
    )
    async def families(
        self,
        request: Request[Any, Any, Any],
        class_id: IdFilter = None,
        status: FromQuery[FormState | None] = None,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[FamilyStatus]:
        """Each enrolled child of the caller's class (teacher) or school (registrar, leader)
        with its confirmation form's state in the current campaign; filter by class, or by
        state (`status=not_uploaded` for the families still to chase). A child in the middle
        of a status change (a transfer …) has `change_open` true and `change_open_label`
        异动办理中: the campaign checks the record once the change is done.

        **Who may call**: staff; each sees its own scope.

        **Errors**: `validation_error` (400) for a `status` outside the listed values (the
        message names them); `not_found` (404) for a `class_id` outside the caller's scope;
        `forbidden` (403) a parent; `student_reads_throttled` (429, `Retry-After`) the account
        read far more students this hour than its work explains."""
        found = await hot_reads.families(request, class_id, status, page, page_size)
        ids = [family.student_id for family in found.items]
        # Not dependencies: Litestar resolves several of one level in a task group (≈ 30 µs).
        redis, settings = provide_redis(request), provide_settings(request)
        outbox = provide_outbox(request)
        await read_rate.admit(redis, settings, outbox, request.user, actor_of(request), ids)
        return found


class GuardianLinkController(Controller):
    path = "/guardian-links"
    tags = ["teachers"]
    guards = [allowed(Action.use_staff_api)]

    @get(
        "/",
        summary="List parents' links to children of my class or school",
        operation_id="listGuardianLinks",
        responses=errors(SIGNED_IN, STAFF, QUERY, {403: "link_deciders_only"}),
    )
    async def list_links(
        self,
        principal: PrincipalDep,
        status: FromQuery[LinkStatus | None] = None,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[LinkRead]:
        """**Who may call**: the homeroom teacher (the class's links) or a registrar (the
        school's).

        Parents' links to children, phones masked; filter `status=pending` for those waiting
        on me.

        **Errors**: `link_deciders_only` (403) any other staff role; `forbidden` (403) a
        parent; `validation_error` (400)."""
        return await links.list_links(principal, status, page, page_size)

    @post(
        "/{link_id:int}/confirm",
        status_code=HTTP_200_OK,
        summary="Confirm a parent's link to a child",
        operation_id="confirmGuardianLink",
        responses=errors(
            SIGNED_IN, STAFF, BY_ID, {403: "link_deciders_only", 409: "invalid_status"}
        ),
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
        responses=errors(
            SIGNED_IN, STAFF, BY_ID, {403: "link_deciders_only", 409: "invalid_status"}
        ),
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
        responses=errors(
            SIGNED_IN,
            UPLOAD,
            BY_ID,
            REDIS,
            {
                400: "photo_empty photo_unsupported photo_damaged photo_truncated "
                "photo_too_many_pixels",
                403: "uploaders_only",
                409: "outside_window form_not_issued",
                413: "photo_too_large",
                429: "too_many_uploads",
            },
        ),
    )
    async def upload(
        self,
        student_id: FromPath[int],
        data: MultipartBody[PhotoUpload],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
        outbox: OutboxDep,
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
        return await uploads.upload_photo(
            principal, actor, storage, redis, settings, outbox, student_id, content
        )

    @get(
        "/uploads/{upload_id:int}/photo",
        media_type="image/jpeg",
        summary="Download an upload's photo",
        operation_id="getUploadPhoto",
        responses=errors(SIGNED_IN, BY_ID),
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

    @get(
        "/uploads/{upload_id:int}",
        summary="Read an upload and its check",
        operation_id="getUpload",
        responses=errors(SIGNED_IN, BY_ID),
        opt={PRINCIPAL_IN_READ: True},
    )
    async def detail(
        self, upload_id: FromPath[int], request: Request[Any, Any, Any]
    ) -> UploadDetail:
        """**Who may call**: the family of the upload's child, or staff whose scope holds it.

        The upload and its check, for the parent to poll after uploading: `verdict` is null
        until the check is done, then one of the verdicts with a Chinese `message` saying
        what to do (`retake` names its `retake_reason`).

        **Errors**: `not_found` (404) no such upload in scope."""
        return await hot_reads.upload(request, upload_id)


class CorrectionDraftController(Controller):
    path = "/correction-drafts"
    tags = ["teachers"]
    guards = [allowed(Action.use_staff_api)]

    @get(
        "/",
        summary="List corrections written on paper forms",
        operation_id="listCorrectionDrafts",
        responses=errors(SIGNED_IN, STAFF, QUERY),
    )
    async def list_drafts(
        self,
        principal: PrincipalDep,
        class_id: IdFilter = None,
        # `state` is a name Litestar keeps for the app's state: the query key is mapped.
        draft_state: Annotated[DraftState | None, QueryParameter(name="state")] = None,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[CorrectionDraftRead]:
        """Corrections that parents wrote on the paper form, one per field of an upload,
        oldest first: each names its child (`student_id`), its upload, its field (catalog
        code and Chinese label), what the check read in the printed cell (masked where
        sensitive), the crop of the handwriting and its `state`.

        **Who may call**: staff; each sees the drafts of its scope (a teacher its class, a
        registrar its school, a reviewer its region).

        Filter by `class_id` and by `state` (`draft` for those waiting to be read).

        **Errors**: `validation_error` (400) for a `state` that is not one of the enum's
        values.
        """
        return await drafts.list_drafts(principal, class_id, draft_state, page, page_size)

    @post(
        "/{draft_id:int}/{action:str}",
        status_code=HTTP_200_OK,
        summary="Mark a handwritten correction legible or illegible",
        operation_id="decideCorrectionDraft",
        responses=errors(
            SIGNED_IN, STAFF, QUERY, BY_ID, {403: "teachers_only", 409: "draft_already_decided"}
        ),
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
        when the draft was already given the other answer; `validation_error` (400) for an
        action other than `legible` or `illegible`.
        """
        return await drafts.decide(principal, actor, draft_id, action)

    @get(
        "/{draft_id:int}/crop",
        media_type="image/png",
        summary="Get the crop of a handwritten correction",
        operation_id="getCorrectionDraftCrop",
        responses=errors(SIGNED_IN, STAFF, BY_ID),
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
    phone_app,
    phone_service_worker,
    open_form_link,
    phone_assets(),
    UploadController,
    CorrectionDraftController,
    SignupController,
    MyChildrenController,
    FamiliesController,
    GuardianLinkController,
    PhotoController,
]

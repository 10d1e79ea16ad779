"""HTTP for the phone: sign-up, my children, a class's families, photo uploads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

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
from backend.http import NO_STORE, PRINCIPAL_IN_READ, requires_staff
from backend.openapi import BY_ID, JSON_BODY, QUERY, REDIS, SIGNED_IN, STAFF, UPLOAD, errors
from backend.parents import drafts, hot_reads, links, signup, uploads
from backend.parents.pages import open_form_link
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
from backend.parents.tasks import enqueue_check_later_if_down
from backend.records.schemas import StudentDetail
from backend.records.tables import LinkStatus


class SignupController(Controller):
    path = "/signup"
    tags = ["parents"]

    @post(
        "/start",
        exclude_from_auth=True,
        status_code=HTTP_200_OK,
        summary="Start a parent's sign-up with the form's code",
        operation_id="startSignup",
        responses=errors(
            JSON_BODY,
            REDIS,
            {
                400: "signup_refused",
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

    @post(
        "/confirm",
        exclude_from_auth=True,
        status_code=HTTP_200_OK,
        summary="Finish sign-up with the SMS code",
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
        """**Who may call**: anyone holding a sign-up ticket.

        The ticket, the SMS code and a password (required for a new account): a new parent
        account, linked to the child, logged in (the answer is a token pair, as from login).

        **Errors**: `otp_mismatch` (400) wrong SMS code; `ticket_expired` (400) start again;
        `password_required`, `weak_password` (400); `account_exists` (409) the phone already
        has an account: log in, then `POST /my/children/link`; `phone_taken` (409) a staff
        phone; `account_inactive` (409); `code_used_up`, `already_linked`, `link_rejected`
        (409); `too_many_attempts` (429) too many wrong SMS codes; `validation_error` (400);
        `service_unavailable` (503)."""
        return await signup.confirm(settings, redis, actor, data.ticket, data.code, data.password)


_parents_only = hot_reads.parents_only


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
        "/link",
        status_code=HTTP_201_CREATED,
        summary="Add a child to my account with its form's code",
        operation_id="linkChild",
        responses=errors(
            SIGNED_IN,
            JSON_BODY,
            REDIS,
            {
                400: "signup_refused",
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
        summary="List families of my class or school with their forms' state",
        operation_id="listFamilies",
        responses=errors(SIGNED_IN, STAFF, QUERY, BY_ID),
        opt={PRINCIPAL_IN_READ: True},  # staff only: checked in `hot_reads.families`
    )
    async def families(
        self,
        request: Request[Any, Any, Any],
        class_id: IdFilter = None,
        status: FromQuery[FormState | None] = None,
        page: PageNumber = 1,
        page_size: PageSize = 50,
    ) -> Page[FamilyStatus]:
        """**Who may call**: staff; a teacher sees the class, a registrar the school.

        Each family of the caller's class or school with its form's state, a page at a time;
        filter by `class_id`, or by `status` (the form's state).

        **Errors**: `not_found` (404) the `class_id` is missing or outside the caller's scope;
        `forbidden` (403) a parent; `validation_error` (400)."""
        return await hot_reads.families(request, class_id, status, page, page_size)


class GuardianLinkController(Controller):
    path = "/guardian-links"
    tags = ["teachers"]
    guards = [requires_staff]

    @get(
        "/",
        summary="List parents' links to children of my class or school",
        operation_id="listGuardianLinks",
        responses=errors(SIGNED_IN, STAFF, QUERY),
    )
    async def list_links(
        self,
        principal: PrincipalDep,
        status: FromQuery[LinkStatus | None] = None,
        page: PageNumber = 1,
        page_size: PageSize = 50,
    ) -> Page[LinkRead]:
        """**Who may call**: staff; a teacher sees the class, a registrar the school.

        Parents' links to children, phones masked; filter `status=pending` for those waiting
        on me.

        **Errors**: `forbidden` (403) a parent; `validation_error` (400)."""
        return await links.list_links(principal, status, page, page_size)

    @post(
        "/{link_id:int}/{action:str}",
        status_code=HTTP_200_OK,
        summary="Confirm or reject a parent's pending link",
        operation_id="decideGuardianLink",
        responses=errors(
            SIGNED_IN,
            STAFF,
            BY_ID,
            {400: "validation_error", 403: "link_deciders_only", 409: "invalid_status"},
        ),
    )
    async def decide(
        self,
        link_id: FromPath[int],
        action: FromPath[Literal["confirm", "reject"]],
        principal: PrincipalDep,
        actor: ActorDep,
    ) -> LinkRead:
        """**Who may call**: the class's homeroom teacher, or a registrar of the school.

        Confirm or reject a pending link (a rejected one gives the code's use back).

        **Errors**: `link_deciders_only` (403) another role; `not_found` (404) no such link in
        scope; `invalid_status` (409) the link is not pending; `validation_error` (400) an
        unknown action."""
        return await links.decide(principal, actor, link_id, action)


@dataclass
class PhotoUpload:
    file: UploadFile


class PhotoController(Controller):
    tags = ["parents"]

    @post(
        "/students/{student_id:int}/photos",
        status_code=HTTP_201_CREATED,
        summary="Upload a photo of the signed form",
        operation_id="uploadFormPhoto",
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
        arq: ArqDep,
        redis: RedisDep,
        settings: SettingsDep,
    ) -> UploadRead:
        """**Who may call**: a parent of the child, or the class's teacher or a registrar on
        the family's behalf.

        A photo (JPEG, PNG, WebP or HEIC, multipart field `file`) of the signed form. The
        answer's `status` is `uploaded`; a worker checks it within seconds: poll
        `GET /uploads/{id}` until `verdict` is set. The same photo sent again answers the
        earlier upload with `duplicate: true`. Stored is accepted: if the queue (Redis) is
        down, the check runs once Redis is back, so the parent need not upload again.

        **Errors**: `photo_empty`, `photo_unsupported`, `photo_damaged`, `photo_truncated`,
        `photo_too_many_pixels` (400); `photo_too_large`, `payload_too_large` (413);
        `uploaders_only` (403); `not_found` (404) not my child / not in scope;
        `outside_window` (409) no campaign open; `form_not_issued` (409) the school has not
        printed this campaign's form; `too_many_uploads` (429, `Retry-After`);
        `validation_error` (400) no `file` part; `service_unavailable` (503)."""
        content = await data.file.read()
        upload = await uploads.upload_photo(
            principal, actor, storage, redis, settings, student_id, content
        )
        if not upload.duplicate:
            await enqueue_check_later_if_down(arq, upload.id)
        return upload

    @get(
        "/photos/{upload_id:int}",
        media_type="image/jpeg",
        summary="Download an uploaded photo",
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
        """**Who may call**: whoever may read the upload (its family, its class's staff).

        The stored photo (JPEG, metadata stripped), never cached.

        **Errors**: `not_found` (404) no such upload in scope."""
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
    guards = [requires_staff]

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
        page_size: PageSize = 50,
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
    open_form_link,
    UploadController,
    CorrectionDraftController,
    SignupController,
    MyChildrenController,
    FamiliesController,
    GuardianLinkController,
    PhotoController,
]

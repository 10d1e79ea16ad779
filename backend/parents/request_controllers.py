"""HTTP for a parent's change requests (`/my/...`) and for turning a legible paper correction
into a request (`/correction-drafts/{draft_id}/transcription`)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, MultipartBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from backend.accounts.permissions import Action
from backend.deps import ActorDep, IdFilter, PrincipalDep, StorageDep
from backend.http import allowed
from backend.openapi import BY_ID, QUERY, SIGNED_IN, STAFF, UPLOAD, errors
from backend.pages import DEFAULT_PAGE_SIZE, Page, PageNumber, PageSize
from backend.parents import request_service as parent_requests
from backend.records import request_service
from backend.records.change_request_controllers import (
    AMEND_FIELDS,
    CREATE_ERRORS,
    UPLOAD_OPT,
)
from backend.records.evidence import MAX_REQUEST_BYTES
from backend.records.request_schemas import (
    ChangeRequestAmendment,
    ChangeRequestDetail,
    ChangeRequestRead,
    DraftTranscription,
    MyChangeRequestCreate,
)
from backend.records.review_tables import RequestState

PARENT_ONLY = {403: "parents_only"}


async def _form_keys(request: Request[Any, Any, Any]) -> list[str]:
    return list((await request.form()).keys())


class MyChildRequestController(Controller):
    path = "/my/children/{student_id:int}/change-requests"
    tags = ["parents"]
    guards = [allowed(Action.use_parent_api)]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Ask to correct my child's record",
        operation_id="createMyChangeRequest",
        request_max_body_size=MAX_REQUEST_BYTES,
        opt=UPLOAD_OPT,
        responses=errors(
            SIGNED_IN,
            UPLOAD,
            BY_ID,
            CREATE_ERRORS,
            PARENT_ONLY,
            {400: "field_not_proposable", 403: "parent_field_forbidden"},
        ),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        student_id: FromPath[int],
        data: MultipartBody[MyChangeRequestCreate],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
    ) -> ChangeRequestDetail:
        """Ask to change one field of my child's record, as `multipart/form-data`:
        `field_code` (the catalog's name, as `GET /my/children/{student_id}` lists it),
        `new_value`, `reason`, and evidence photos in parts named by their kind (`id_scan`,
        `household_register`, `enrolment_proof`, `registration_receipt`, `other`; JPEG, PNG,
        WebP or HEIC, at most 15 MB each, 6 photos and 25 MB in all). A key field (name, sex,
        birth date, ID type and number, nationality, ethnicity, 港澳台侨外) needs an
        `id_scan`. The class teacher checks it first, then the registrar enters it and a
        school leader (or, for a key field, the education authority) approves it; follow it
        at `GET /my/change-requests/{request_id}`. Nothing else may be set.

        **Who may call**: a parent whose link to the child is confirmed.

        **Errors**: `parent_field_forbidden` (403, audited) for any other part in the body
        (`state`, `school_id`, `approver`, …); `parents_only` (403) a staff account;
        `not_found` (404, audited) not my child; `unknown_field`, `invalid_value`,
        `no_change`, `evidence_required` (400); `field_not_proposable` (400) a field the
        province does not let parents propose (受控字段); `photo_empty`, `photo_unsupported`,
        `photo_damaged`, `photo_truncated`, `photo_too_many_pixels`, `too_many_photos` (400);
        `photo_too_large`, `evidence_too_large` (413); `outside_window` (409) while the
        corrections switch is off for the child's region; `record_change_open` (409) while
        a status change (a transfer …) is open on the child's record."""
        extra = request_service.unknown_fields(
            await _form_keys(request), parent_requests.PARENT_FIELDS
        )
        return await parent_requests.submit_as_parent(
            principal,
            actor,
            storage,
            student_id,
            field_code=data.field_code,
            new_value=data.new_value,
            reason=data.reason,
            photos=await request_service.photos_of(data),
            extra=extra,
        )


class MyChangeRequestController(Controller):
    path = "/my/change-requests"
    tags = ["parents"]
    guards = [allowed(Action.use_parent_api)]

    @get(
        "/",
        summary="List my children's change requests",
        operation_id="listMyChangeRequests",
        responses=errors(SIGNED_IN, QUERY, BY_ID, PARENT_ONLY),
    )
    async def list_requests(
        self,
        principal: PrincipalDep,
        actor: ActorDep,
        student_id: IdFilter = None,
        request_state: Annotated[RequestState | None, QueryParameter(name="state")] = None,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[ChangeRequestRead]:
        """My children's change requests (whoever made them: I, the class teacher from the
        paper form, the school), the latest changed first, each with its state and current
        step in Chinese (`state_label`, `current_step.kind_label`) and its due date; filter by
        `student_id` and `state`.

        **Who may call**: a parent.

        **Errors**: `parents_only` (403) a staff account; `validation_error` (400);
        `not_found` (404) a `student_id` not my child."""
        return await request_service.list_requests(
            principal,
            actor,
            state=request_state,
            student_id=student_id,
            page=page,
            page_size=page_size,
        )

    @get(
        "/{request_id:int}",
        summary="Read my child's change request and its history",
        operation_id="getMyChangeRequest",
        responses=errors(SIGNED_IN, BY_ID, PARENT_ONLY),
    )
    async def get_request(
        self, request_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> ChangeRequestDetail:
        """The request, its state and every step so far with the reasons the reviewers gave,
        all with Chinese labels, and its evidence photos.

        **Who may call**: a parent of the child (link confirmed).

        **Errors**: `not_found` (404) not my child's; `parents_only` (403)."""
        return await request_service.get_request(principal, actor, request_id)

    @post(
        "/{request_id:int}/withdraw",
        status_code=HTTP_200_OK,
        summary="Withdraw my change request",
        operation_id="withdrawMyChangeRequest",
        responses=errors(
            SIGNED_IN,
            BY_ID,
            PARENT_ONLY,
            {403: "not_your_request", 409: "already_entered not_withdrawable"},
        ),
    )
    async def withdraw(
        self, request_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> ChangeRequestDetail:
        """Take my request back, until the school's registrar has entered it. Audited.

        **Who may call**: the parent who made it.

        **Errors**: `not_found` (404); `not_your_request` (403) made by someone else;
        `already_entered` (409) the registrar entered it already; `not_withdrawable` (409)
        already decided; `parents_only` (403)."""
        return await request_service.withdraw(principal, actor, request_id)

    @post(
        "/{request_id:int}/confirm",
        status_code=HTTP_200_OK,
        summary="Confirm my change request sent back to me",
        operation_id="confirmMyChangeRequest",
        responses=errors(
            SIGNED_IN,
            BY_ID,
            PARENT_ONLY,
            {403: "not_your_request", 409: "not_resubmittable outside_window record_change_open"},
        ),
    )
    async def confirm(
        self,
        request_id: FromPath[int],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
    ) -> ChangeRequestDetail:
        """A reviewer in doubt sent my request back to me (its `state` is `returned`, the
        step's `reason` says what to check): confirm it as it is, and it goes back to the
        step that sent it. To change it instead, `POST .../resubmit`. Audited.

        **Who may call**: the parent who made it.

        **Errors**: `not_found` (404); `not_your_request` (403); `not_resubmittable` (409)
        not sent back to me; `outside_window` (409); `record_change_open` (409) while a
        status change is open on the record; `parents_only` (403)."""
        return await parent_requests.confirm(principal, actor, storage, request_id)

    @post(
        "/{request_id:int}/resubmit",
        status_code=HTTP_200_OK,
        summary="Amend and resubmit my change request",
        operation_id="resubmitMyChangeRequest",
        request_max_body_size=MAX_REQUEST_BYTES,
        opt=UPLOAD_OPT,
        responses=errors(
            SIGNED_IN,
            UPLOAD,
            BY_ID,
            CREATE_ERRORS,
            PARENT_ONLY,
            {403: "not_your_request parent_field_forbidden", 409: "not_resubmittable"},
        ),
    )
    async def resubmit(
        self,
        request: Request[Any, Any, Any],
        request_id: FromPath[int],
        data: MultipartBody[ChangeRequestAmendment],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
    ) -> ChangeRequestDetail:
        """Amend my request that was rejected or sent back, and submit it again, as
        `multipart/form-data`: `new_value`, `reason`, more evidence photos (parts named by
        kind), any of them. After a rejection it goes through every step again; after a
        send-back, to the step that sent it back. Audited.

        **Who may call**: the parent who made it.

        **Errors**: `not_found` (404); `not_your_request` (403);
        `parent_field_forbidden` (403, audited) any other part; `not_resubmittable` (409)
        unless rejected or returned; `outside_window` (409); `invalid_value`, `no_change`,
        `evidence_required` (400); `photo_empty`, `photo_unsupported`, `photo_damaged`,
        `photo_truncated`, `photo_too_many_pixels`, `too_many_photos` (400);
        `photo_too_large`, `evidence_too_large` (413); `record_change_open` (409) while a
        status change is open on the record; `parents_only` (403)."""
        extra = request_service.unknown_fields(await _form_keys(request), AMEND_FIELDS)
        await parent_requests.refuse_fields(principal, actor, None, extra)
        return await request_service.resubmit(
            principal,
            actor,
            storage,
            request_id,
            new_value=data.new_value,
            reason=data.reason,
            photos=await request_service.photos_of(data),
        )


class TranscriptionController(Controller):
    path = "/correction-drafts/{draft_id:int}/transcription"
    tags = ["teachers"]
    guards = [allowed(Action.use_staff_api)]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Transcribe a paper correction into a change request",
        operation_id="transcribeCorrectionDraft",
        request_max_body_size=MAX_REQUEST_BYTES,
        opt=UPLOAD_OPT,
        responses=errors(
            SIGNED_IN,
            STAFF,
            UPLOAD,
            BY_ID,
            CREATE_ERRORS,
            {
                400: "field_not_proposable",
                403: "teachers_only",
                409: "draft_not_legible already_transcribed record_change_open",
            },
        ),
    )
    async def transcribe(
        self,
        request: Request[Any, Any, Any],
        draft_id: FromPath[int],
        data: MultipartBody[DraftTranscription],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
    ) -> ChangeRequestDetail:
        """Type in what the family wrote in a correction cell (a draft marked `legible`), as
        `multipart/form-data`: `new_value`, `reason`, and evidence photos in parts named by
        kind (`id_scan` for a key field). It becomes a change request of the draft's child
        and field (source `transcribed`); the draft links to it. A teacher's transcription
        waits for the registrar to enter it; a registrar's is entered at once. Audited.

        **Who may call**: the child's class teacher or the school's registrar.

        **Errors**: `teachers_only` (403) any other role; `not_found` (404) a draft outside
        the caller's scope; `draft_not_legible` (409) a draft not marked legible;
        `already_transcribed` (409); `validation_error` (400) a part the operation does not
        take; `invalid_value`, `no_change`, `evidence_required` (400);
        `field_not_proposable` (400) a field the province does not let parents propose;
        `photo_empty`,
        `photo_unsupported`, `photo_damaged`, `photo_truncated`, `photo_too_many_pixels`,
        `too_many_photos` (400); `photo_too_large`, `evidence_too_large` (413);
        `outside_window` (409); `record_change_open` (409) while a status change (a
        transfer …) is open on the record."""
        request_service.refuse_unknown(
            request_service.unknown_fields(await _form_keys(request), AMEND_FIELDS)
        )
        return await parent_requests.transcribe(
            principal,
            actor,
            storage,
            draft_id,
            new_value=data.new_value,
            reason=data.reason,
            photos=await request_service.photos_of(data),
        )


ROUTES: list[Any] = [
    MyChildRequestController,
    MyChangeRequestController,
    TranscriptionController,
]

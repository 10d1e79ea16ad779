"""HTTP for change requests on the staff side: a registrar's own request, the lists and one
request with its history, withdrawing, amending and submitting again, and the evidence
photos (which a parent reads too). Deciding a step is `POST /review-steps/{step_id}/decision`
(`review_controllers`); a parent's own requests are under `/my/change-requests`."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery, MultipartBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from backend.accounts.permissions import Action
from backend.deps import ActorDep, IdFilter, PrincipalDep, StorageDep
from backend.http import NO_STORE, allowed
from backend.openapi import BY_ID, QUERY, SIGNED_IN, STAFF, UPLOAD, errors
from backend.pages import DEFAULT_PAGE_SIZE, Page, PageNumber, PageSize
from backend.records import change_requests as _registers_its_handler  # noqa: F401
from backend.records import evidence, request_service
from backend.records.evidence import MAX_REQUEST_BYTES, EvidenceTooLarge
from backend.records.request_schemas import (
    ChangeRequestAmendment,
    ChangeRequestCreate,
    ChangeRequestDetail,
    ChangeRequestRead,
)
from backend.records.review_tables import RequestState

PHOTO_ERRORS = (
    "photo_empty photo_unsupported photo_damaged photo_truncated photo_too_many_pixels "
    "too_many_photos"
)
CREATE_ERRORS = {
    400: f"unknown_field invalid_value no_change evidence_required {PHOTO_ERRORS}",
    409: "outside_window record_change_open",
    413: "photo_too_large evidence_too_large",
}
UPLOAD_OPT = {"upload_noun": "佐证材料照片", "too_large": EvidenceTooLarge}
CREATE_FIELDS = {"student_id", "field_code", "new_value", "reason"}
AMEND_FIELDS = {"new_value", "reason"}


async def _form_keys(request: Request[Any, Any, Any]) -> list[str]:
    return list((await request.form()).keys())


class ChangeRequestController(Controller):
    path = "/change-requests"
    tags = ["reviews"]
    guards = [allowed(Action.use_staff_api)]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Enter a change request",
        operation_id="createChangeRequest",
        request_max_body_size=MAX_REQUEST_BYTES,
        opt=UPLOAD_OPT,
        responses=errors(SIGNED_IN, STAFF, UPLOAD, BY_ID, CREATE_ERRORS, {403: "registrars_only"}),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        data: MultipartBody[ChangeRequestCreate],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
    ) -> ChangeRequestDetail:
        """A registrar asks to change one field of a student's record, as
        `multipart/form-data`: `student_id`, `field_code` (the catalog's name), `new_value`
        (checked by the catalog), `reason`, and evidence photos in parts named by their kind
        (`id_scan`, `household_register`, `enrolment_proof`, `registration_receipt`, `other`;
        JPEG, PNG, WebP or HEIC, at most 15 MB each, 6 photos and 25 MB in all). A key field
        (name, sex, birth date, ID type and number, nationality, ethnicity, 港澳台侨外) needs
        an `id_scan`. The registrar's own *enter* step is taken at once; the request goes to a
        school leader (ordinary fields) or to the education authority administering the school
        (key fields), each step due within 10 working days. Audited.

        **Who may call**: a registrar, for a student of the school.

        **Errors**: `registrars_only` (403) any other role; `not_found` (404) a student
        outside the school; `unknown_field`, `invalid_value`, `no_change` (400);
        `evidence_required` (400) a key field without `id_scan`; `validation_error` (400) a
        part the operation does not take; `photo_empty`, `photo_unsupported`, `photo_damaged`,
        `photo_truncated`, `photo_too_many_pixels`, `too_many_photos` (400);
        `photo_too_large`, `evidence_too_large` (413); `outside_window` (409) while the
        campaign's corrections switch is off for the school's region; `record_change_open`
        (409) while a status change (a transfer …) is open on the record."""
        request_service.refuse_unknown(
            request_service.unknown_fields(await _form_keys(request), CREATE_FIELDS)
        )
        return await request_service.create_by_registrar(
            principal,
            actor,
            storage,
            student_id=data.student_id,
            field_code=data.field_code,
            new_value=data.new_value,
            reason=data.reason,
            photos=await request_service.photos_of(data),
        )

    @get(
        "/",
        summary="List change requests",
        operation_id="listChangeRequests",
        responses=errors(SIGNED_IN, STAFF, QUERY, BY_ID),
    )
    async def list_requests(
        self,
        principal: PrincipalDep,
        actor: ActorDep,
        request_state: Annotated[RequestState | None, QueryParameter(name="state")] = None,
        student_id: IdFilter = None,
        class_id: IdFilter = None,
        field: FromQuery[str | None] = None,
        page: PageNumber = 1,
        page_size: PageSize = DEFAULT_PAGE_SIZE,
    ) -> Page[ChangeRequestRead]:
        """Change requests in the caller's scope (a teacher's class, a school, a region), the
        latest changed first, each with its current step and due date; filter by `state`,
        `student_id`, `class_id` and `field` (the catalog's name). Values of sensitive fields
        are masked. What waits on *me* is the review queue's business.

        **Who may call**: staff.

        **Errors**: `validation_error` (400) a `state` outside the listed values;
        `not_found` (404) a `student_id` or `class_id` outside the caller's scope;
        `forbidden` (403) a parent."""
        return await request_service.list_requests(
            principal,
            actor,
            state=request_state,
            student_id=student_id,
            class_id=class_id,
            field=field,
            page=page,
            page_size=page_size,
        )

    @get(
        "/{request_id:int}",
        summary="Read a change request and its history",
        operation_id="getChangeRequest",
        responses=errors(SIGNED_IN, STAFF, BY_ID),
    )
    async def get_request(
        self, request_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> ChangeRequestDetail:
        """One change request: its values (masked where sensitive), state, every step of
        every round with who decides it, its due date and the reasons given, and its evidence
        photos (`url` of each).

        **Who may call**: staff with the student in scope.

        **Errors**: `not_found` (404) a request missing or outside the caller's scope."""
        return await request_service.get_request(principal, actor, request_id)

    @post(
        "/{request_id:int}/withdraw",
        status_code=HTTP_200_OK,
        summary="Withdraw my change request",
        operation_id="withdrawChangeRequest",
        responses=errors(
            SIGNED_IN,
            STAFF,
            BY_ID,
            {403: "not_your_request", 409: "already_entered not_withdrawable"},
        ),
    )
    async def withdraw(
        self, request_id: FromPath[int], principal: PrincipalDep, actor: ActorDep
    ) -> ChangeRequestDetail:
        """The author withdraws a request the registrar has not entered yet (a teacher's
        transcription waiting for the registrar). Audited.

        **Who may call**: the request's author.

        **Errors**: `not_found` (404); `not_your_request` (403) someone else's;
        `already_entered` (409) once the registrar entered it; `not_withdrawable` (409) a
        request already decided."""
        return await request_service.withdraw(principal, actor, request_id)

    @post(
        "/{request_id:int}/resubmit",
        status_code=HTTP_200_OK,
        summary="Amend and resubmit my change request",
        operation_id="resubmitChangeRequest",
        request_max_body_size=MAX_REQUEST_BYTES,
        opt=UPLOAD_OPT,
        responses=errors(
            SIGNED_IN,
            STAFF,
            UPLOAD,
            BY_ID,
            CREATE_ERRORS,
            {403: "not_your_request", 409: "not_resubmittable"},
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
        """The author amends a request that was rejected or sent back and submits it again,
        as `multipart/form-data`: a new `new_value`, a new `reason`, more evidence photos
        (parts named by kind), any of them or none. A new round starts: after a rejection the
        whole chain again; after a send-back at the step that sent it back. Audited.

        **Who may call**: the request's author.

        **Errors**: `not_found` (404); `not_your_request` (403); `not_resubmittable` (409)
        unless rejected or returned; `outside_window` (409); `invalid_value`, `no_change`,
        `evidence_required` (400); `photo_empty`, `photo_unsupported`, `photo_damaged`,
        `photo_truncated`, `photo_too_many_pixels`, `too_many_photos` (400);
        `photo_too_large`, `evidence_too_large` (413); `record_change_open` (409) while a
        status change (a transfer …) is open on the record."""
        request_service.refuse_unknown(
            request_service.unknown_fields(await _form_keys(request), AMEND_FIELDS)
        )
        return await request_service.resubmit(
            principal,
            actor,
            storage,
            request_id,
            new_value=data.new_value,
            reason=data.reason,
            photos=await request_service.photos_of(data),
        )


class EvidenceController(Controller):
    path = "/evidence"
    tags = ["reviews"]

    @get(
        "/{evidence_id:int}/photo",
        media_type="image/jpeg",
        summary="Download an evidence photo",
        operation_id="getEvidencePhoto",
        responses=errors(SIGNED_IN, BY_ID),
    )
    async def photo(
        self,
        evidence_id: FromPath[int],
        principal: PrincipalDep,
        actor: ActorDep,
        storage: StorageDep,
    ) -> Response[bytes]:
        """An evidence photo of a change request (upright JPEG, no EXIF); never cached. An ID
        document shows its number in full: every staff read is audited.

        **Who may call**: the child's parent (link confirmed), and staff with the student in
        scope.

        **Errors**: `not_found` (404) a photo missing or outside the caller's scope."""
        data = await evidence.evidence_bytes(principal, actor, storage, evidence_id)
        return Response(data, media_type="image/jpeg", headers=NO_STORE)


ROUTES: list[Any] = [ChangeRequestController, EvidenceController]
